"""Digests against real receivers on 127.0.0.1: the Slack-compatible webhook JSON, retries after
a 500, a hanging server cut off at the timeout, e-mail through a real SMTP server (plain + HTML,
login from environment variables, STARTTLS), at most once per experiment, day and target, and
notify.yaml's strict schema."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from digest_support import (  # noqa: F401 - fixtures
    DECISION,
    SMTP_PASSWORD,
    SMTP_USER,
    SmtpServer,
    WebhookReceiver,
    self_signed_cert,
    serve_smtp,
    smtp_server,
    summary_doc,
    webhook,
    write_day,
)

from expkit.cli import main
from expkit.errors import ConfigError
from expkit.notify import send_digests
from expkit.notify.config import NotifyConfig, load_notify, parse_notify
from expkit.report.brief import brief
from expkit.report.deliveries import DeliveryEntry, read_record, write_record
from expkit.report.digest import Digest

DAY = "2026-11-14"


def no_sleep(_s: float) -> None:
    pass


def config(*targets: dict) -> NotifyConfig:
    return parse_notify({"version": 1, "targets": list(targets)})


def hook(name: str = "chat", **kw: object) -> dict:
    return {"name": name, "type": "webhook", "url_env": "TEST_DIGEST_URL", "backoff": "10ms", **kw}


def mail(port: int, **kw: object) -> dict:
    return {"name": "mail", "type": "email", "host": "127.0.0.1", "port": port, "security": "none",
            "username_env": "TEST_SMTP_USER", "password_env": "TEST_SMTP_PASSWORD", "from": "expkit@example.com",
            "to": ["growth@example.com", "pm@example.com"], "backoff": "10ms", **kw}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, webhook: WebhookReceiver) -> Iterator[None]:  # noqa: F811
    monkeypatch.setenv("TEST_DIGEST_URL", webhook.url)
    monkeypatch.setenv("TEST_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    yield


def test_webhook_gets_slack_json_with_text_and_blocks(tmp_path: Path, webhook: WebhookReceiver,  # noqa: F811
                                                       env: None) -> None:
    write_day(tmp_path, summary_doc(DAY))
    run = send_digests(tmp_path, DAY, config(hook()), sleep=no_sleep)
    assert [d.outcome for d in run.deliveries] == ["sent"]
    [body] = webhook.received
    assert isinstance(body["text"], str) and "rec_ranker_v2" in body["text"] and DAY in body["text"]
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds[0] == "header" and "section" in kinds
    section = next(b for b in body["blocks"] if b["type"] == "section")
    assert section["text"]["type"] == "mrkdwn"
    # the lift of the summary's lift tile: +5.0% with the interval 1% to 9% (summary_doc)
    assert "ctr +5.0% (95% +1.0% to +9.0%" in section["text"]["text"]
    link = (tmp_path / DAY / "index.html").resolve().as_uri()
    assert any(link in e["text"] for b in body["blocks"] if b["type"] == "context" for e in b["elements"])
    assert webhook.headers[0]["Content-Type"] == "application/json"
    assert webhook.headers[0]["X-Expkit-Digest-Id"]


def test_webhook_retried_after_a_500(tmp_path: Path, webhook: WebhookReceiver, env: None) -> None:  # noqa: F811
    webhook.script.extend([500])
    write_day(tmp_path, summary_doc(DAY))
    run = send_digests(tmp_path, DAY, config(hook()), sleep=no_sleep)
    assert [(d.outcome, d.attempts) for d in run.deliveries] == [("sent", 2)]
    assert len(webhook.received) == 2 and webhook.received[0] == webhook.received[1]
    assert read_record(tmp_path / DAY)["rec_ranker_v2"]["chat"].status == "sent"


def test_hanging_webhook_is_cut_off_at_the_timeout(tmp_path: Path, webhook: WebhookReceiver,  # noqa: F811
                                                   env: None) -> None:
    webhook.script.extend([("sleep", 5.0)])
    write_day(tmp_path, summary_doc(DAY))
    t0 = time.monotonic()
    run = send_digests(tmp_path, DAY, config(hook(timeout="500ms", retries=0)), sleep=no_sleep)
    took = time.monotonic() - t0
    assert took < 2.0, took  # 0.5 s time-out, not the server's 5 s
    [d] = run.deliveries
    assert d.outcome == "failed" and "timed out" in d.error.lower()
    assert webhook.url not in d.error  # a webhook URL carries a token: errors name its variable instead
    entry = read_record(tmp_path / DAY)["rec_ranker_v2"]["chat"]
    assert entry.status == "failed" and "TEST_DIGEST_URL" in entry.error


def test_email_reaches_a_real_smtp_server_with_text_and_html(tmp_path: Path, smtp_server: SmtpServer,  # noqa: F811
                                                            env: None) -> None:
    write_day(tmp_path, summary_doc(DAY, decision=DECISION))
    run = send_digests(tmp_path, DAY, config(mail(smtp_server.port)), sleep=no_sleep)
    assert [d.outcome for d in run.deliveries] == ["sent"]
    assert smtp_server.logins == [(SMTP_USER, SMTP_PASSWORD)]  # the credentials came from the environment
    [msg] = smtp_server.messages
    assert smtp_server.envelopes[0][1] == ["growth@example.com", "pm@example.com"]
    assert msg["Subject"] == f"[expkit] rec_ranker_v2 · {DAY}: Keep running"
    assert msg["From"] == "expkit@example.com" and msg["Message-ID"].endswith("@expkit>")
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Verdict: Keep running" in plain and DECISION["reasons"][0] in plain
    assert "Keep running" in html and "<li>" + DECISION["reasons"][0] + "</li>" in html


def test_email_over_starttls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test certificate, and only it
    monkeypatch.setenv("TEST_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    write_day(tmp_path, summary_doc(DAY))
    for server in serve_smtp(tls_context=context):
        run = send_digests(tmp_path, DAY, config(mail(server.port, security="starttls")), sleep=no_sleep)
        assert [d.outcome for d in run.deliveries] == ["sent"], run.deliveries
        assert len(server.messages) == 1 and server.logins == [(SMTP_USER, SMTP_PASSWORD)]


def test_email_over_ssl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.setenv("TEST_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    write_day(tmp_path, summary_doc(DAY))
    for server in serve_smtp(ssl_context=context):
        run = send_digests(tmp_path, DAY, config(mail(server.port, security="ssl")), sleep=no_sleep)
        assert [d.outcome for d in run.deliveries] == ["sent"], run.deliveries
        assert len(server.messages) == 1


def test_untrusted_certificate_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the system's trust store does not know it
    monkeypatch.setenv("TEST_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    write_day(tmp_path, summary_doc(DAY))
    for server in serve_smtp(tls_context=context):
        [d] = send_digests(tmp_path, DAY, config(mail(server.port, security="starttls")), sleep=no_sleep).deliveries
        assert d.outcome == "failed" and d.attempts == 1 and "certificate" in d.error  # not retried
        assert not server.messages and not server.logins


def test_wrong_smtp_password_fails_without_retrying(tmp_path: Path, smtp_server: SmtpServer,  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    write_day(tmp_path, summary_doc(DAY))
    [d] = send_digests(tmp_path, DAY, config(mail(smtp_server.port)), sleep=no_sleep).deliveries
    assert d.outcome == "failed" and d.attempts == 1 and "535" in d.error
    assert not smtp_server.messages


def test_at_most_once_per_experiment_day_and_target(tmp_path: Path, webhook: WebhookReceiver,  # noqa: F811
                                                    smtp_server: SmtpServer, env: None) -> None:  # noqa: F811
    write_day(tmp_path, summary_doc(DAY))
    cfg = config(hook(), mail(smtp_server.port))
    first = send_digests(tmp_path, DAY, cfg, sleep=no_sleep)
    second = send_digests(tmp_path, DAY, cfg, sleep=no_sleep)
    assert [d.outcome for d in first.deliveries] == ["sent", "sent"]
    assert [d.outcome for d in second.deliveries] == ["already_sent", "already_sent"]
    assert len(webhook.received) == 1 and len(smtp_server.messages) == 1
    third = send_digests(tmp_path, DAY, cfg, resend=True, sleep=no_sleep)
    assert [d.outcome for d in third.deliveries] == ["sent", "sent"]
    assert len(webhook.received) == 2 and len(smtp_server.messages) == 2


def test_a_run_that_died_while_sending_does_not_send_again(tmp_path: Path, webhook: WebhookReceiver,  # noqa: F811
                                                           env: None) -> None:
    day = write_day(tmp_path, summary_doc(DAY))
    write_record(day, DAY, {"rec_ranker_v2": {"chat": DeliveryEntry("chat", "webhook", "sending", 0,
                                                                    "2026-11-15T01:30:00Z")}})
    [d] = send_digests(tmp_path, DAY, config(hook()), sleep=no_sleep).deliveries
    assert d.outcome == "already_sent" and not webhook.received


def test_a_failed_delivery_is_tried_again_by_the_next_run(tmp_path: Path, webhook: WebhookReceiver,  # noqa: F811
                                                          env: None) -> None:
    webhook.script.extend([500, 500])
    write_day(tmp_path, summary_doc(DAY))
    cfg = config(hook(retries=1))
    assert [d.outcome for d in send_digests(tmp_path, DAY, cfg, sleep=no_sleep).deliveries] == ["failed"]
    assert [d.outcome for d in send_digests(tmp_path, DAY, cfg, sleep=no_sleep).deliveries] == ["sent"]
    assert len(webhook.received) == 3


def test_unset_environment_variable_skips_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_DIGEST_URL", raising=False)
    write_day(tmp_path, summary_doc(DAY))
    [d] = send_digests(tmp_path, DAY, config(hook()), sleep=no_sleep).deliveries
    assert d.outcome == "skipped" and "TEST_DIGEST_URL" in d.error


def test_digest_from_a_decision_block_shows_verdict_reasons_guardrails_progress(tmp_path: Path) -> None:
    day = write_day(tmp_path, summary_doc(DAY, decision=DECISION, alerts=[
        {"rule": "error_rate_high", "severity": "P1", "labels": {}, "state": "resolved",
         "active_at": f"{DAY}T08:00:00Z", "fired_at": f"{DAY}T08:10:00Z", "resolved_at": f"{DAY}T08:40:00Z",
         "kill_switch": "disable_experiment"}]))
    run = send_digests(tmp_path, DAY, None)
    text = (day / "digest.txt").read_text()
    html = (day / "digest.html").read_text()
    assert run.digests[0].text() == text
    assert "Verdict: Keep running" in text
    assert DECISION["reasons"][0] in text
    # the decision's primary lift (0.07, -0.012..0.152, always-valid -0.048..0.188), not the lift tile's 0.05
    assert "treatment: ctr +7.0% (95% −1.2% to +15.2%; always-valid −4.8% to +18.8%; CUPED, variance −31%)" in text
    assert "treatment: error_rate pass" in text and "treatment: latency_p95 inconclusive" in text
    # a relative guardrail reads as on the index page (+10.0% relative), not as a bare 0.1
    assert "latency_p95 inconclusive (estimate +4.0%, interval −3.0% to +12.0%, margin +10.0% relative)" in text
    assert "error_rate pass (estimate 0.0001, interval -0.0002 to 0.0004, margin 0.001)" in text
    assert "<td>+4.0%</td><td>−3.0% to +12.0%</td><td>+10.0% relative</td>" in html
    assert "58% of the required sample" in text and "12,400 users per arm needed" in text
    assert "about 6 more day(s)" in text
    assert "P1 error_rate_high: resolved, fired 2026-11-14T08:10:00Z, kill switch: disable_experiment" in text
    assert 'id="verdict"' in html and "Keep running" in html and "error_rate_high" in html
    assert "<script" not in html


def test_digest_of_a_decision_written_by_expkit_decision(tmp_path: Path) -> None:
    """The decision block as expkit.decision writes it: a failing guardrail and a failed SRM gate."""
    from expkit.decision import ArmEvidence, GuardrailResult, PrimaryResult, ProgressResult, TrustGate, decide

    decision = decide({"treatment": ArmEvidence(
        PrimaryResult("CTR", 0.07, -0.01, 0.15, -0.048, 0.188), ProgressResult(7192, 12387.0, 0.5806, 4, 6.0),
        guardrails=[GuardrailResult("error_rate", "fail", 0.002, 0.0012, 0.003, 0.001)],
        trust=[TrustGate("srm", "fail", "SRM p = 0.0001"), TrustGate("pre_period", "not_judged", "no pre-period")],
    )}).to_dict()
    b = brief(json.loads(json.dumps(summary_doc(DAY, decision=decision))), f"{DAY}/index.html")
    assert (b.verdict, b.reasons) == (decision["verdict"], tuple(decision["reasons"]))
    text = Digest(b, "file:///r/index.html").text()
    assert f"Verdict: {b.verdict_label}" in text and all(r in text for r in decision["reasons"])
    assert "treatment: CTR +7.0% (95% −1.0% to +15.0%; always-valid −4.8% to +18.8%)" in text
    assert "treatment: error_rate fail" in text
    assert "Trust gates failed: srm (SRM p = 0.0001)" in text and "pre_period" not in text
    assert "users treatment 7,192" in text and "12,387 users per arm needed" in text


def test_without_a_decision_the_digest_gives_the_report_status(tmp_path: Path) -> None:
    b = brief(summary_doc(DAY), f"{DAY}/index.html")
    assert (b.verdict, b.verdict_source) == ("warn", "status")  # the latency tile warns (summary_doc)
    text = Digest(b, "file:///r/index.html").text()
    assert "Report status (no verdict in this report): Warn" in text


def test_values_are_escaped_in_html_and_slack(tmp_path: Path) -> None:
    doc = summary_doc(DAY, experiment_id="<script>x</script>", decision={**DECISION, "reasons": ["a <b> & c"]})
    d = Digest(brief(doc, f"{DAY}/index.html"), "file:///r/index.html")
    assert "<script>x" not in d.html() and "&lt;script&gt;x" in d.html()
    section = d.slack_payload()["blocks"][1]["text"]["text"]
    assert "a &lt;b&gt; &amp; c" in section


def test_dry_run_prints_and_sends_nothing(tmp_path: Path, webhook: WebhookReceiver, env: None) -> None:  # noqa: F811
    write_day(tmp_path, summary_doc(DAY, decision=DECISION))
    params = tmp_path / "params"
    params.mkdir()
    (params / "experiment.yaml").write_text("experiment_id: rec_ranker_v2\n")
    (params / "notify.yaml").write_text(yaml.safe_dump({"targets": [hook()]}))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["digest", "--date", DAY, "--out", str(tmp_path), "--params", str(params / "experiment.yaml"),
                     "--dry-run", "--quiet"])
    assert code == 0 and not webhook.received and not (tmp_path / DAY / "digest.txt").exists()
    assert "Verdict: Keep running" in out.getvalue() and "chat (webhook): would be sent (dry run)" in out.getvalue()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["digest", "--date", DAY, "--out", str(tmp_path), "--params", str(params / "experiment.yaml"),
                     "--quiet"])
    assert code == 0 and len(webhook.received) == 1
    assert json.loads(out.getvalue().splitlines()[0])["outcome"] == "sent"


def test_digest_of_a_day_without_report_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["digest", "--date", DAY, "--out", str(tmp_path), "--dry-run"]) == 2
    assert "no report for 2026-11-14" in capsys.readouterr().err


@pytest.mark.parametrize(("doc", "message"), [
    ({"targets": [{"name": "a", "type": "webhook", "url": "https://hooks.example.com/T/x"}]},
     "'url' must not be written in the file: put it in an environment variable and name that variable with "
     "'url_env'"),
    ({"targets": [{"name": "m", "type": "email", "host": "h", "from": "a@b.c", "to": ["d@e.f"],
                   "username_env": "U", "password": "hunter2"}]}, "'password' must not be written in the file"),
    ({"targets": [{"name": "a", "type": "webhook", "url_env": "X", "retry": 3}]},
     "targets[0] (a).retry: unknown key"),
    ({"targets": [{"name": "a", "url_env": "X"}]}, "needs 'type: webhook' or 'type: email'"),
    ({"targets": [{"name": "a", "type": "webhook", "url_env": "X"}, {"name": "a", "type": "webhook",
                                                                     "url_env": "Y"}]},
     "target name 'a' is used twice"),
    ({"targets": [{"name": "m", "type": "email", "host": "h", "from": "nobody", "to": ["d@e.f"]}]},
     "'nobody' is not an e-mail address"),
    ({"targets": [{"name": "m", "type": "email", "host": "h", "from": "a@b.c", "to": ["d@e.f"],
                   "username_env": "U"}]}, "give both username_env and password_env"),
    ({"report_url": "reports.example.com"}, "report_url 'reports.example.com' must start with http"),
])
def test_notify_yaml_is_strict(tmp_path: Path, doc: dict, message: str) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_notify(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_shipped_notify_yaml_is_valid() -> None:
    repo = Path(__file__).resolve().parents[2]
    cfg = load_notify(repo / "params" / "notify.yaml")
    assert [t.type for t in cfg.targets] == ["webhook"]


def test_bad_notify_yaml_stops_daily_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = Path(__file__).resolve().parents[2]
    params = tmp_path / "params"
    params.mkdir()
    for name in ("experiment.yaml", "alerts.yaml"):
        (params / name).write_text((repo / "params" / name).read_text())
    (params / "notify.yaml").write_text("targets:\n  - {name: a, type: webhook, url_env: X, colour: red}\n")
    code = main(["daily", "--warehouse", str(tmp_path / "wh"), "--date", DAY, "--out", str(tmp_path / "r"),
                 "--params", str(params / "experiment.yaml")])
    assert code == 2 and "colour: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resend_with_experiment_sends_that_experiments_digest_alone(tmp_path: Path, webhook: WebhookReceiver,  # noqa: F811
                                                                   env: None) -> None:
    """``expkit daily --experiment B --resend`` rebuilds B's report alone: B's digest goes again, the
    other experiments' digests of the day, already delivered, do not (docs/reports.md, "Digests")."""
    from expkit.daily import deliver_digests

    day = tmp_path / DAY
    for exp in ("ranker_a", "search_b"):
        write_day(day, summary_doc(DAY, exp)).rename(day / exp)  # D/<experiment_id>/ of a portfolio day
    cfg = config(hook())
    first = deliver_digests(tmp_path, dt.date.fromisoformat(DAY), tmp_path, notify_config=cfg)
    assert first is not None and sorted((d.experiment_id, d.outcome) for d in first.deliveries) == [
        ("ranker_a", "sent"), ("search_b", "sent")]
    again = deliver_digests(tmp_path, dt.date.fromisoformat(DAY), tmp_path, notify_config=cfg, resend=True,
                            experiment="search_b")
    assert again is not None and sorted((d.experiment_id, d.outcome) for d in again.deliveries) == [
        ("ranker_a", "already_sent"), ("search_b", "sent")]
    # --resend was given: the line of the other experiment must not advise it as if it were not
    [kept] = [d for d in again.deliveries if d.experiment_id == "ranker_a"]
    assert "(--resend sends it again)" not in kept.line()
    assert "(--experiment ranker_a --resend sends it again)" in kept.line(), kept.line()
    assert [m["text"].split(" ·")[0] for m in webhook.received] == ["ranker_a", "search_b", "search_b"]


