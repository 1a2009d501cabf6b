"""Inputs refused up front (exit 2, one line, nothing written) or explained: duplicate YAML keys,
negative SLOs, unknown filter values, lift bucket filters, bidi characters in experiment ids and
bucket names, a seven-decimal three-way split, an experiment id the data does not have."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from hardening_support import END, PARAMS, REPO, START, Cli, assert_one_line_error, snapshot
from scipy import stats

import expkit
from expkit.config import load_experiment, parse_experiment
from expkit.daily import experiment_notices
from expkit.errors import ConfigError, ExpkitError
from expkit.report import DailySteps, run_daily
from expkit.report.summary import load_params
from expkit.rollup import build_range
from expkit.stats import srm_test
from expkit.synth import generate
from expkit.tiles.registry import TILES
from expkit.yamlio import read_yaml

GOOD = yaml.safe_load(PARAMS.read_text())
THIRD = 0.3333333


def _params(tmp_path: Path, text: str, name: str = "experiment.yaml") -> Path:
    """A parameters file (with the repository's alerts.yaml beside it)."""
    folder = tmp_path / "params"
    folder.mkdir(exist_ok=True)
    (folder / "alerts.yaml").write_text((REPO / "params" / "alerts.yaml").read_text())
    path = folder / name
    path.write_text(text)
    return path


def _with(**changes: object) -> str:
    return yaml.safe_dump({**GOOD, **changes}, sort_keys=False)


# --- allocation: one tolerance, normalized -------------------------------------------------


def test_seven_decimal_thirds_are_normalized_and_tested_as_thirds() -> None:
    cfg = parse_experiment({**GOOD, "buckets": {"control": THIRD, "a": THIRD, "b": THIRD}})
    assert abs(sum(cfg.buckets.values()) - 1) < 1e-15
    counts = [1050, 980, 970]
    # closed form: Pearson's statistic against N/3 per arm, upper tail of chi-square with 2 df
    expected = sum(counts) / 3
    statistic = sum((c - expected) ** 2 / expected for c in counts)
    res = srm_test(counts, [THIRD] * 3)
    assert float(res.statistic) == pytest.approx(statistic, rel=1e-12)
    assert float(res.pvalue) == pytest.approx(stats.chi2.sf(statistic, 2), rel=1e-12)
    with pytest.raises(ConfigError, match="sum to 0.99"):
        parse_experiment({**GOOD, "buckets": {"control": 0.333, "a": 0.333, "b": 0.333}})


@pytest.fixture(scope="module")
def three_way(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small warehouse of a three-way split written with seven decimals: (warehouse, params)."""
    root = tmp_path_factory.mktemp("three-way")
    params = _params(root, _with(buckets={"control": THIRD, "treatment": THIRD, "treatment_b": THIRD}))
    cfg = load_experiment(params)
    generate(root / "wh", days=2, end=END, users=300, seed=3, experiment_id=cfg.experiment_id,
             buckets=cfg.buckets, control=cfg.control)
    build_range(root / "wh", START, END, cfg)
    return root / "wh", params


@pytest.mark.parametrize("tile", [t for t, spec in TILES.items() if spec.section == "outcomes"])
def test_outcome_tiles_compute_on_a_seven_decimal_three_way_split(three_way: tuple[Path, Path], tile: str) -> None:
    wh, params = three_way
    result = expkit.run_tile(tile, warehouse=wh, event_date=END, params_file=params)
    assert result.status in ("ok", "warn", "breach"), result.summary
    if tile == "allocation":
        assert set(result.headline["arms"]) == {"control", "treatment", "treatment_b"}


# --- strict YAML --------------------------------------------------------------------------


def test_duplicate_key_in_the_parameters_file_is_refused(base_wh: Path, tmp_path: Path, cli: Cli) -> None:
    text = PARAMS.read_text().replace("primary_metric: ctr\n", "primary_metric: ctr\ntop_k: 5\n")
    params = _params(tmp_path, text)
    first, second = (text.splitlines().index(f"top_k: {k}") + 1 for k in (5, 10))
    out = tmp_path / "out"
    code, _, err = cli("tile", "ctr", "--warehouse", base_wh, "--date", END.isoformat(), "--out", out,
                       "--params", params)
    assert_one_line_error(code, err, params, "duplicate key 'top_k'", f"line {second}", f"first at line {first}")
    assert not out.exists()
    with pytest.raises(ConfigError, match="duplicate key 'top_k'"):
        load_params(params)  # the report's own reading of the file


def test_duplicate_key_in_the_alert_rules_is_refused(base_wh: Path, tmp_path: Path, cli: Cli) -> None:
    rules = tmp_path / "alerts.yaml"
    text = (REPO / "params" / "alerts.yaml").read_text().replace("version: 1\n", "version: 1\nversion: 2\n")
    rules.write_text(text)
    code, _, err = cli("alerts", "eval", "--warehouse", base_wh, "--date", END.isoformat(), "--rules", rules)
    assert_one_line_error(code, err, rules, "duplicate key 'version'", "line")
    tests = tmp_path / "rule_test.yaml"
    tests.write_text("rule_files: [alerts.yaml]\nrule_files: [alerts.yaml]\ntests: []\n")
    code, _, err = cli("alerts", "test", tests)
    assert_one_line_error(code, err, tests, "duplicate key 'rule_files'")


def test_duplicate_key_in_a_nested_mapping_and_in_filters(base_wh: Path, tmp_path: Path, cli: Cli) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("slos:\n  coverage_min: 0.9\n  coverage_min: 0.95\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'coverage_min' at line 3, column 3 \(first at line 2\)"):
        read_yaml(path, "parameters file", "params/experiment.yaml")
    out = tmp_path / "out"
    code, _, err = cli("tile", "ctr", "--warehouse", base_wh, "--date", END.isoformat(), "--out", out,
                       "-p", 'filters={"region": ["eu"], "region": ["na"]}')
    assert_one_line_error(code, err, "filters", "duplicate key 'region'")
    assert not out.exists()


# --- SLOs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value"), [("latency_p95_warm_ms", -50), ("coverage_min", -0.1),
                                            ("freshness_max_min", -1), ("error_rate_max", 1.5)])
def test_negative_or_impossible_slos_are_refused(base_wh: Path, tmp_path: Path, cli: Cli, key: str,
                                                 value: float) -> None:
    params = _params(tmp_path, _with(slos={**GOOD["slos"], key: value}))
    out = tmp_path / "out"
    code, _, err = cli("tile", "latency", "--warehouse", base_wh, "--date", END.isoformat(), "--out", out,
                       "--params", params)
    assert_one_line_error(code, err, params, f"slos.{key}")
    assert not out.exists()


def test_negative_target_is_refused() -> None:
    with pytest.raises(ConfigError, match="targets.ctr_min"):
        parse_experiment({**GOOD, "targets": {**GOOD["targets"], "ctr_min": -0.01}})


# --- filters checked before a kernel starts ------------------------------------------------


def test_unknown_filter_value_fails_before_a_kernel_starts(base_wh: Path, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "out"
    before = snapshot(base_wh)
    code, stdout, err = cli("tile", "ctr", "--warehouse", base_wh, "--date", END.isoformat(), "--out", out,
                            "-p", 'filters={"region": ["nowhere"]}')
    assert_one_line_error(code, err, "'nowhere'", "known values: ['apac', 'eu', 'latam', 'na']")
    assert not stdout and not out.exists()  # no notebook ran: it would have written its page there
    assert snapshot(base_wh) == before


def test_lift_refuses_a_bucket_filter(base_wh: Path, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "out"
    code, _, err = cli("tile", "lift", "--warehouse", base_wh, "--date", END.isoformat(), "--out", out,
                       "-p", 'filters={"bucket": ["treatment"]}')
    assert_one_line_error(code, err, "lift", "bucket", "buckets=")
    assert not out.exists()
    with pytest.raises(ExpkitError, match="cannot filter on bucket"):
        expkit.run_tile("lift", warehouse=base_wh, event_date=END, params_file=PARAMS,
                        filters={"bucket": ["treatment"]})
    assert set(expkit.run_tile("lift", warehouse=base_wh, event_date=END, params_file=PARAMS,
                               buckets="treatment").headline["arms"]) == {"treatment"}


# --- bidi and other non-slice characters in names ------------------------------------------


@pytest.mark.parametrize("name", ["rec\u202etxt.exe", "rec\u2066v2\u2069", "rec'v2", "rec\nv2"])
def test_experiment_ids_and_bucket_names_refuse_bidi_and_quotes(tmp_path: Path, base_wh: Path, cli: Cli,
                                                                name: str) -> None:
    with pytest.raises(ConfigError, match="key 'experiment_id'") as err:
        parse_experiment({**GOOD, "experiment_id": name}, "p.yaml")
    assert repr(name) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="key 'buckets'") as err:
        parse_experiment({**GOOD, "buckets": {"control": 0.5, name: 0.5}}, "p.yaml")
    assert repr(name) in str(err.value)
    params = _params(tmp_path, _with(buckets={"control": 0.5, name: 0.5}))
    code, _, err_text = cli("tile", "ctr", "--warehouse", base_wh, "--date", END.isoformat(),
                            "--out", tmp_path / "out", "--params", params)
    assert_one_line_error(code, err_text, params, "bucket name")


# --- an experiment id the data does not have -----------------------------------------------


def test_absent_experiment_is_said_in_one_line_and_on_the_index(base_wh: Path, tmp_path: Path) -> None:
    assert experiment_notices(base_wh, END, PARAMS) == []
    params = _params(tmp_path, _with(experiment_id="rec_ranker_v9"))
    lines: list[str] = []
    result = run_daily(base_wh, END, tmp_path / "reports", params, workers=1, tiles=[TILES["allocation"]],
                       steps=DailySteps(notices=experiment_notices),
                       progress=lambda e: lines.append(f"{e.stage}: {e.message}"))
    notices = [ln for ln in lines if ln.startswith("notice:")]
    assert len(notices) == 1 and "\n" not in notices[0]
    assert "'rec_ranker_v9'" in notices[0] and "rec_ranker_v2" in notices[0] and str(params) in notices[0]
    assert result.tiles["allocation"].status == "no_data"
    html = result.index.read_text()
    assert "rec_ranker_v9" in html and "does not occur in the data" in html
    assert result.summary["notices"] == [notices[0].removeprefix("notice: ")]


def test_a_date_outside_the_experiment_is_said_as_such_not_as_a_wrong_id(base_wh: Path, tmp_path: Path) -> None:
    later = _params(tmp_path, _with(start_date=(END + dt.timedelta(days=1)).isoformat()))
    [line] = experiment_notices(base_wh, END, later)
    assert "before the experiment's start_date 2026-11-15" in line and str(later) in line and "\n" not in line
    assert "fix experiment_id" not in line  # the id is right: the date is not one of its days
    ended = _params(tmp_path, _with(start_date="2026-11-01", end_date="2026-11-10"))
    [line] = experiment_notices(base_wh, END, ended)
    assert "after the experiment's end_date 2026-11-10" in line


def test_a_tile_page_the_report_cannot_show_is_said(base_wh: Path, tmp_path: Path) -> None:
    """``tile: true`` in an experiment's own catalogue: the report's tiles come from the project's
    catalogue, so the page was silently missing; the notice names the metric and the fix."""
    params = _params(tmp_path, PARAMS.read_text())
    catalogue = yaml.safe_load((REPO / "params" / "metrics.yaml").read_text())
    catalogue["metrics"]["top3_ctr"] = {
        "title": "CTR in the top 3 positions", "direction": "increase", "format": "percent", "tile": True,
        "numerator": {"table": "impressions", "agg": "count", "where": {"clicked": True, "position": [1, 2, 3]}},
        "denominator": {"table": "impressions", "agg": "count", "where": {"position": [1, 2, 3]}}}
    (params.parent / "metrics.yaml").write_text(yaml.safe_dump(catalogue, sort_keys=False))
    assert "top3_ctr" not in TILES
    notices = experiment_notices(base_wh, END, params)
    assert len(notices) == 1 and "\n" not in notices[0], notices
    assert "top3_ctr" in notices[0] and str(params.parent / "metrics.yaml") in notices[0]
    assert "make notebooks" in notices[0]


def test_no_notice_without_a_rollup(tmp_path: Path, base_wh: Path) -> None:
    assert experiment_notices(base_wh, END + dt.timedelta(days=1), PARAMS) == []


def test_freshness_filters_fail_before_a_kernel_starts(base_wh: Path, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "out"
    code, _, err = cli("tile", "freshness", "--warehouse", base_wh, "--date", END.isoformat(), "--out", out,
                       "-p", 'filters={"region": ["eu"]}')
    assert_one_line_error(code, err, "freshness", "region", "remove them")
    assert not out.exists()


@pytest.mark.parametrize("name", [".", "..", " . "])
def test_experiment_ids_that_would_name_a_parent_folder_are_refused(name: str) -> None:
    """An id names folders (reports/<date>/<id>/, the alert state): '..' would climb out of them."""
    with pytest.raises(ConfigError, match="key 'experiment_id'.*needs a letter or digit"):
        parse_experiment({**GOOD, "experiment_id": name}, "p.yaml")
