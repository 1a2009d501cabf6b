"""Two experiments with different true lifts in one synthetic warehouse, through ``expkit daily``
(docs/reports.md, "The portfolio").

rec_ranker_v2 has no true lift, search_v3 a +60% lift on clicks, randomized independently over
the same 3,000 users for 3 days (docs/synthetic.md, "Several experiments"). With ``mde: 0.5``
(a required sample of about 145 users per arm) and ``min_days: 1`` the verdicts are decided in
those days: no effect for the first, ship for the second. Each report's intervals must cover
its own experiment's true CTR lift from truth.json; the portfolio must list both with those
verdicts; each experiment's digest must reach a local webhook and a local SMTP server exactly
once over three runs (two full runs, then ``--experiment search_v3``, which keeps the other
experiment's report of the day).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from digest_support import SMTP_PASSWORD, SMTP_USER, SmtpServer, serve_smtp
from report_support import rows_of
from webhook_support import WebhookReceiver, serve_webhook

from expkit.cli import main
from expkit.report.history_page import history_rows
from expkit.synth import generate
from expkit.synth.warehouse import SynthExperiment

pytestmark = pytest.mark.slow  # three daily runs of 17-26 notebooks each
ROOT = Path(__file__).resolve().parents[2]
END = dt.date(2026, 11, 14)
A, B = "rec_ranker_v2", "search_v3"
LIFT = {A: 0.0, B: 0.6}
VERDICTS = {A: "no_effect", B: "ship"}


@dataclass
class Portfolio:
    root: Path  # wh/ the warehouse, params/ the parameters folder
    out: Path
    truth: dict[str, Any]
    webhook: WebhookReceiver
    smtp: SmtpServer
    codes: list[int]
    after: list[dict[str, Any]]  # per run: each experiment's summary generated_at, messages received so far


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portfolio]:
    root = tmp_path_factory.mktemp("portfolio")
    other = SynthExperiment(B, (("control", 0.5), ("treatment", 0.5)), "control", (("treatment", LIFT[B]),))
    truth = generate(root / "wh", days=3, end=END, users=3000, seed=11, lift={"treatment": LIFT[A]}, others=[other])
    params = root / "params"
    (params / "experiments").mkdir(parents=True)
    base = yaml.safe_load((ROOT / "params" / "experiment.yaml").read_text())
    for exp in (A, B):
        data = {**base, "experiment_id": exp, "start_date": truth["start_date"], "min_days": 1, "mde": 0.5}
        (params / "experiments" / f"{exp}.yaml").write_text(yaml.safe_dump(data))
    (params / "alerts.yaml").write_text((ROOT / "params" / "alerts.yaml").read_text())
    hooks, mails = serve_webhook("/hooks/digest"), serve_smtp()
    webhook, smtp = next(hooks), next(mails)
    (params / "notify.yaml").write_text(yaml.safe_dump({"targets": [
        {"name": "chat", "type": "webhook", "url_env": "TEST_PORTFOLIO_HOOK", "backoff": "10ms"},
        {"name": "mail", "type": "email", "host": "127.0.0.1", "port": smtp.port, "security": "none",
         "username_env": "TEST_PORTFOLIO_USER", "password_env": "TEST_PORTFOLIO_PASSWORD",
         "from": "expkit@example.com", "to": ["growth@example.com"], "backoff": "10ms"}]}))
    out = root / "reports"
    args = ["daily", "--warehouse", str(root / "wh"), "--date", END.isoformat(), "--out", str(out),
            "--params", str(params), "--workers", "2", "--quiet"]
    codes, after = [], []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEST_PORTFOLIO_HOOK", webhook.url)
        mp.setenv("TEST_PORTFOLIO_USER", SMTP_USER)
        mp.setenv("TEST_PORTFOLIO_PASSWORD", SMTP_PASSWORD)
        for extra in ([], [], ["--experiment", B]):
            codes.append(main([*args, *extra]))
            after.append({
                **{exp: json.loads((out / END.isoformat() / exp / "summary.json").read_text())["generated_at"]
                   for exp in (A, B)},
                "webhook": len(webhook.received), "smtp": len(smtp.messages),
            })
    try:
        yield Portfolio(root, out, truth, webhook, smtp, codes, after)
    finally:
        for gen in (hooks, mails):
            next(gen, None)


def _summary(p: Portfolio, exp: str) -> dict[str, Any]:
    return json.loads((p.out / END.isoformat() / exp / "summary.json").read_text())


def test_each_report_covers_its_own_true_lift(portfolio: Portfolio) -> None:
    assert portfolio.codes == [0, 0, 0]
    for exp in (A, B):
        true = portfolio.truth["experiments"][exp]["metric_lift"]["ctr"]["treatment"]
        assert true == pytest.approx(LIFT[exp], abs=1e-3)  # truth.json, per experiment
        primary = _summary(portfolio, exp)["decision"]["arms"]["treatment"]["primary"]
        assert primary["rel_low"] <= true <= primary["rel_high"], (exp, primary)
        assert primary["seq_low"] <= true <= primary["seq_high"], (exp, primary)
        other = LIFT[B] if exp == A else LIFT[A]
        assert not primary["rel_low"] <= other <= primary["rel_high"], (exp, primary)  # not the other's lift


def test_portfolio_lists_both_experiments_with_their_verdicts(portfolio: Portfolio) -> None:
    day = portfolio.out / END.isoformat()
    rows = rows_of((day / "index.html").read_text(), "portfolio-row")
    assert [(r["attrs"]["data-experiment"], r["attrs"]["data-verdict"]) for r in rows] == list(VERDICTS.items())
    for row, exp in zip(rows, (A, B), strict=True):
        assert row["links"] == [f"{exp}/index.html"] and (day / exp / "index.html").is_file()
        assert f"{100 * _summary(portfolio, exp)['decision']['arms']['treatment']['primary']['rel_lift']:+.1f}%" \
            in row["text"]
        assert "% of the required sample" in row["text"]
    # each experiment's page opens with its verdict; the health tiles ran once, for the platform
    for exp in (A, B):
        page = (day / exp / "index.html").read_text()
        assert page.index('id="verdict"') < page.index('id="outcomes"') and 'id="portfolio-link"' in page
        assert not (day / exp / "tiles" / "latency.html").exists()
    assert (day / "tiles" / "latency.html").is_file() and not (day / "tiles" / "ctr.html").exists()
    doc = json.loads((day / "portfolio.json").read_text())
    assert doc["experiments"] == [A, B]
    assert sorted((a["experiment_id"], a["arm"]) for a in doc["arm_health"]) == [
        (A, "control"), (A, "treatment"), (B, "control"), (B, "treatment")]
    assert not any(a["latency_breach"] or a["error_breach"] for a in doc["arm_health"])
    assert [(r.brief.experiment_id, r.brief.verdict) for r in history_rows(portfolio.out)] == list(VERDICTS.items())


def test_each_digest_arrives_once_over_three_runs(portfolio: Portfolio) -> None:
    assert [(a["webhook"], a["smtp"]) for a in portfolio.after] == [(2, 2), (2, 2), (2, 2)]
    texts = [m["text"] for m in portfolio.webhook.received]
    assert sorted(t.split(" ·")[0] for t in texts) == [A, B]
    ids = [h["X-Expkit-Digest-Id"] for h in portfolio.webhook.headers]
    assert len(set(ids)) == 2
    subjects = sorted(str(m["Subject"]) for m in portfolio.smtp.messages)
    assert subjects == [f"[expkit] {A} · {END}: No effect", f"[expkit] {B} · {END}: Ship"]
    record = json.loads((portfolio.out / END.isoformat() / "deliveries.json").read_text())["deliveries"]
    assert {exp: sorted((t, e["status"]) for t, e in targets.items()) for exp, targets in record.items()} == {
        A: [("chat", "sent"), ("mail", "sent")], B: [("chat", "sent"), ("mail", "sent")]}


def test_a_rerun_of_one_experiment_keeps_the_other(portfolio: Portfolio) -> None:
    first, second, third = portfolio.after
    assert first[A] != second[A] and first[B] != second[B]  # the full rerun rebuilt both
    assert third[A] == second[A] and third[B] != second[B]  # --experiment search_v3 rebuilt it alone
    rows = rows_of((portfolio.out / END.isoformat() / "index.html").read_text(), "portfolio-row")
    assert [r["attrs"]["data-experiment"] for r in rows] == [A, B]


def test_a_deep_dive_lands_in_its_experiments_folder(portfolio: Portfolio, capsys: pytest.CaptureFixture[str]) -> None:
    """``expkit deepdive --experiment`` with a folder of several experiments writes
    D/<experiment_id>/deepdive/ and that experiment's page (alone) links it (docs/deepdive.md)."""
    args = ["deepdive", "--warehouse", str(portfolio.root / "wh"), "--date", END.isoformat(),
            "--out", str(portfolio.out), "--params", str(portfolio.root / "params")]
    assert main(args) == 2  # which experiment? the error names both
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and A in err and B in err and "--experiment" in err
    assert main([*args, "--experiment", B]) == 0
    day = portfolio.out / END.isoformat()
    assert (day / B / "deepdive" / "index.html").is_file() and not (day / "deepdive").exists()
    assert 'href="deepdive/index.html"' in (day / B / "index.html").read_text()
    assert 'href="deepdive/index.html"' not in (day / A / "index.html").read_text()
