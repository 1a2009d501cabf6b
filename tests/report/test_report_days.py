"""Several days of real reports: `expkit synth` and `expkit daily` for three days (run out of order,
then one day again) with notify.yaml pointing at a real webhook receiver, a real SMTP server and
a target that is down. The history page lists every day newest first with its verdict and
primary lift, every page's day links resolve, each digest reaches each live target exactly once
across the runs, and a failed delivery neither changes the exit status nor goes unseen."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from digest_support import SMTP_PASSWORD, SMTP_USER, SmtpServer, WebhookReceiver, free_port, serve_smtp, serve_webhook
from report_browser import Browser
from report_support import ARTIFACTS, REPO

from expkit.cli import main
from expkit.report.brief import label
from expkit.tiles.registry import TILES

pytestmark = pytest.mark.slow

END = dt.date(2026, 11, 14)
DAYS = [(END - dt.timedelta(days=i)).isoformat() for i in (2, 1, 0)]  # oldest first
RUN_ORDER = [DAYS[2], DAYS[0], DAYS[1], DAYS[2]]  # newest first, then the older ones, then the newest again


@dataclass(frozen=True)
class Runs:
    out: Path
    codes: list[int]
    stderr: list[str]
    webhook: WebhookReceiver
    smtp: SmtpServer
    warehouse: Path
    params: Path


def _cli(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    return code, err.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    root = tmp_path_factory.mktemp("days")
    params = root / "params"
    params.mkdir()
    for name in ("experiment.yaml", "alerts.yaml"):
        (params / name).write_text((REPO / "params" / name).read_text())
    with contextlib.ExitStack() as stack:
        webhook = stack.enter_context(contextlib.contextmanager(serve_webhook)())
        smtp = stack.enter_context(contextlib.contextmanager(serve_smtp)())
        mp = stack.enter_context(pytest.MonkeyPatch.context())
        mp.setenv("E2E_DIGEST_URL", webhook.url)
        mp.setenv("E2E_DOWN_URL", f"http://127.0.0.1:{free_port()}/nobody-listens")
        mp.setenv("E2E_SMTP_USER", SMTP_USER)
        mp.setenv("E2E_SMTP_PASSWORD", SMTP_PASSWORD)
        (params / "notify.yaml").write_text(yaml.safe_dump({"version": 1, "targets": [
            {"name": "chat", "type": "webhook", "url_env": "E2E_DIGEST_URL"},
            {"name": "mail", "type": "email", "host": "127.0.0.1", "port": smtp.port, "security": "none",
             "username_env": "E2E_SMTP_USER", "password_env": "E2E_SMTP_PASSWORD", "from": "expkit@example.com",
             "to": ["growth@example.com"]},
            {"name": "down", "type": "webhook", "url_env": "E2E_DOWN_URL", "timeout": "2s", "retries": 1,
             "backoff": "10ms"},
        ]}, sort_keys=False))
        wh, out = root / "warehouse", root / "reports"
        code, err = _cli("synth", "--out", str(wh), "--days", "4", "--end", END.isoformat(), "--users", "2000",
                         "--seed", "7", "--params", str(params / "experiment.yaml"), "--quiet")
        assert code == 0, err
        codes, stderr = [], []
        for day in RUN_ORDER:
            code, err = _cli("daily", "--warehouse", str(wh), "--date", day, "--out", str(out), "--params",
                             str(params / "experiment.yaml"), "--workers", "2")
            codes.append(code)
            stderr.append(err)
        yield Runs(out, codes, stderr, webhook, smtp, wh, params / "experiment.yaml")


def _summary(out: Path, day: str) -> dict:
    return json.loads((out / day / "summary.json").read_text())


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%".replace("-", "\u2212")


def test_a_failed_delivery_leaves_the_exit_status_alone(runs: Runs) -> None:
    for day, code in zip(RUN_ORDER, runs.codes, strict=True):
        assert _summary(runs.out, day)["ok"] is True
        assert code == 0, (day, runs.stderr[RUN_ORDER.index(day)][-2000:])
    assert all("down (webhook): NOT delivered after 2 attempts" in err for err in runs.stderr)


def test_each_digest_reaches_webhook_and_smtp_exactly_once_across_reruns(runs: Runs) -> None:
    dates_posted = sorted(re.search(r"\d{4}-\d\d-\d\d", b["text"])[0] for b in runs.webhook.received)
    assert dates_posted == DAYS
    subjects = sorted(m["Subject"] for m in runs.smtp.messages)
    assert subjects == sorted(f"[expkit] rec_ranker_v2 · {d}: {_status_word(runs.out, d)}" for d in DAYS)
    assert "chat (webhook): already delivered" in runs.stderr[-1] and "mail (email): already delivered" in \
        runs.stderr[-1]
    record = json.loads((runs.out / DAYS[2] / "deliveries.json").read_text())["deliveries"]["rec_ranker_v2"]
    assert {k: v["status"] for k, v in record.items()} == {"chat": "sent", "mail": "sent", "down": "failed"}
    for day in DAYS:
        assert (runs.out / day / "digest.txt").read_text().startswith(f"expkit digest: rec_ranker_v2 · {day}")
        assert (runs.out / day / "digest.html").is_file()


def test_no_notify_writes_and_sends_no_digest(runs: Runs) -> None:
    """``daily --no-notify`` (even with --resend) leaves the targets and the digest files alone."""
    sent = (len(runs.webhook.received), len(runs.smtp.messages))
    day = DAYS[0]
    for name in ("digest.txt", "digest.html"):
        (runs.out / day / name).unlink()
    code, err = _cli("daily", "--warehouse", str(runs.warehouse), "--date", day, "--out", str(runs.out),
                     "--params", str(runs.params), "--workers", "2", "--no-notify", "--resend", "--quiet")
    assert code == 0, err[-2000:]
    assert (len(runs.webhook.received), len(runs.smtp.messages)) == sent
    assert not (runs.out / day / "digest.txt").exists()


def _status_word(out: Path, day: str) -> str:
    """The report's verdict as the history page and digests name it (the readout's decision);
    without one, the most severe tile status (every tile of these runs succeeded)."""
    decision = _summary(out, day).get("decision")
    if decision:
        return label(decision["verdict"])
    statuses = {t["status"] for t in _summary(out, day)["tiles"].values()}
    for status, word in (("breach", "Breach"), ("warn", "Warn"), ("ok", "OK")):
        if status in statuses:
            return word
    return "No data"


def _rows(out: Path) -> list[str]:
    return re.findall(r'<tr class="history-row".*?</tr>', (out / "index.html").read_text(), re.DOTALL)


def test_history_lists_every_day_newest_first_with_verdict_and_lift(runs: Runs) -> None:
    rows = _rows(runs.out)
    assert [re.search(r'data-date="([^"]+)"', r)[1] for r in rows] == DAYS[::-1]
    for row, day in zip(rows, DAYS[::-1], strict=True):
        assert f'<a href="{day}/index.html">{day}</a>' in row and (runs.out / day / "index.html").is_file()
        assert 'data-experiment="rec_ranker_v2"' in row
        assert f">{_status_word(runs.out, day)}</span>" in row
        # the primary lift of the readout's decision (the experiment to date), else the lift tile's
        summary = _summary(runs.out, day)
        if summary["decision"]:
            lift = summary["decision"]["arms"]["treatment"]["primary"]
            name = lift["metric"]
        else:
            lift, name = summary["tiles"]["lift"]["headline"]["arms"]["treatment"]["metrics"]["ctr"], "ctr"
        interval = f"({_pct(lift['rel_low'])} to {_pct(lift['rel_high'])})"
        assert f"{name} <strong>{_pct(lift['rel_lift'])}</strong> {interval}" in row
        assert "chat: sent" in row and "mail: sent" in row and "down: failed" in row


def _links(page: Path) -> dict[str, str]:
    html = page.read_text()
    found = {rel: href for rel, href in re.findall(r'<a rel="(prev|next)" href="([^"]+)"', html)}
    for href in re.findall(r'<a href="([^"]+)">all reports</a>', html):
        found["all"] = href
    return found


def test_day_links_of_every_page_resolve_to_existing_files(runs: Runs) -> None:
    pages = 0
    for i, day in enumerate(DAYS):
        folder = runs.out / day
        for page in [folder / "index.html", *sorted((folder / "tiles").glob("*.html"))]:
            links = _links(page)
            assert ("prev" in links) == (i > 0) and ("next" in links) == (i < len(DAYS) - 1), page
            assert (page.parent / links["all"]).resolve() == (runs.out / "index.html").resolve()
            for rel, href in links.items():
                target = (page.parent / href).resolve()
                assert target.is_file(), (page, rel, href)
                if rel != "all":
                    neighbour = DAYS[i - 1] if rel == "prev" else DAYS[i + 1]
                    assert neighbour in href
                    if page.parent.name == "tiles":  # the same tile on the neighbouring day
                        assert target.name == page.name
            pages += 1
    assert pages == 3 * (1 + len(TILES))  # each day: the index and one page per tile


def test_history_page_in_chromium(runs: Runs, browser: Browser) -> None:
    visit, dom = browser.visit(runs.out / "index.html", ARTIFACTS / "history.png")
    assert all(u.startswith(("file://", "data:")) for u in visit.requests), visit.requests
    assert visit.exceptions == [] and visit.console_errors == []
    text = dom["text"]
    assert "Experiment reports" in text
    assert [text.index(d) for d in DAYS[::-1]] == sorted(text.index(d) for d in DAYS)  # newest first
    assert [h for h in dom["links"] if h.endswith("/index.html")] == [f"{d}/index.html" for d in DAYS[::-1]]
    visit, dom = browser.visit(runs.out / DAYS[1] / "tiles" / "ctr.html", ARTIFACTS / "tile-day-links.png")
    assert {"../../2026-11-12/tiles/ctr.html", "../../2026-11-14/tiles/ctr.html", "../../index.html"} <= set(
        dom["links"])
    assert visit.exceptions == []
