"""Ship and roll back on full pipelines: rollups, validation and the alert replay recorded,
then the readout (docs/readout.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from readout_support import END, build

from expkit import run_tile
from expkit.alerts import evaluate_day
from expkit.config import load_experiment
from expkit.validation import validate_day

pytestmark = pytest.mark.slow


def _judged_readout(wh: Path, params: Path) -> dict:
    """The readout after the day's validation and alert replay were recorded, as in the daily job."""
    config = load_experiment(params)
    checks = validate_day(wh, END, config=config)
    evaluate_day(wh, END, config, params_file=params, checks=checks)
    return run_tile("readout", event_date=END, warehouse=wh, params_file=params).headline


def test_a_large_true_lift_with_enough_users_ships(tmp_path_factory: pytest.TempPathFactory) -> None:
    wh, params = build(tmp_path_factory.mktemp("ship"), days=8, users=8000, seed=61, lift={"treatment": 0.3})
    head = _judged_readout(wh, params)
    assert head["verdict"] == "ship", head["reasons"]
    assert {g["status"] for g in head["arms"]["treatment"]["guardrails"]} == {"pass"}
    assert {g["status"] for g in head["trust"]} == {"pass"}


def test_an_error_burst_in_the_treatment_rolls_back(tmp_path_factory: pytest.TempPathFactory) -> None:
    wh, params = build(tmp_path_factory.mktemp("burst"), days=3, users=3000, seed=62,
                       incidents=["error_burst@08:00/600:treatment"])
    head = _judged_readout(wh, params)
    assert head["verdict"] == "roll_back", head["reasons"]
    guard = {g["metric"]: g for g in head["arms"]["treatment"]["guardrails"]}
    assert guard["error_rate"]["status"] == "fail"
    assert any(r.startswith("guardrail error_rate fails") for r in head["reasons"])