def test_a_shipped_experiment_is_not_said_to_need_more_days(tmp_path: Path) -> None:
    """Ship (always-valid interval above 0 after min_days) can come long before the planned sample;
    'about 66 more days' beside 'Ship' contradicts the verdict, on the index page and in the digest."""
    from expkit.report.index import write_index

    decision = json.loads(json.dumps(DECISION))
    decision["verdict"] = decision["arms"]["treatment"]["verdict"] = "ship"
    decision["reasons"] = decision["arms"]["treatment"]["reasons"] = [
        "CTR +22.3% (always-valid +3.4% to +41.2%) significantly better; all guardrails pass; 7 days run"]
    decision["progress"].update(fraction=0.1, days_run=7, days_remaining=66)
    doc = summary_doc(DAY, decision=decision)
    text = Digest(brief(doc, f"{DAY}/index.html"), "file:///r/index.html").text()
    assert "66 more day" not in text and "decided: no more days needed" in text
    folder = tmp_path / DAY
    folder.mkdir()
    write_index(folder, doc, tmp_path)
    html = (folder / "index.html").read_text()
    assert "66 more days" not in html and "decided: no more days needed" in html
    # keep running: the days remaining are the point of the progress line
    keep = summary_doc(DAY, decision=DECISION)
    assert "about 6 more day(s)" in Digest(brief(keep, f"{DAY}/index.html"), "file:///r/index.html").text()
    write_index(folder, keep, tmp_path)
    assert "about 6 more days" in (folder / "index.html").read_text()
