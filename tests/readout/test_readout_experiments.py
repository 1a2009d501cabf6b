"""Two experiments at once in one synthetic warehouse (docs/metrics.md, "Several experiments"):
the readout of each reads its own users and arms.

Experiment A (the main one) has no true lift and an error burst in its treatment arm;
experiment B, randomized independently over the same users, has a +30% lift. A's readout
rolls back on its error-rate guardrail; B's treatment and control share A's burst equally, so
B's guardrail passes, and B's primary interval covers B's own true lift (truth.json's
``experiments``), not A's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from readout_support import END, ROOT

from expkit import run_tile
from expkit.alerts import evaluate_day
from expkit.config import load_experiment, load_experiments, rollup_config
from expkit.rollup import build_range
from expkit.synth import generate
from expkit.synth.warehouse import SynthExperiment
from expkit.validation import validate_day

pytestmark = pytest.mark.slow
A, B = "rec_ranker_v2", "rec_ranker_v2_2"
DAYS = 3


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("two")
    wh = root / "wh"
    other = SynthExperiment(B, (("control", 0.5), ("treatment", 0.5)), "control", (("treatment", 0.3),))
    truth = generate(wh, days=DAYS, end=END, users=3000, seed=62, lift={"treatment": 0.0}, others=[other],
                     incidents=["error_burst@08:00/600:treatment"])
    params = root / "params"
    (params / "experiments").mkdir(parents=True)
    base = yaml.safe_load((ROOT / "params" / "experiment.yaml").read_text())
    for exp in (A, B):
        data = {**base, "experiment_id": exp, "start_date": truth["start_date"]}
        (params / "experiments" / f"{exp}.yaml").write_text(yaml.safe_dump(data))
    (params / "experiments" / "alerts.yaml").write_text((ROOT / "params" / "alerts.yaml").read_text())
    build_range(wh, END - dt.timedelta(days=DAYS - 1), END, rollup_config(load_experiments(params)))
    return wh, params, truth


def _readout(wh: Path, params_file: Path) -> dict:
    config = load_experiment(params_file)
    checks = validate_day(wh, END, config=config)
    evaluate_day(wh, END, config, params_file=params_file, checks=checks)
    return run_tile("readout", event_date=END, warehouse=wh, params_file=params_file).headline


def test_each_readout_judges_its_own_experiment(portfolio: tuple[Path, Path, dict]) -> None:
    wh, params, truth = portfolio
    heads = {exp: _readout(wh, params / "experiments" / f"{exp}.yaml") for exp in (A, B)}
    true_lift = {exp: truth["experiments"][exp]["metric_lift"]["ctr"]["treatment"] for exp in (A, B)}
    assert true_lift[A] == pytest.approx(0.0, abs=1e-9) and true_lift[B] == pytest.approx(0.3, abs=1e-3)
    for exp, head in heads.items():
        primary = head["arms"]["treatment"]["primary"]
        assert primary["seq_low"] <= true_lift[exp] <= primary["seq_high"], (exp, primary)
    assert heads[B]["arms"]["treatment"]["primary"]["rel_low"] > 0.1, heads[B]["arms"]["treatment"]["primary"]
    assert heads[A]["verdict"] == "roll_back", heads[A]["reasons"]
    guard = {exp: {g["metric"]: g["status"] for g in heads[exp]["arms"]["treatment"]["guardrails"]} for exp in (A, B)}
    assert guard[A]["error_rate"] == "fail" and guard[B]["error_rate"] == "pass", guard
    assert heads[B]["verdict"] != "roll_back", heads[B]["reasons"]
    # each readout counts its own arms: the smaller arm's exposed users, as the generator counted them
    for exp in (A, B):
        alloc = truth["experiments"][exp]["realized_allocation"]
        smaller = min(alloc["control"]["exposed_users"], alloc["treatment"]["exposed_users"])
        assert heads[exp]["progress"]["users"]["treatment"] == smaller, exp
