"""``expkit live`` on a streamed day with a latency spike and an error burst: the alerts fire
within the rule's ``for`` plus 2 minutes of each incident's start and resolve after it, a clean
hour fires nothing, and the page opens offline in Chromium with its charts, the firing alert and
a stale notice once its update time is old."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from expkit.alerts.state import AlertStore
from expkit.live import STALE_AFTER_MS, tick
from expkit.synth.stream import stream
from expkit.warehouse import Warehouse

from .conftest import DAY, PARAMS, ROOT, SEED

sys.path.insert(0, str(ROOT / "tests" / "report"))
from report_browser import CHROMIUM, Browser  # noqa: E402

EXPKIT = [sys.executable, "-c", "import sys; from expkit.cli import main; sys.exit(main())"]
USERS = 2000
SPIKE, BURST = ("latency_spike", 13 * 60 + 30, 20), ("error_burst", 14 * 60 + 10, 20)
FIRST_TICK, PAGE_TICK, LAST_TICK = 13 * 60 + 25, 14 * 60 + 25, 14 * 60 + 45
ARTIFACTS = ROOT / "test-artifacts"


def _ms(minute: int) -> int:
    import datetime as dt

    return int(dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.timezone.utc).timestamp() * 1000) + minute * 60_000


@dataclass
class Replay:
    """A streamed warehouse driven by the live tier one simulated minute at a time."""

    root: Path
    page: Path
    states: dict[int, dict[str, str]]  # tick minute -> rule -> pending | firing
    cli: dict[str, Any]


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    root = tmp_path_factory.mktemp("streamed")
    incidents = [f"{n}@{m // 60:02d}:{m % 60:02d}/{d}" for n, m, d in (SPIKE, BURST)]
    stream(root, f"{DAY}T13:00", speed=1e9, incidents=incidents, users=USERS, seed=SEED,
           until=f"{DAY}T{LAST_TICK // 60:02d}:{LAST_TICK % 60:02d}")
    wh = Warehouse.open(root)
    out = root.parent / f"{root.name}-page"
    states: dict[int, dict[str, str]] = {}
    cli: dict[str, Any] = {}
    for minute in range(FIRST_TICK, LAST_TICK + 1):
        if minute == PAGE_TICK:  # the command line, as cron or systemd runs it
            run = subprocess.run([*EXPKIT, "live", "--warehouse", str(root), "--out", str(out), "--once",
                                  "--now", f"{DAY}T{minute // 60:02d}:{minute % 60:02d}Z", "--params", str(PARAMS)],
                                 capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, run.stderr
            cli = json.loads(run.stdout.strip().splitlines()[-1])
        else:
            tick(wh, out, PARAMS, now_ms=_ms(minute), page=False)
        states[minute] = {a.rule: a.state for a in AlertStore(wh).load().active.values()}
    return Replay(root, out / "index.html", states, cli)


def _first(states: dict[int, dict[str, str]], rule: str, state: str, after: int = 0) -> int | None:
    return next((m for m, s in sorted(states.items()) if m >= after and s.get(rule) == state), None)


@pytest.mark.slow
@pytest.mark.parametrize(("incident", "rule"), [(SPIKE, "latency_p95_high"), (BURST, "error_rate_high")])
def test_incident_fires_within_for_plus_two_minutes_and_resolves(
    replay: Replay, incident: tuple[str, int, int], rule: str
) -> None:
    _, start, minutes = incident
    fired = _first(replay.states, rule, "firing")
    assert fired is not None, f"{rule} never fired"
    assert start < fired <= start + 10 + 2  # 'for: 10m' (params/alerts.yaml) + 2 minutes
    resolved = next(m for m in sorted(replay.states) if m > fired and rule not in replay.states[m])
    assert resolved <= start + minutes + 5 + 2  # the first healthy bin after the incident, + 2 min


@pytest.mark.slow
def test_a_clean_hour_fires_nothing(replay: Replay) -> None:
    """The first tick evaluates the hour before it (catch-up), then ticks go on to the spike."""
    clean = {m: s for m, s in replay.states.items() if m < SPIKE[1] + 5}
    assert clean and all(not s for s in clean.values()), clean


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")
def test_live_page_offline_in_chromium_shows_the_firing_alert(replay: Replay) -> None:
    # The burst's errors return no items, so Top-K fill drops too (INCIDENTS["error_burst"].alerts).
    firing = {a["rule"]: a["severity"] for a in replay.cli["firing"]}
    assert firing == {"error_rate_high": "P1", "topk_fill_low": "P3"}
    probe = """window.expkitChartsReady.then(() => ({
      drawn: document.querySelectorAll('.expkit-chart[data-state=drawn]').length,
      charts: document.querySelectorAll('.expkit-chart').length,
      tiles: document.querySelectorAll('#tiles td.tile').length,
      firing: Array.from(document.querySelectorAll('#alerts tr.alert.firing')).map(r => r.dataset.rule),
      breach: Array.from(document.querySelectorAll('td.tile[data-status=breach]')).map(
        c => c.dataset.tile + '/' + c.dataset.window),
      stale: !document.getElementById('stale').hidden,
      refresh: document.querySelector('meta[http-equiv=refresh]').content}))"""
    browser = Browser(timeout=120)
    try:
        visit, facts = browser.visit(replay.page, screenshot=ARTIFACTS / "live-page.png", probe=probe)
    finally:
        browser.close()
    assert [u for u in visit.requests if not u.startswith("file://")] == []
    assert not visit.exceptions and not visit.console_errors
    assert facts["tiles"] == 16 and facts["charts"] >= 14 and facts["drawn"] == facts["charts"]
    assert sorted(facts["firing"]) == ["error_rate_high", "topk_fill_low"]
    assert "errors/1h" in facts["breach"]
    assert facts["stale"] is False and facts["refresh"] == "60"


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")
def test_stale_notice_shows_when_the_update_time_is_old(replay: Replay, tmp_path: Path) -> None:
    old = int(time.time() * 1000) - STALE_AFTER_MS - 60_000
    page = tick(replay.root, tmp_path, PARAMS, now_ms=_ms(LAST_TICK), wall_ms=old).page
    browser = Browser(timeout=120)
    try:
        _, facts = browser.visit(page, screenshot=ARTIFACTS / "live-page-stale.png",
                                 probe="({stale: !document.getElementById('stale').hidden, "
                                       "text: document.getElementById('stale').textContent})")
    finally:
        browser.close()
    assert facts["stale"] is True and "no update for 4 minutes" in facts["text"]


DRIVER = """
import sys
from expkit.live import tick
root, out, params, base, first, last = sys.argv[1:7]
for m in range(int(first), int(last) + 1):
    tick(root, out, params, now_ms=int(base) + m * 60_000, page=False)
    print(m, flush=True)
