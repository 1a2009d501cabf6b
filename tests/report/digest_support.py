"""Real receivers for the digest tests: an HTTP server (http.server in a thread) and an SMTP
server (aiosmtpd), both on 127.0.0.1, and a summary.json carrying a ``decision`` block."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from webhook_support import WebhookReceiver, serve_webhook

SMTP_USER, SMTP_PASSWORD = "digest-bot", "s3cret-from-env"


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    yield from serve_webhook("/hooks/digest")


@dataclass
class SmtpServer:
    """An aiosmtpd server: every message it accepted, parsed, and the logins it saw."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.server.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_smtp(tls_context: Any = None, ssl_context: Any = None) -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1 that requires a login (``SMTP_USER``/``SMTP_PASSWORD``);
    with ``tls_context`` it offers STARTTLS and takes the login only after it; with
    ``ssl_context`` it speaks TLS from the first byte (SMTPS)."""
    server = SmtpServer(free_port())

    def authenticator(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            server.logins.append((user, password))
            ok = (user, password) == (SMTP_USER, SMTP_PASSWORD)
            return AuthResult(success=ok, handled=False)  # unhandled failure: the server answers 535
        return AuthResult(success=False, handled=False)

    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
    controller = Controller(_Handler(server), hostname="127.0.0.1", port=server.port, authenticator=authenticator,
                            auth_required=True, auth_require_tls=tls_context is not None, tls_context=tls_context,
                            require_starttls=tls_context is not None, ssl_context=ssl_context)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    yield from serve_smtp()


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by the openssl command (skips without it)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a certificate for the STARTTLS test")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


# A decision block in the documented shape of summary.json's `decision` (docs/reports.md, "Digests").
DECISION: dict[str, Any] = {
    "verdict": "keep_running",
    "reasons": ["CTR +7.0% (always-valid −4.8% to +18.8%) not yet conclusive; 58% of the 12,400 users per arm "
                "needed; about 6 more days"],
    "arms": {"treatment": {
        "verdict": "keep_running",
        "reasons": ["CTR +7.0% (always-valid −4.8% to +18.8%) not yet conclusive"],
        "primary": {"metric": "ctr", "rel_lift": 0.07, "rel_low": -0.012, "rel_high": 0.152, "seq_low": -0.048,
                    "seq_high": 0.188, "cuped": True, "variance_reduction": 0.31},
        "guardrails": [
            {"metric": "error_rate", "status": "pass", "estimate": 0.0001, "low": -0.0002, "high": 0.0004,
             "margin": 0.001, "relative": False},
            {"metric": "latency_p95", "status": "inconclusive", "estimate": 0.04, "low": -0.03, "high": 0.12,
             "margin": 0.10, "relative": True}]}},
    "progress": {"users": {"control": 7150, "treatment": 7210}, "required_per_arm": 12400, "fraction": 0.58,
                 "days_run": 5, "days_remaining": 6, "min_days": 7},
    "trust": [{"gate": "srm", "status": "pass", "detail": "p = 0.41"}],
}


def summary_doc(date: str, experiment_id: str = "rec_ranker_v2", decision: dict[str, Any] | None = None,
                alerts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A summary.json document of the contract's shape with a lift tile (and ``decision`` when given)."""
    doc: dict[str, Any] = {
        "date": date, "generated_at": f"{date}T23:59:00Z", "code_version": "test",
        "params": {"experiment_id": experiment_id, "experiment": {"primary_metric": "ctr"}},
        "tiles": {
            "lift": {"status": "ok", "html": "tiles/lift.html", "error": None, "headline": {"arms": {"treatment": {
                "metric": "ctr", "estimate": 0.05, "low": 0.01, "high": 0.09,
                "metrics": {"ctr": {"rel_lift": 0.05, "rel_low": 0.01, "rel_high": 0.09, "seq_low": -0.02,
                                    "seq_high": 0.12}}}}}},
            "latency": {"status": "warn", "html": "tiles/latency.html", "error": None, "headline": {}},
        },
        "alerts": alerts or [], "checks": [], "ok": True, "experiment_id": experiment_id, "step_errors": {},
    }
    if decision is not None:
        doc["decision"] = decision
    return doc


def write_day(out: Path, summary: dict[str, Any]) -> Path:
    """A report folder for ``summary``'s date: its summary.json and an index page."""
    day = out / summary["date"]
    day.mkdir(parents=True, exist_ok=True)
    (day / "summary.json").write_text(json.dumps(summary))
    (day / "index.html").write_text("<html><body>report</body></html>")
    return day
