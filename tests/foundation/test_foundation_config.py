"""Experiment parameters files: valid ones load, invalid ones are refused with file, key and reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from expkit.config import load_experiment
from expkit.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
GOOD = yaml.safe_load((REPO / "params" / "experiment.yaml").read_text())


def write(tmp_path: Path, data: object, text: str | None = None) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(data))
    return path


def test_shipped_params_file_loads() -> None:
    cfg = load_experiment(REPO / "params" / "experiment.yaml")
    assert cfg.control == "control" and cfg.treatments == ["treatment"]
    assert abs(sum(cfg.buckets.values()) - 1) < 1e-9


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"colour": "blue"}, "key 'colour': unknown key"),
        ({"buckets": {"control": 0.5, "treatment": 0.4}}, "sum to 0.9"),
        ({"control": "baseline"}, "control bucket 'baseline' is not one of the buckets"),
        ({"windows": ["24h", "3w"]}, "unknown window(s) ['3w']"),
        ({"slices": ["bucket", "planet"]}, "unknown slice(s) ['planet']"),
        ({"top_k": "ten"}, "key 'top_k'"),
        ({"start_date": "2026-02-30"}, "key 'start_date'"),
        ({"slos": {"latency_p95_ms": 5}}, "key 'slos.latency_p95_ms': unknown key"),
    ],
)
def test_invalid_params_name_file_key_and_reason(tmp_path: Path, change: dict, expected: str) -> None:
    path = write(tmp_path, {**GOOD, **change})
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, None, text="experiment_id: x\nbuckets: {control: 0.5\n")
    with pytest.raises(ConfigError, match=r"malformed YAML at line \d+"):
        load_experiment(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_experiment(tmp_path / "nope.yaml")


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_experiment(write(tmp_path, None, text="- a\n- b\n"))


def test_readout_keys_have_defaults_and_are_checked(tmp_path) -> None:
    """mde, min_days, guardrail margins and the CUPED look-back (docs/readout.md)."""
    base = yaml.safe_load((Path(__file__).resolve().parents[2] / "params" / "experiment.yaml").read_text())
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(base))
    cfg = load_experiment(path)
    assert (cfg.mde, cfg.min_days, cfg.cuped.lookback_days) == (0.05, 7, 14)
    latency = cfg.margin("latency_p95")
    assert latency is not None and (latency.harm, latency.relative, latency.value) == ("increase", True, 0.10)
    coverage = cfg.margin("coverage")
    assert coverage is not None and (coverage.harm, coverage.relative, coverage.value) == ("decrease", False, 0.01)
    path.write_text(yaml.safe_dump({**base, "guardrails": {"error_rate": {"max_increase": 0.002}}}))
    assert load_experiment(path).margin("error_rate").value == 0.002
    for bad, words in [
        ({"guardrails": {"error_rate": {"max_increase": 0.1, "max_decrease": 0.1}}}, "guardrails.error_rate"),
        ({"guardrails": {"ctr": {"max_decrease": 0.01}}}, "'guardrails.ctr': 'ctr' is not in guardrail_metrics"),
        ({"mde": 0}, "key 'mde'"),
        ({"cuped": {"lookback_days": 0}}, "cuped.lookback_days"),
    ]:
        path.write_text(yaml.safe_dump({**base, **bad}))
        with pytest.raises(ConfigError, match=re.escape(words)):
            load_experiment(path)
