"""Several experiments: ``params/experiments/*.yaml``, one file each, checked together.

Two files with one id, or one bucket name with two shares, are refused naming both files
(exit 2 on the command line); ``params/experiment.yaml`` alone stays a single-experiment setup.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import yaml

from expkit.cli import main
from expkit.config import active_experiments, experiment_files, load_experiments
from expkit.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
GOOD = yaml.safe_load((REPO / "params" / "experiment.yaml").read_text())


def params_dir(tmp_path: Path, experiments: dict[str, dict]) -> Path:
    """A ``params/`` folder with the shipped catalogue and one file per experiment."""
    params = tmp_path / "params"
    (params / "experiments").mkdir(parents=True)
    shutil.copy(REPO / "params" / "metrics.yaml", params / "metrics.yaml")
    for name, change in experiments.items():
        (params / "experiments" / f"{name}.yaml").write_text(yaml.safe_dump({**GOOD, **change}))
    return params


def test_one_file_per_experiment_loads_in_name_order(tmp_path: Path) -> None:
    params = params_dir(tmp_path, {
        "b_search": {"experiment_id": "search_v3", "start_date": "2026-11-05", "end_date": "2026-11-20"},
        "a_ranker": {"experiment_id": "ranker_v2"},
    })
    (params / "experiments" / "alerts.yaml").write_text((REPO / "params" / "alerts.yaml").read_text())
    cfgs = load_experiments(params)
    assert [c.experiment_id for c in cfgs] == ["ranker_v2", "search_v3"]  # alerts.yaml is not one
    assert cfgs[1].end_date == dt.date(2026, 11, 20)
    on = [c.experiment_id for c in active_experiments(cfgs, dt.date(2026, 11, 3))]
    assert on == ["ranker_v2"]  # search_v3 starts on the 5th
    after = [c.experiment_id for c in active_experiments(cfgs, dt.date(2026, 11, 21))]
    assert after == ["ranker_v2"]  # and ends on the 20th


def test_single_experiment_file_still_works(tmp_path: Path) -> None:
    params = tmp_path / "params"
    params.mkdir()
    shutil.copy(REPO / "params" / "experiment.yaml", params / "experiment.yaml")
    shutil.copy(REPO / "params" / "metrics.yaml", params / "metrics.yaml")
    assert experiment_files(params) == [params / "experiment.yaml"]
    assert [c.experiment_id for c in load_experiments(params)] == [GOOD["experiment_id"]]
    assert [c.experiment_id for c in load_experiments(REPO / "params")] == [GOOD["experiment_id"]]


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ({"start_date": "2026-11-10"}, "is also the id of .* and their date ranges overlap"),
        ({"start_date": "2026-12-10", "end_date": "2026-12-20", "experiment_id": GOOD["experiment_id"]},
         "is also the id of"),
        ({"experiment_id": "other", "buckets": {"control": 0.4, "treatment": 0.6}},
         "key 'buckets.control': share 0.4 differs from 0.5 in"),
    ],
)
def test_conflicts_name_both_files(tmp_path: Path, second: dict, expected: str) -> None:
    first = {"end_date": "2026-11-30"}
    params = params_dir(tmp_path, {"a": first, "b": second})
    with pytest.raises(ConfigError, match=expected) as err:
        load_experiments(params)
    text = str(err.value)
    assert str(params / "experiments" / "a.yaml") in text and str(params / "experiments" / "b.yaml") in text


def test_end_before_start_is_refused(tmp_path: Path) -> None:
    params = params_dir(tmp_path, {"a": {"end_date": "2026-10-01"}})
    with pytest.raises(ConfigError, match=r"a\.yaml: key 'end_date': end_date 2026-10-01 is before start_date"):
        load_experiments(params)


def test_command_line_exits_2_naming_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = params_dir(tmp_path, {"a": {}, "b": {}})
    code = main(["synth", "--out", str(tmp_path / "w"), "--days", "1", "--end", "2026-11-01",
                 "--experiments", str(params / "experiments")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "a.yaml" in err and "b.yaml" in err
    assert not (tmp_path / "w").exists()  # nothing written


def test_rollup_refuses_conflicting_files_before_reading_the_warehouse(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = params_dir(tmp_path, {"a": {}, "b": {"experiment_id": "other", "buckets": {"control": 0.2, "x": 0.8}}})
    code = main(["rollup", "--warehouse", str(tmp_path / "none"), "--date", "2026-11-01", "--params", str(params)])
    err = capsys.readouterr().err
    assert code == 2 and "key 'buckets.control': share 0.2 differs from 0.5" in err
    assert "a.yaml" in err and "b.yaml" in err


def test_synth_runs_the_experiments_of_a_folder(tmp_path: Path) -> None:
    params = params_dir(tmp_path, {
        "a": {},
        "b": {"experiment_id": "search_v3", "buckets": {"base": 0.3, "new": 0.7}, "control": "base"},
    })
    out = tmp_path / "w"
    code = main(["synth", "--out", str(out), "--days", "1", "--end", "2026-11-01", "--users", "300", "--quiet",
                 "--experiments", str(params / "experiments"), "--lift", "search_v3/new=0.1"])
    assert code == 0
    truth = json.loads((out / "truth.json").read_text())
    assert list(truth["experiments"]) == [GOOD["experiment_id"], "search_v3"]
    assert truth["experiments"]["search_v3"]["true_lift"] == {"new": 0.1}
    assert truth["experiments"][GOOD["experiment_id"]]["true_lift"] == {"treatment": 0.05}  # the default
    assert list((out / "events" / "exposures").iterdir()) == [out / "events" / "exposures" / "event_date=2026-11-01"]
