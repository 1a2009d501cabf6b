"""Alerts of a day with several experiments (docs/reports.md, "The portfolio"; docs/alerts.md).

With an ``exposures`` table the requests carry one experiment's id and the other experiments'
assignments are exposures (docs/synthetic.md, "Several experiments"). The 5-minute health rules of
such another experiment must read the platform's requests: its users are served by the same
system, and reading requests by its own id finds none, so a latency spike would pass its
readout's alerts gate unseen.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from expkit.alerts import evaluate_day
from expkit.config import load_experiment, rollup_config
from expkit.readers import platform_health_id
from expkit.rollup import build_range
from expkit.synth import generate
from expkit.synth.warehouse import SynthExperiment
from expkit.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params" / "experiment.yaml"
RULES = ROOT / "params" / "alerts.yaml"
END = dt.date(2026, 11, 14)
OTHER = "search_v3"


@pytest.fixture(scope="module")
def two_experiments(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """One day (after one warm-up day) with a latency spike; the requests carry the first
    experiment's id, the second experiment is in the exposures table."""
    root = tmp_path_factory.mktemp("alerts-portfolio")
    other = SynthExperiment(OTHER, (("control", 0.5), ("treatment", 0.5)), "control", ())
    generate(root / "wh", days=2, end=END, users=1500, seed=5, incidents=["latency_spike"], others=[other])
    base = PARAMS.read_text()
    first = load_experiment(PARAMS)
    second_file = root / f"{OTHER}.yaml"
    second_file.write_text(base.replace(f"experiment_id: {first.experiment_id}", f"experiment_id: {OTHER}"))
    second = load_experiment(second_file)
    assert second.experiment_id == OTHER
    build_range(root / "wh", END - dt.timedelta(days=1), END, rollup_config([first, second]))
    return root / "wh", PARAMS, second_file


def _rules(alerts: list[dict]) -> set[str]:
    return {a["rule"] for a in alerts}


def test_the_other_experiments_health_rules_read_the_platforms_requests(
    two_experiments: tuple[Path, Path, Path],
) -> None:
    wh, first_file, second_file = two_experiments
    first, second = load_experiment(first_file), load_experiment(second_file)
    assert platform_health_id(Warehouse.open(wh), END, second.experiment_id) == first.experiment_id
    assert platform_health_id(Warehouse.open(wh), END, first.experiment_id) == first.experiment_id
    own = evaluate_day(wh, END, first, params_file=first_file, rules_file=RULES, record=False)
    assert "latency_p95_high" in _rules(own)  # the planted spike
    # read by its own id, the second experiment has no requests: the spike goes unseen
    blind = evaluate_day(wh, END, second, params_file=second_file, rules_file=RULES, record=False)
    assert "latency_p95_high" not in _rules(blind)
    seen = evaluate_day(wh, END, second, params_file=second_file, rules_file=RULES, record=False,
                        platform_health=True)
    assert "latency_p95_high" in _rules(seen)
    spike = [a for a in seen if a["rule"] == "latency_p95_high"]
    assert spike and all(a["labels"]["experiment"] == OTHER for a in spike)
    # the experiment the requests carry is unchanged by the flag
    assert evaluate_day(wh, END, first, params_file=first_file, rules_file=RULES, record=False,
                        platform_health=True) == own
