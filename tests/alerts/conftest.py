"""Shared fixtures of the alert tests: synthetic warehouses (built once per session), a fresh
state folder over them, and a real local HTTP server standing in for a webhook receiver."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from webhook_support import WebhookReceiver, serve_webhook

from expkit.config import ExperimentConfig, load_experiment
from expkit.rollup import build_range
from expkit.synth import generate

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params" / "experiment.yaml"
RULES = ROOT / "params" / "alerts.yaml"
END = dt.date(2026, 11, 14)
INCIDENTS = ["latency_spike", "error_burst", "cache_failure", "coverage_drop", "stale_partition",
             "traffic_imbalance", "ctr_collapse"]



@pytest.fixture(scope="session")
def config() -> ExperimentConfig:
    return load_experiment(PARAMS)


def _build(root: Path, config: ExperimentConfig, days: int, users: int, seed: int, incidents: list[str]) -> Path:
    generate(root, days=days, end=END, users=users, seed=seed, incidents=incidents,
             experiment_id=config.experiment_id, buckets=config.buckets, control=config.control)
    build_range(root, END - dt.timedelta(days=days - 1), END, config)
    return root


@pytest.fixture(scope="session")
def incident_wh(tmp_path_factory: pytest.TempPathFactory, config: ExperimentConfig) -> Path:
    """Three days, 4000 users; the last day (and, for ctr_collapse, the one before) has the
    seven incidents that map to alert rules, at their default times."""
    return _build(tmp_path_factory.mktemp("incidents") / "wh", config, 3, 4000, 7, INCIDENTS)


@pytest.fixture(scope="session")
def truth(incident_wh: Path) -> dict[str, Any]:
    return json.loads((incident_wh / "truth.json").read_text())


@pytest.fixture(scope="session")
def clean_week(tmp_path_factory: pytest.TempPathFactory, config: ExperimentConfig) -> Path:
    """Seven healthy days, 3000 users."""
    return _build(tmp_path_factory.mktemp("clean") / "wh", config, 7, 3000, 5, [])


def fresh_state(source: Path, dest: Path) -> Path:
    """A warehouse sharing ``source``'s events and rollups, with its own (empty) alert state."""
    dest.mkdir(parents=True)
    for name in ("events", "rollups"):
        (dest / name).symlink_to(source / name, target_is_directory=True)
    shutil.copytree(source / "state" / "rollups", dest / "state" / "rollups")
    shutil.copy(source / "truth.json", dest / "truth.json")
    return dest


@pytest.fixture
def fresh_wh(incident_wh: Path, tmp_path: Path) -> Path:
    return fresh_state(incident_wh, tmp_path / "wh")


def write_rules(path: Path, webhook_url: str | None = None, **notify: Any) -> Path:
    """A copy of params/alerts.yaml whose webhook points at ``webhook_url`` (none if None)."""
    doc = yaml.safe_load(RULES.read_text())
    doc["notify"]["webhooks"] = [] if webhook_url is None else [
        {"name": "test", "url": webhook_url, "timeout": "2s", "retries": 2, "backoff": "10ms"}]
    doc["notify"].update(notify)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


Receiver = WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    yield from serve_webhook("/alerts")
