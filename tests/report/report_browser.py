"""A tiny headless-Chromium driver for the report tests (stdlib only).

Chromium is started with ``--remote-debugging-pipe``: DevTools protocol messages are
NUL-terminated JSON on file descriptors 3 (to the browser) and 4 (from it), so no
websocket client is needed. DNS is mapped to nothing, and every network request the
page makes is recorded, so a test can assert that nothing left ``file://``.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


@dataclass
class PageVisit:
    """What happened while one page loaded."""

    url: str
    requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


class Browser:
    """One headless Chromium process, driven over the DevTools pipe."""

    def __init__(self, timeout: float = 30.0, tz: str | None = None):
        """``tz``: the browser's time zone (``TZ`` of its environment; default: inherited)."""
        self.timeout = timeout
        env = {**os.environ, "TZ": tz} if tz else None
        self._profile = tempfile.mkdtemp(prefix="expkit-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def place_fds() -> None:  # runs in the child: put the pipe ends on fds 3 and 4
            a = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 100)
            b = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 100)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--mute-audio",
                "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--window-size=1280,1000",
                f"--user-data-dir={self._profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            preexec_fn=place_fds,  # noqa: PLW1509 - single-threaded test setup
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # -- protocol -------------------------------------------------------------------

    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cond:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._events.append(msg)
                    self._cond.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Send one command and wait for its reply; raises on a protocol error."""
        with self._cond:
            self._next_id += 1
            msg_id = self._next_id
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while msg_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no reply to {method}")
                self._cond.wait(left)
            reply = self._replies.pop(msg_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, session: str, after: int) -> dict[str, Any]:
        """Wait for event ``method`` of ``session`` among the events from index ``after``."""
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while True:
                for ev in self._events[after:]:
                    if ev.get("method") == method and ev.get("sessionId") == session:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {method} event")
                self._cond.wait(left)

    # -- pages ----------------------------------------------------------------------

    def visit(self, path: Path, screenshot: Path | None = None, probe: str | None = None) -> tuple[PageVisit, Any]:
        """Open ``path`` from file:// in a fresh tab, wait for load, return the visit and
        the DOM facts gathered by ``probe`` (a JavaScript expression; default :data:`DOM_PROBE`)."""
        url = path.resolve().as_uri()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable", session=session)
        with self._cond:
            start = len(self._events)
        self.send("Page.navigate", {"url": url}, session)
        self.wait_event("Page.loadEventFired", session, start)
        time.sleep(0.2)  # let late console messages arrive
        evaluate = {"expression": probe or DOM_PROBE, "returnByValue": True, "awaitPromise": True}
        facts = self.send("Runtime.evaluate", evaluate, session)["result"]["value"]
        if screenshot is not None:
            shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        visit = PageVisit(url=url)
        with self._cond:
            events = [e for e in self._events[start:] if e.get("sessionId") == session]
        for ev in events:
            m, p = ev["method"], ev.get("params", {})
            if m == "Network.requestWillBeSent":
                visit.requests.append(p["request"]["url"])
            elif m == "Network.loadingFailed":
                visit.failed_requests.append(p.get("errorText", ""))
            elif m == "Runtime.exceptionThrown":
                visit.exceptions.append(json.dumps(p.get("exceptionDetails", {}))[:500])
            elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
                visit.console_errors.append(json.dumps(p.get("args", []))[:500])
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                visit.console_errors.append(p["entry"].get("text", ""))
            elif m == "Page.javascriptDialogOpening":
                visit.dialogs.append(p.get("message", ""))
        self.send("Target.closeTarget", {"targetId": target})
        return visit, facts

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)


DOM_PROBE = """(async () => {
  if (window.expkitChartsReady) {  // charts drawn in the page by the inline chart library
    await window.expkitChartsReady.catch(() => {});
  }
  const svgs = Array.from(document.querySelectorAll('main svg, section svg')).filter(s => !s.closest('summary'));
  return {
    title: document.title,
    scripts: document.scripts.length,
    expkitScripts: Array.from(document.scripts).map(s => s.dataset.expkit || s.className || s.type || 'other'),
    charts: Array.from(document.querySelectorAll('div.expkit-chart')).map(c => c.dataset.state || 'pending'),
    text: document.body.innerText,
    svgMarks: svgs.map(s => s.querySelectorAll('path, rect, line, circle, text').length),
    svgSizes: svgs.map(s => { const r = s.getBoundingClientRect(); return [r.width, r.height]; }),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
    cards: Array.from(document.querySelectorAll('.card')).map(c => ({
      id: c.id, status: c.dataset.status, text: c.innerText,
      border: getComputedStyle(c).borderLeftColor })),
  };
})()"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (skips where Chromium is not installed)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("chromium is not installed")
    b = Browser()
    try:
        yield b
    finally:
        b.close()