"""


def _notifications(root: Path) -> list[dict[str, Any]]:
    path = root / "state" / "alerts" / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_live_killed_and_restarted_skips_no_bin_and_repeats_no_alert(tmp_path: Path, config: Any) -> None:
    """``live`` SIGKILLed in the middle of its ticks and restarted at the minute it had not
    finished: the rollups equal an uninterrupted run's (no bin skipped or counted twice), and
    the notifications and kill switch changes are the same, each once."""
    import random
    import shutil
    import signal

    from expkit.incremental import INCREMENTAL_ROLLUPS

    from .conftest import assert_same_table, read_partition

    first, last = 13 * 60 + 30, 14 * 60 + 20
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    stream(killed, f"{DAY}T13:00", speed=1e9, incidents=["error_burst@13:40/20"], users=USERS, seed=SEED,
           until=f"{DAY}T{last // 60:02d}:{last % 60:02d}")
    shutil.copytree(killed, reference)
    base = str(_ms(0))

    def driver(start: int) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", DRIVER, str(killed), str(tmp_path / "page"), str(PARAMS),
                                 base, str(start), str(last)], stdout=subprocess.PIPE, text=True)

    proc, done = driver(first), first - 1
    assert proc.stdout is not None
    for line in proc.stdout:
        done = int(line)
        if done >= first + 12:  # the burst's alert is pending or firing by now
            break
    time.sleep(random.Random(SEED).uniform(0.0, 0.3))  # somewhere inside the next tick
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    rest = driver(done + 1)
    out, _ = rest.communicate(timeout=900)
    assert rest.returncode == 0 and int(out.split()[-1]) == last

    wh = Warehouse.open(reference)
    for m in range(first, last + 1):
        tick(wh, tmp_path / "page-ref", PARAMS, now_ms=_ms(m), page=False)
    for name in INCREMENTAL_ROLLUPS:
        assert_same_table(name, read_partition(Warehouse.open(killed).rollup_partition(name, DAY)),
                          read_partition(wh.rollup_partition(name, DAY)))
    got, want = _notifications(killed), _notifications(reference)
    assert any(n.get("status") == "firing" or "firing" in json.dumps(n) for n in want)
    ids = [n["id"] for n in got]
    assert len(ids) == len(set(ids)), "a notification was sent twice"
    assert sorted(ids) == sorted(n["id"] for n in want)
    audit = (killed / "state" / "alerts" / "killswitch_audit.jsonl").read_text().splitlines()
    audit_ref = (reference / "state" / "alerts" / "killswitch_audit.jsonl").read_text().splitlines()
    assert len(audit) == len(audit_ref) == 1


@pytest.mark.slow
def test_sigterm_ends_live_after_its_update(replay: Replay, tmp_path: Path) -> None:
    """SIGTERM (as systemd stops the service) lets the running update finish, then exit 0."""
    import shutil
    import signal

    root = tmp_path / "wh"
    shutil.copytree(replay.root, root)
    proc = subprocess.Popen([*EXPKIT, "live", "--warehouse", str(root), "--out", str(tmp_path / "live"), "--every",
                             "1", "--now", f"{DAY}T{LAST_TICK // 60:02d}:{LAST_TICK % 60:02d}Z", "--params",
                             str(PARAMS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert first["page"] == str(tmp_path / "live" / "index.html")
    assert (tmp_path / "live" / "index.html").is_file()
    assert not list((tmp_path / "live").glob(".*"))  # no temporary file left behind


@pytest.mark.slow
def test_alert_age_counts_from_the_start_it_shows(replay: Replay) -> None:
    """The alerts table's "since" is the alert's start (active_at); its "age" counts from it."""
    import re

    rows = re.findall(r'<tr class="alert firing" data-rule="error_rate_high".*?</tr>', replay.page.read_text())
    assert len(rows) == 1
    cells = re.findall(r"<td>([^<]*)</td>", rows[0])
    since, age = cells[-2], cells[-1]
    start = BURST[1] - BURST[1] % 5  # the first bad bin's start
    assert since == f"{DAY}T{start // 60:02d}:{start % 60:02d}:00Z"
    assert age == f"{PAGE_TICK - start} min"


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")
def test_minute_ticks_read_as_utc_clock_times(replay: Replay) -> None:
    """The last hour's charts tick every few minutes: a tick at 13:40 UTC reads "13:40" (it read
    "01:40", a 12-hour clock without AM/PM, on a page whose times are all UTC and 24-hour)."""
    probe = """window.expkitChartsReady.then(() => Array.from(document.querySelectorAll(
      'td[data-tile=latency][data-window="1h"] g.role-axis-label text')).map(t => t.textContent))"""
    browser = Browser(timeout=120, tz="America/New_York")
    try:
        _, labels = browser.visit(replay.page, probe=probe)
    finally:
        browser.close()
    minutes = [x for x in labels if len(x) == 5 and x[2] == ":"]
    assert len(minutes) >= 4, labels
    start = (PAGE_TICK - 60) // 60  # the hour the window starts in (13)
    assert all(start <= int(x[:2]) <= PAGE_TICK // 60 for x in minutes), labels
