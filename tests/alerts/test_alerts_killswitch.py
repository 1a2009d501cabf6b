"""Kill switches: written for their incidents (state, reason, alert, time) with an audit log,
once per incident; a request for approval withdrawn when its alert resolves first; shown, reset and
approved from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from expkit.alerts import evaluate_day
from expkit.cli import main
from expkit.config import ExperimentConfig

from .conftest import END, PARAMS, write_rules

EXPECTED = {  # key: (state, rule, alert fired at)
    "disable_experiment/rec_ranker_v2": ("engaged", "error_rate_high", "2026-11-14T19:40:00Z"),
    "serve_cached/rec_ranker_v2": ("engaged", "data_stale", "2026-11-14T12:20:00Z"),
    # cache_hit_low resolves the same evening, before anyone approved: its request is withdrawn
    "bypass_cache/rec_ranker_v2": ("off", "cache_hit_low", "2026-11-14T18:10:00Z"),
    "pause_experiment/rec_ranker_v2": ("pending_approval", "traffic_imbalance", "2026-11-15T00:00:00Z"),
}


def switches(wh: Path) -> dict[str, dict[str, Any]]:
    return json.loads((wh / "state" / "alerts" / "killswitches.json").read_text())["switches"]


def audit(wh: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (wh / "state" / "alerts" / "killswitch_audit.jsonl").read_text().splitlines()]


def cli(wh: Path, *args: str) -> int:
    return main(["killswitch", *args, "--warehouse", str(wh)])


def test_kill_switches_for_their_incidents(fresh_wh: Path, config: ExperimentConfig, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rules = write_rules(tmp_path / "alerts.yaml")
    evaluate_day(fresh_wh, END, config, PARAMS, rules_file=rules)
    assert not (fresh_wh / "state" / "alerts" / "killswitches.json").exists()  # no side effects by default
    evaluate_day(fresh_wh, END, config, PARAMS, rules_file=rules, notify=True)
    doc = switches(fresh_wh)
    assert {k: (s["state"], s["rule"], s["alert_fired_at"]) for k, s in doc.items()} == EXPECTED
    assert doc["disable_experiment/rec_ranker_v2"]["reason"].startswith("error rate ")
    assert doc["serve_cached/rec_ranker_v2"]["labels"]["table"] == "impressions"
    assert all(s["changed_at"] and s["incident"] for s in doc.values())
    events = audit(fresh_wh)
    assert sorted((e["key"], e["event"]) for e in events) == sorted(
        [(k, "engage" if s == "engaged" else "request_approval") for k, (s, _, _) in EXPECTED.items()]
        + [("bypass_cache/rec_ranker_v2", "withdraw")])
    withdrawn = next(e for e in events if e["event"] == "withdraw")
    assert withdrawn["previous_state"] == "pending_approval" and withdrawn["by"] == "alert cache_hit_low resolved"
    assert withdrawn["reason"].startswith("the alert resolved at 2026-11-14T")
    assert withdrawn["reason"].endswith("before approval")
    assert doc["bypass_cache/rec_ranker_v2"]["reason"].startswith("approval withdrawn: the alert resolved at ")
    assert [e["key"] for e in events].index("bypass_cache/rec_ranker_v2") < [
        (e["key"], e["event"]) for e in events].index(("bypass_cache/rec_ranker_v2", "withdraw"))

    # Once per incident: replaying again changes nothing.
    evaluate_day(fresh_wh, END, config, PARAMS, rules_file=rules, notify=True)
    assert audit(fresh_wh) == events

    capsys.readouterr()
    assert cli(fresh_wh, "status", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [s["state"] for s in shown] == ["engaged", "engaged", "pending_approval", "off"]
    # A withdrawn request cannot be approved any more: one line saying so, exit 2.
    assert cli(fresh_wh, "approve", "bypass_cache", "--by", "bob") == 2
    assert "bypass_cache/rec_ranker_v2 is off" in capsys.readouterr().err

    assert cli(fresh_wh, "reset", "disable_experiment", "--by", "alice", "--reason", "rolled back") == 0
    assert switches(fresh_wh)["disable_experiment/rec_ranker_v2"]["state"] == "off"
    last = audit(fresh_wh)[-1]
    assert (last["event"], last["by"], last["reason"], last["previous_state"]) == \
        ("reset", "alice", "rolled back", "engaged")
    # A reset switch stays off when the same day is replayed again.
    evaluate_day(fresh_wh, END, config, PARAMS, rules_file=rules, notify=True)
    assert switches(fresh_wh)["disable_experiment/rec_ranker_v2"]["state"] == "off"

    assert cli(fresh_wh, "approve", "pause_experiment", "--by", "bob") == 0
    assert switches(fresh_wh)["pause_experiment/rec_ranker_v2"]["state"] == "engaged"
    assert cli(fresh_wh, "reset", "all", "--by", "carol") == 0
    assert {s["state"] for s in switches(fresh_wh).values()} == {"off"}
    assert [e["event"] for e in audit(fresh_wh)[len(events):]] == ["reset", "approve", "reset", "reset"]
    assert cli(fresh_wh, "reset", "nonexistent", "--by", "dave") == 2
    assert "no kill switch 'nonexistent'" in capsys.readouterr().err
    # Approving a switch that waits for no approval engages nothing: one line saying so, exit 2.
    n = len(audit(fresh_wh))
    assert cli(fresh_wh, "approve", "disable_experiment", "--by", "erin") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "disable_experiment/rec_ranker_v2 is off" in err[0] and "pending_approval" in err[0]
    assert len(audit(fresh_wh)) == n and switches(fresh_wh)["disable_experiment/rec_ranker_v2"]["state"] == "off"
