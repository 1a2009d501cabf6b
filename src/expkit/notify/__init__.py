"""Daily digests for stakeholders: built from each report's ``summary.json``, written beside it
(``digest.txt``, ``digest.html``) and delivered to the targets of ``params/notify.yaml``
(a Slack-compatible webhook, e-mail over SMTP), at most once per experiment, day and target
(docs/reports.md, "Digests").

Delivery never fails or blocks the report: each target has a timeout per try and a bounded
number of retries with backoff; a failure is recorded in ``D/deliveries.json``, printed as a
progress line, shown on the history page and tried again by the next run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any, Literal

from expkit.alerts.sinks import DeliveryResult, PermanentError, post_json, with_retries
from expkit.atomic import FileLock
from expkit.errors import ExpkitError
from expkit.notify.config import EmailTarget, NotifyConfig, WebhookTarget, load_notify, load_notify_for
from expkit.report.brief import brief
from expkit.report.deliveries import DONE_STATUSES, DeliveryEntry, read_record, write_record
from expkit.report.digest import Digest, write_digest_files
from expkit.report.history_page import day_summaries, write_history
from expkit.report.summary import utc_now

__all__ = [
    "Delivery",
    "DigestRun",
    "NotifyConfig",
    "load_notify",
    "load_notify_for",
    "send_digests",
    "send_email",
    "send_webhook",
]

log = logging.getLogger("expkit.notify")

Outcome = Literal["sent", "failed", "skipped", "already_sent", "dry_run"]


@dataclass(frozen=True)
class Delivery:
    """What this run did with one experiment's digest for one target.

    ``outcome``: ``sent``, ``failed`` (after the retries; ``error`` says why), ``skipped`` (not
    configured here: an environment variable is unset), ``already_sent`` (the record says it
    was sent, or a run died while sending it; ``--resend`` sends it again) or ``dry_run``.
    """

    experiment_id: str
    target: str
    kind: str
    outcome: Outcome
    attempts: int = 0
    error: str = ""
    resend_hint: str = "--resend"  # how to send an ``already_sent`` one again

    def line(self) -> str:
        """One progress line."""
        what = {"sent": f"sent ({self.attempts} attempt{'s' if self.attempts != 1 else ''})",
                "failed": f"NOT delivered after {self.attempts} attempt{'s' if self.attempts != 1 else ''}: "
                          f"{self.error}",
                "skipped": f"skipped: {self.error}",
                "already_sent": f"already delivered{f' ({self.error})' if self.error else ''}; not sent again "
                                f"({self.resend_hint} sends it again)",
                "dry_run": "would be sent (dry run)"}[self.outcome]
        return f"{self.experiment_id} -> {self.target} ({self.kind}): {what}"


@dataclass(frozen=True)
class DigestRun:
    """The digests of one day and what happened to each delivery."""

    digests: list[Digest]
    deliveries: list[Delivery]

    @property
    def failed(self) -> list[Delivery]:
        """The deliveries that failed."""
        return [d for d in self.deliveries if d.outcome == "failed"]


def report_link(out: Path, href: str, notify: NotifyConfig | None) -> str:
    """Where a digest points: ``report_url``/``href`` (percent-encoded) when configured, else a
    ``file://`` URI.

    >>> from expkit.notify.config import NotifyConfig
    >>> report_link(Path("."), "2026-11-14/search v3:b/index.html",
    ...             NotifyConfig(targets=[], report_url="https://r.example.com/reports/"))
    'https://r.example.com/reports/2026-11-14/search%20v3%3Ab/index.html'
    """
    if notify is not None and notify.report_url:
        from urllib.parse import quote

        # experiment ids may hold spaces and ':' (expkit.schema.SLICE_VALUE_CHARS): one path per link
        return f"{notify.report_url.rstrip('/')}/{quote(href)}"
    return (Path(out) / href).resolve().as_uri()


def day_digests(out: Path, day: dt.date | str, notify: NotifyConfig | None = None) -> list[tuple[Path, Digest]]:
    """Each report of ``day`` under ``out`` (its folder) with its digest; raises
    :class:`~expkit.errors.ExpkitError` when the day has no report."""
    import json

    day_text = day.isoformat() if isinstance(day, dt.date) else str(day)
    found = day_summaries(Path(out) / day_text)
    if not found:
        raise ExpkitError(f"no report for {day_text} under {out}: run 'expkit daily --date {day_text}' first "
                          "(or pass the report folder with --out)")
    digests = []
    for path, href in found:
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ExpkitError(f"{path} is unreadable ({exc}); rerun 'expkit daily --date {day_text}'") from None
        digests.append((path.parent, Digest(brief(summary, href), report_link(out, href, notify))))
    return digests


def send_webhook(target: WebhookTarget, digest: Digest, sleep: Callable[[float], None] = time.sleep) -> DeliveryResult:
    """POST the digest's Slack-compatible payload to the target's URL (from its environment variable)."""
    url = os.environ.get(target.url_env, "")
    return post_json(url, digest.slack_payload(), timeout_s=target.timeout / 1000, retries=target.retries,
                     backoff_s=target.backoff / 1000, headers={"X-Expkit-Digest-Id": digest.message_id(target.name)},
                     name=f"the URL in ${target.url_env}", sleep=sleep)


def email_message(target: EmailTarget, digest: Digest) -> EmailMessage:
    """The digest as an e-mail: a plain-text part and an HTML alternative."""
    msg = EmailMessage()
    msg["Subject"] = f"{target.subject_prefix} {digest.subject}".strip()
    msg["From"] = target.sender
    msg["To"] = ", ".join(target.to)
    if target.cc:
        msg["Cc"] = ", ".join(target.cc)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{digest.message_id(target.name)}@expkit>"
    msg.set_content(digest.text())
    msg.add_alternative(digest.html(), subtype="html")
    return msg


def send_email(target: EmailTarget, digest: Digest, sleep: Callable[[float], None] = time.sleep) -> DeliveryResult:
    """Send the digest over SMTP (STARTTLS, SSL or plain, with a login when configured), retrying
    connection errors, time-outs and 4xx replies; 5xx replies (refused login, recipients or
    message) and an untrusted certificate fail at once."""
    msg = email_message(target, digest)
    where = f"{target.host}:{target.smtp_port}"

    def attempt() -> None:
        timeout = target.timeout / 1000
        try:
            smtp: smtplib.SMTP
            if target.security == "ssl":
                smtp = smtplib.SMTP_SSL(target.host, target.smtp_port, timeout=timeout,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(target.host, target.smtp_port, timeout=timeout)
            with smtp:
                if target.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if target.username_env and target.password_env:
                    smtp.login(os.environ[target.username_env], os.environ[target.password_env])
                smtp.send_message(msg)
        except ssl.SSLCertVerificationError as err:
            raise PermanentError(f"{where}: {err.verify_message or err} (the server's certificate is not trusted; "
                                 "$SSL_CERT_FILE can name the CA that signed it)") from None
        except smtplib.SMTPNotSupportedError as err:
            raise PermanentError(f"{where}: {err} (the server does not offer it; check 'security')") from None
        except smtplib.SMTPRecipientsRefused as err:
            raise PermanentError(f"{where} refused every recipient: {', '.join(err.recipients)}") from None
        except smtplib.SMTPResponseException as err:
            text = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else str(
                err.smtp_error)
            if 500 <= err.smtp_code < 600:
                raise PermanentError(f"{where} answered {err.smtp_code} {text} (not retried)") from None
            raise RuntimeError(f"{where} answered {err.smtp_code} {text}") from None
        except (smtplib.SMTPException, OSError) as err:
            raise RuntimeError(f"{type(err).__name__}: {err} ({where})") from None

    return with_retries(attempt, retries=target.retries, backoff_s=target.backoff / 1000, sleep=sleep)


def send_digests(
    out: Path,
    day: dt.date | str,
    notify: NotifyConfig | None,
    *,
    resend: bool = False,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
    lock_timeout: float | None = 3600,
    sleep: Callable[[float], None] = time.sleep,
    experiment: str | None = None,
) -> DigestRun:
    """Write and deliver the digests of ``day``'s reports under ``out`` (see the module docstring).

    Holds the day's lock (``out/.D.lock``) while it writes ``digest.txt``/``digest.html`` and
    delivers, recording each target's outcome in ``D/deliveries.json`` before and after sending,
    then rebuilds the history page. A target already recorded as sent is left alone unless
    ``resend`` (with ``experiment``, only that experiment's digests are sent again: a run of one
    experiment of the day). ``dry_run`` builds the digests and says what would be sent, writing and sending
    nothing. Raises :class:`~expkit.errors.ExpkitError` when the day has no report.
    """
    out = Path(out)
    day_text = day.isoformat() if isinstance(day, dt.date) else str(day)
    say = progress or (lambda _msg: None)
    targets = notify.targets if notify is not None else ()
    found = day_digests(out, day_text, notify)
    deliveries: list[Delivery] = []

    def again(exp: str) -> bool:
        return resend and (experiment is None or exp == experiment)

    def resend_hint(exp: str) -> str:  # --resend given for another experiment: name this one
        return f"--experiment {exp} --resend" if resend and experiment is not None else "--resend"

    if dry_run:
        record = read_record(out / day_text)
        for _folder, digest in found:
            exp = digest.brief.experiment_id
            for t in (t for t in targets if t.wants(exp)):
                prior = record.get(exp, {}).get(t.name)
                done = prior is not None and prior.status in DONE_STATUSES and not again(exp)
                deliveries.append(Delivery(exp, t.name, t.type, "already_sent" if done else "dry_run",
                                           resend_hint=resend_hint(exp)))
        return DigestRun([d for _f, d in found], deliveries)

    with FileLock(out / f".{day_text}.lock", timeout=lock_timeout, what=f"the daily report for {day_text}"):
        found = day_digests(out, day_text, notify)  # what is on disk now that the lock is held
        record = {exp: dict(t) for exp, t in read_record(out / day_text).items()}

        def note(exp: str, entry: DeliveryEntry) -> None:
            record.setdefault(exp, {})[entry.target] = entry
            write_record(out / day_text, day_text, record)

        for folder, digest in found:
            write_digest_files(folder, digest)
            exp = digest.brief.experiment_id
            for t in (t for t in targets if t.wants(exp)):
                prior = record.get(exp, {}).get(t.name)
                if prior is not None and prior.status in DONE_STATUSES and not again(exp):
                    why = f"{prior.status} at {prior.at}" if prior.status == "sending" else f"at {prior.at}"
                    deliveries.append(Delivery(exp, t.name, t.type, "already_sent", prior.attempts, why,
                                               resend_hint(exp)))
                    say(deliveries[-1].line())
                    continue
                digest_id = digest.message_id(t.name)
                missing = t.missing_env()
                if missing:
                    error = f"environment variable {', '.join(missing)} is not set"
                    note(exp, DeliveryEntry(t.name, t.type, "skipped", 0, utc_now(), error, digest_id))
                    deliveries.append(Delivery(exp, t.name, t.type, "skipped", 0, error))
                    say(deliveries[-1].line())
                    continue
                note(exp, DeliveryEntry(t.name, t.type, "sending", 0, utc_now(), "", digest_id))
                try:
                    res = send_webhook(t, digest, sleep) if isinstance(t, WebhookTarget) else send_email(
                        t, digest, sleep)
                except Exception as exc:  # a bug in one sender must not stop the others
                    log.exception("digest delivery to %s", t.name)
                    res = DeliveryResult(False, 1, f"{type(exc).__name__}: {exc}")
                status: Any = "sent" if res.ok else "failed"
                note(exp, DeliveryEntry(t.name, t.type, status, res.attempts, utc_now(), res.error, digest_id))
                deliveries.append(Delivery(exp, t.name, t.type, status, res.attempts, res.error))
                say(deliveries[-1].line())
    write_history(out)
    return DigestRun([d for _f, d in found], deliveries)


def deliveries_json(run: DigestRun) -> list[Mapping[str, Any]]:
    """The deliveries as JSON records (what ``expkit digest`` prints)."""
    return [{"experiment_id": d.experiment_id, "target": d.target, "kind": d.kind, "outcome": d.outcome,
             "attempts": d.attempts, "error": d.error or None} for d in run.deliveries]
