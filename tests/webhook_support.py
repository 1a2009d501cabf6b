"""A real webhook receiver for the tests: ``http.server`` in a thread on 127.0.0.1.

Used by the alert tests (Alertmanager-style notifications) and the digest tests (Slack-style
messages); on ``sys.path`` for every test folder through ``pythonpath`` in ``pyproject.toml``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class WebhookReceiver:
    """Records every POST (JSON body and headers); answers from ``script`` (status codes, or
    ``("sleep", seconds)`` before a 200), else 200. ``hold_at`` (1-based) makes that request
    wait until ``release`` is set (``holding`` is set meanwhile)."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    script: deque[Any] = field(default_factory=deque)
    hold_at: int | None = None
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        """The notification id header of every request, in order."""
        return [h.get("X-Expkit-Notification-Id", "") for h in self.headers]


def serve_webhook(path: str = "/hooks") -> Iterator[WebhookReceiver]:
    """A :class:`WebhookReceiver` listening at ``http://127.0.0.1:<free port><path>`` for the
    duration of the generator (use it with ``yield from`` in a fixture)."""
    rec = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with rec.lock:
                rec.received.append(body)
                rec.headers.append(dict(self.headers))
                n = len(rec.received)
                action = rec.script.popleft() if rec.script else 200
            if rec.hold_at == n:
                rec.holding.set()
                rec.release.wait(30)
            if isinstance(action, tuple):
                time.sleep(action[1])
                action = 200
            try:
                self.send_response(action)
                self.end_headers()
                self.wfile.write(b"{}")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.release.set()
        server.shutdown()
        server.server_close()
