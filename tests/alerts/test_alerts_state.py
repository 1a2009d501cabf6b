"""Alert state survives restarts: a process killed mid-evaluation or mid-delivery loses no
notification and duplicates none in the log; two evaluations at once do not corrupt the state;
the live path notifies exactly what the batch replay decides."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from expkit.alerts import AlertStore, load_alerts, monitor, monitor_once
from expkit.alerts.delivery import Notification
from expkit.alerts.engine import RuleEngine
from expkit.alerts.runner import replay_day
from expkit.alerts.sinks import DeliveryResult, JsonlSink
from expkit.cli import main
from expkit.config import ExperimentConfig
from expkit.warehouse import Warehouse, day_bounds_ms

from .conftest import END, PARAMS, ROOT, Receiver, fresh_state, write_rules

START, STOP = day_bounds_ms(END)
NOW = STOP + 10 * 60_000          # 00:10 the next day
SINCE = START - 3_600_000         # one hour of warm-up, as the batch replay


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs, no handler catches it."""


def log_ids(wh: Path) -> list[str]:
    path = wh / "state" / "alerts" / "notifications.jsonl"
    return [json.loads(x)["id"] for x in path.read_text().splitlines()] if path.exists() else []


def audit_ids(wh: Path) -> list[str]:
    path = wh / "state" / "alerts" / "killswitch_audit.jsonl"
    return [json.loads(x)["event_id"] for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def log_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rules(tmp_path_factory.mktemp("rules") / "alerts.yaml")


@pytest.fixture(scope="module")
def reference(incident_wh: Path, config: ExperimentConfig, log_rules: Path,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[str]]:
    """Notification and kill switch audit ids of one uninterrupted live run over the day."""
    wh = fresh_state(incident_wh, tmp_path_factory.mktemp("reference") / "wh")
    monitor_once(wh, config, PARAMS, load_alerts(log_rules), NOW, since_ms=SINCE)
    ids = log_ids(wh)
    assert len(ids) > 10 and len(set(ids)) == len(ids)
    return ids, audit_ids(wh)


def test_crash_mid_evaluation_loses_nothing(fresh_wh: Path, config: ExperimentConfig, log_rules: Path,
                                            reference: tuple[list[str], list[str]],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    rules = load_alerts(log_rules)
    real = RuleEngine.evaluate
    calls = Counter[str]()

    def dying(self: RuleEngine, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 200:  # about 15:35, after several alerts fired and resolved
            raise Crash
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RuleEngine, "evaluate", dying)
    with pytest.raises(Crash):
        monitor_once(fresh_wh, config, PARAMS, rules, NOW, since_ms=SINCE)
    assert log_ids(fresh_wh) == [] and not (fresh_wh / "state" / "alerts" / "state.json").exists()
    monkeypatch.setattr(RuleEngine, "evaluate", real)
    monitor_once(fresh_wh, config, PARAMS, rules, NOW, since_ms=SINCE)
    assert (log_ids(fresh_wh), audit_ids(fresh_wh)) == reference


class DyingLog(JsonlSink):
    """The log sink of a process that dies right after its ``crash_at``-th write."""

    def __init__(self, path: Path, crash_at: int):
        super().__init__(path)
        self.crash_at, self.calls = crash_at, 0

    def deliver(self, note: Notification) -> DeliveryResult:
        result = super().deliver(note)
        self.calls += 1
        if self.calls == self.crash_at:
            raise Crash
        return result


@pytest.mark.parametrize("crash_at", [1, 5, 12])
def test_crash_mid_delivery_loses_and_duplicates_nothing(fresh_wh: Path, config: ExperimentConfig,
                                                         log_rules: Path, crash_at: int,
                                                         reference: tuple[list[str], list[str]]) -> None:
    rules = load_alerts(log_rules)
    store = AlertStore(Warehouse.open(fresh_wh))
    with pytest.raises(Crash):
        monitor_once(fresh_wh, config, PARAMS, rules, NOW, since_ms=SINCE,
                     sinks={"log": DyingLog(store.log_path, crash_at)})
    assert len(log_ids(fresh_wh)) == crash_at
    assert store.load().outbox  # the rest waits in the saved outbox
    monitor_once(fresh_wh, config, PARAMS, rules, NOW, since_ms=SINCE)  # the restarted process
    assert (log_ids(fresh_wh), audit_ids(fresh_wh)) == reference
    assert not store.load().outbox


def _monitor_cmd(wh: Path, rules: Path) -> list[str]:
    return [sys.executable, "-m", "expkit.cli", "monitor", "--warehouse", str(wh), "--params", str(PARAMS),
            "--rules", str(rules), "--now", "2026-11-15T00:10:00Z", "--since", "2026-11-13T23:00:00Z", "--once"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def test_sigkill_while_delivering_then_restart(fresh_wh: Path, receiver: Receiver, tmp_path: Path,
                                               reference: tuple[list[str], list[str]]) -> None:
    rules = write_rules(tmp_path / "alerts.yaml", receiver.url)
    receiver.hold_at = 3  # the third webhook call hangs until the process is killed
    proc = subprocess.Popen(_monitor_cmd(fresh_wh, rules), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        assert receiver.holding.wait(120), proc.stderr.read() if proc.poll() is not None else "no third call"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        receiver.release.set()
    ids, audit = reference
    assert log_ids(fresh_wh) == ids  # the evaluation wrote the log; the webhook is called after it, apart
    done = subprocess.run(_monitor_cmd(fresh_wh, rules), env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (log_ids(fresh_wh), audit_ids(fresh_wh)) == (ids, audit)
    sent = Counter(receiver.ids())
    assert set(sent) == set(ids)                                # nothing lost
    assert sum(sent.values()) - len(ids) <= 1 and sent[ids[2]] == 2  # only the one in flight twice


def test_two_evaluations_at_once(fresh_wh: Path, log_rules: Path, reference: tuple[list[str], list[str]]) -> None:
    procs = [subprocess.Popen(_monitor_cmd(fresh_wh, log_rules), env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    assert (log_ids(fresh_wh), audit_ids(fresh_wh)) == reference
    state = json.loads((fresh_wh / "state" / "alerts" / "state.json").read_text())
    # 00:10: the bin 00:00-00:05 of the next day, which has no event file, was evaluated too
    assert state["outbox"] == [] and state["cursors"]["5m"] == STOP + 5 * 60_000
    lines = [json.loads(o[0]) for o in outs]
    assert sorted(bool(x["evaluated"]) for x in lines) == [False, True]  # the second found nothing new


def test_live_path_notifies_what_the_batch_replay_decides(fresh_wh: Path, config: ExperimentConfig,
                                                          log_rules: Path) -> None:
    rules = load_alerts(log_rules)
    reports = monitor(fresh_wh, config, PARAMS, rules, every_s=4 * 3600, iterations=6,
                      start_ms=START + 4 * 3_600_000, since_ms=SINCE)
    # the day's last bin, and not the next day's (without files, it would be judged stale)
    monitor_once(fresh_wh, config, PARAMS, rules, STOP + 60_000)
    assert [r.evaluated.get("5m", (None, None))[1] for r in reports][:2] == [
        "2026-11-14T03:55:00Z", "2026-11-14T07:55:00Z"]
    evaluation, _ = replay_day(fresh_wh, END, config, PARAMS, rules=rules)
    assert log_ids(fresh_wh) == [n.id for n in evaluation.result.notifications]
    state = AlertStore(Warehouse.open(fresh_wh)).load()
    live = {(a.rule, a.fingerprint, a.active_at, a.fired_at, a.resolved_at) for a in [*state.recent,
                                                                                      *state.active.values()]
            if a.fired_at}
    batch = {(a.rule, a.fingerprint, a.active_at, a.fired_at, a.resolved_at)
             for a in evaluation.result.incidents.values() if a.fired_at}
    assert live == batch


def test_monitor_waits_for_rollups_built_after_the_bins(fresh_wh: Path, config: ExperimentConfig,
                                                        log_rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = fresh_wh / "state" / "rollups" / f"{END}.json"
    doc = json.loads(manifest.read_text())
    built = doc["built_at_ms"]
    doc["built_at_ms"] = START + 12 * 3_600_000  # rolled up at 12:00 that day
    manifest.write_text(json.dumps(doc))
    args = ["monitor", "--warehouse", str(fresh_wh), "--params", str(PARAMS), "--rules", str(log_rules),
            "--now", "2026-11-15T00:10:00Z", "--since", "2026-11-13T23:00:00Z", "--once"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["evaluated"]["5m"] == ["2026-11-13T23:00:00Z", "2026-11-14T11:55:00Z"]
    assert "1d" not in first["evaluated"] or first["evaluated"]["1d"][1] == "2026-11-14T00:00:00Z"
    doc["built_at_ms"] = built
    manifest.write_text(json.dumps(doc))
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["evaluated"]["5m"] == ["2026-11-14T11:55:00Z", "2026-11-15T00:05:00Z"]  # next day: no files
    assert {a["rule"] for a in second["firing"]} == {"ctr_low", "traffic_imbalance"}


def test_monitor_waits_while_a_days_rollups_are_stale(fresh_wh: Path, log_rules: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The lineage rule of the rollups: a day whose event files changed since its rollup is not ready."""
    manifest = fresh_wh / "state" / "rollups" / f"{END}.json"
    doc = json.loads(manifest.read_text())
    recorded = json.dumps(doc)
    doc["sources"]["clicks"][0][2] -= 1  # the clicks file changed after the build (late data)
    manifest.write_text(json.dumps(doc))
    args = ["monitor", "--warehouse", str(fresh_wh), "--params", str(PARAMS), "--rules", str(log_rules),
            "--now", "2026-11-15T00:10:00Z", "--since", "2026-11-13T23:00:00Z", "--once"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["evaluated"]["5m"] == ["2026-11-13T23:00:00Z", "2026-11-14T00:00:00Z"]
    manifest.write_text(recorded)  # rebuilt: ready again
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["evaluated"]["5m"] == ["2026-11-14T00:00:00Z", "2026-11-15T00:05:00Z"]


def test_status_ack_and_silence_commands(fresh_wh: Path, config: ExperimentConfig, log_rules: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monitor_once(fresh_wh, config, PARAMS, load_alerts(log_rules), NOW, since_ms=SINCE)
    base = ["--warehouse", str(fresh_wh)]
    capsys.readouterr()
    assert main(["alerts", "status", *base, "--rules", str(log_rules)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {a["rule"] for a in status["active"]} == {"ctr_low", "traffic_imbalance"}
    assert status["outbox"] == [] and len(status["recently_resolved"]) == 7

    assert main(["alerts", "ack", *base, "--rule", "traffic_imbalance", "--by", "alice", "--comment", "on it"]) == 0
    acks = json.loads(capsys.readouterr().out)
    assert acks[0]["by"] == "alice" and acks[0]["active_at"] == START
    assert main(["alerts", "ack", *base, "--rule", "coverage_low"]) == 2  # not firing now
    assert main(["alerts", "ack", *base, "0123456789abcdef", "--by", "bob"]) == 0
    capsys.readouterr()

    assert main(["alerts", "silence", *base, "--match", "rule=ctr_low", "--match", 'bucket=~"treat.*"',
                 "--start", "2026-11-15T00:00:00Z", "--for", "2h", "--by", "alice"]) == 0
    created = json.loads(capsys.readouterr().out)
    listed = _silences(base, capsys)
    assert [s["id"] for s in listed] == [created["id"]] and listed[0]["active"] is False  # starts later
    assert listed[0]["matchers"] == ['alertname="ctr_low"', 'bucket=~"treat.*"']
    assert listed[0]["ends_at"] == "2026-11-15T02:00:00Z"
    assert main(["alerts", "silence", *base, "--match", "experiment=rec_ranker_v2", "--for", "2h"]) == 0
    now_id = json.loads(capsys.readouterr().out)["id"]
    assert {s["id"]: s["active"] for s in _silences(base, capsys)}[now_id] is True
    assert main(["alerts", "silence", *base, "--expire", now_id]) == 0
    assert {s["id"]: s["active"] for s in _silences(base, capsys)}[now_id] is False
    assert main(["alerts", "silence", *base, "--match", "rule ctr_low"]) == 2
    assert main(["alerts", "silence", *base]) == 2


def _silences(base: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["alerts", "silence", *base, "--list"]) == 0
    return json.loads(capsys.readouterr().out)


def test_usage_errors_exit_2(incident_wh: Path, tmp_path: Path) -> None:
    base = ["alerts", "eval", "--warehouse", str(incident_wh)]
    assert main([*base, "--date", "2026-02-30"]) == 2
    assert main([*base, "--date", str(END), "--rules", str(tmp_path / "missing.yaml")]) == 2
    assert main([*base, "--date", str(END - dt.timedelta(days=30))]) == 2
    assert main(["monitor", "--warehouse", str(incident_wh), "--every", "0"]) == 2


def test_monitor_reports_a_failed_iteration_and_goes_on(fresh_wh: Path, config: ExperimentConfig,
                                                        log_rules: Path) -> None:
    state = fresh_wh / "state" / "alerts" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text("{not json")
    errors: list[Exception] = []
    reports = monitor(fresh_wh, config, PARAMS, load_alerts(log_rules), 60, iterations=2, start_ms=NOW,
                      since_ms=SINCE, on_error=errors.append)
    assert reports == [] and len(errors) == 2 and "is not valid JSON" in str(errors[0])
    assert state.read_text() == "{not json"  # left for a person to look at, not overwritten


def test_an_evaluated_day_is_recorded_for_the_readout(fresh_wh: Path, config: ExperimentConfig) -> None:
    """evaluate_day stores the day's timeline (the readout's alerts gate reads it through
    expkit.run_tile); record=False leaves the state as it was."""
    from expkit.alerts import evaluate_day
    from expkit.api import with_inputs
    from expkit.tiles import check_params

    store = AlertStore(Warehouse.open(fresh_wh))
    exp = config.experiment_id
    assert store.load_day(END, exp) is None
    evaluate_day(fresh_wh, END, config, params_file=PARAMS, record=False)
    assert store.load_day(END, exp) is None
    alerts = evaluate_day(fresh_wh, END, config, params_file=PARAMS)
    assert alerts and store.load_day(END, exp) == json.loads(json.dumps(alerts))
    # each experiment of the warehouse keeps its own timeline of the day
    assert store.load_day(END, exp + "_other") is None
    p = with_inputs(check_params("lift", event_date=END, warehouse=fresh_wh, params_file=PARAMS))
    assert p.alerts is not None and {a["rule"] for a in p.alerts} == {a["rule"] for a in alerts}
    earlier = with_inputs(check_params("lift", event_date=END - dt.timedelta(days=1), warehouse=fresh_wh,
                                       params_file=PARAMS))
    assert earlier.alerts is None


def test_a_rule_removed_from_the_rules_file_while_its_alert_fires(fresh_wh: Path, config: ExperimentConfig,
                                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Deleting a rule is an ordinary edit of alerts.yaml: the monitor and ``alerts status`` go on
    with the remaining rules (they failed with "no alert rule ..." at every evaluation), and the
    dropped alert is named in a warning."""
    doc = yaml.safe_load(write_rules(tmp_path / "base.yaml").read_text())
    base = tmp_path / "base.yaml"
    extra = dict(doc["rules"][0], name="p95_above_1ms", condition="> 1", **{"for": "5m"})
    doc["rules"].append(extra)
    more = tmp_path / "more.yaml"
    more.write_text(yaml.safe_dump(doc, sort_keys=False))
    monitor_once(fresh_wh, config, PARAMS, load_alerts(more), START + 2 * 3_600_000, since_ms=START)
    assert "p95_above_1ms" in {a.rule for a in AlertStore(Warehouse.open(fresh_wh)).load().active.values()}
    with caplog.at_level("WARNING"):
        report = monitor_once(fresh_wh, config, PARAMS, load_alerts(base), START + 3 * 3_600_000)
    assert report.evaluated["5m"][1] == "2026-11-14T02:55:00Z"
    assert "p95_above_1ms" in caplog.text
    state = AlertStore(Warehouse.open(fresh_wh)).load()
    assert all(a.rule != "p95_above_1ms" for a in [*state.active.values(), *state.recent])
    assert main(["alerts", "status", "--warehouse", str(fresh_wh), "--rules", str(base)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("fingerprint", ["deadbeef", "latency_p95_high", "41905322A4FB112Z"])
def test_ack_of_something_that_is_no_fingerprint_is_refused(fresh_wh: Path, fingerprint: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped fingerprint (or a rule name where a fingerprint goes) acknowledged nothing while
    printing the ack as stored; now one line and exit 2, and no ack is stored."""
    assert main(["alerts", "ack", fingerprint, "--warehouse", str(fresh_wh), "--by", "me"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fingerprint in err[0] and "16 hex" in err[0]
    assert AlertStore(Warehouse.open(fresh_wh)).acks() == []
