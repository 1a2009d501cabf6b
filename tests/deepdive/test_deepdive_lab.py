"""``make lab`` (docs/deepdive.md, "In JupyterLab: `make lab`"): JupyterLab on ``notebooks/`` at
127.0.0.1, as root and headless; the deep-dive notebook and a tile notebook run with their defaults
through the server's own REST and kernel websocket API; the server stops by its process id.

The server's kernels inherit ``$EXPKIT_WAREHOUSE`` (the session's small warehouse): the notebooks'
defaults are otherwise those a person gets (``params/experiment.yaml`` of the checkout, the newest
rolled-up date, the kernel started in the notebook's own folder).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from deepdive_support import ROOT, Built

from expkit.charts import VEGALITE_MIME

pytestmark = pytest.mark.slow


def _require_jupyterlab() -> None:
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        if os.environ.get("EXPKIT_REQUIRE_LAB"):
            pytest.fail("EXPKIT_REQUIRE_LAB is set but jupyterlab is not installed (make venv EXTRAS=dev,lab)")
        pytest.skip("jupyterlab is not installed (the lab extra)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    """A running ``make lab``: its process (the leader of its own process group), URL and token."""

    proc: subprocess.Popen[str]
    base: str
    token: str
    lines: list[str]

    def request(self, method: str, path: str, body: Any = None) -> Any:
        sep = "&" if "?" in path else "?"
        req = urllib.request.Request(f"{self.base}{path}{sep}token={self.token}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read().decode()
        return json.loads(text) if text and resp.headers.get_content_type() == "application/json" else text


@pytest.fixture(scope="module")
def lab(planted: Built) -> Iterator[Lab]:
    _require_jupyterlab()
    port = _free_port()
    env = {**os.environ, "EXPKIT_WAREHOUSE": str(planted.path)}
    env.pop("EXPKIT_NOTEBOOKS", None)
    proc = subprocess.Popen(["make", "--no-print-directory", "-C", str(ROOT), "lab", f"LAB_PORT={port}",
                             f"VENV={Path(sys.prefix)}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 180
        url = None
        while time.monotonic() < deadline and proc.poll() is None:
            url = next((line.split(": ", 1)[1].split()[0] for line in list(lines) if line.startswith("JupyterLab on")),
                       None)
            if url:
                try:
                    urllib.request.urlopen(url, timeout=5).close()
                    break
                except (urllib.error.URLError, ConnectionError):
                    pass
            time.sleep(0.5)
        else:
            pytest.fail(f"make lab did not serve within 180 s: {''.join(lines)[-3000:]}")
        assert url is not None
        parsed = urllib.parse.urlsplit(url)
        assert parsed.hostname == "127.0.0.1" and parsed.port == port, url
        yield Lab(proc, f"http://127.0.0.1:{port}", urllib.parse.parse_qs(parsed.query)["token"][0], lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the process group make leads: the server and its kernels
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


async def _execute(lab: Lab, kernel_id: str, sources: list[str], timeout: float = 300) -> list[list[dict[str, Any]]]:
    """Run each source in the kernel over the server's websocket channels; per source, its iopub outputs."""
    from tornado.websocket import websocket_connect

    ws_url = f"ws://{lab.base.split('://', 1)[1]}/api/kernels/{kernel_id}/channels?token={lab.token}"
    ws = await websocket_connect(ws_url)
    session = uuid.uuid4().hex
    results = []
    try:
        for code in sources:
            msg_id = uuid.uuid4().hex
            await ws.write_message(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": session,
                           "date": "", "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True},
            }))
            outputs: list[dict[str, Any]] = []
            replied = idle = False
            while not (replied and idle):
                raw = await asyncio.wait_for(ws.read_message(), timeout)
                assert raw is not None, "the kernel's websocket closed"
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["msg_type"]
                if msg["channel"] == "shell" and kind == "execute_reply":
                    replied = True
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    idle = True
                elif kind in ("stream", "display_data", "execute_result", "error"):
                    outputs.append({"type": kind, **msg["content"]})
            results.append(outputs)
    finally:
        ws.close()
    return results


def _run_notebook(lab: Lab, path: str) -> list[dict[str, Any]]:
    """Open ``path`` as JupyterLab does (a session: a kernel in the notebook's folder), run its code
    cells unchanged and a probe of the working folder, close the session; every output in order."""
    nb = lab.request("GET", f"/api/contents/{path}")
    assert nb["type"] == "notebook"
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
               for c in nb["content"]["cells"] if c["cell_type"] == "code"]
    session = lab.request("POST", "/api/sessions", {"path": path, "type": "notebook", "name": "",
                                                     "kernel": {"name": "python3"}})
    try:
        per_cell = asyncio.run(_execute(lab, session["kernel"]["id"], [*sources, "import os; print(os.getcwd())"]))
    finally:
        lab.request("DELETE", f"/api/sessions/{session['id']}")
    cwd = "".join(o.get("text", "") for o in per_cell[-1]).strip()
    assert Path(cwd).resolve() == (ROOT / "notebooks" / path).parent.resolve(), cwd
    outputs = [o for cell in per_cell for o in cell]
    errors = [f"{o['ename']}: {o['evalue']}" for o in outputs if o["type"] == "error"]
    assert not errors, (path, errors)
    return outputs


def test_make_lab_serves_lab_and_runs_notebooks_with_their_defaults(lab: Lab) -> None:
    page = lab.request("GET", "/lab")
    assert "JupyterLab" in page
    assert any("Serving notebooks from local directory" in line and line.rstrip().endswith("notebooks")
               for line in lab.lines), "".join(lab.lines)[-2000:]
    outputs = _run_notebook(lab, "deepdive/experiment.ipynb")
    html = " ".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "Verdict:" in html and "segment-vs-rest tests" in html
    assert sum(VEGALITE_MIME in o.get("data", {}) for o in outputs) >= 3
    outputs = _run_notebook(lab, "outcomes/ctr.ipynb")
    html = " ".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert 'class="expkit-headline"' in html and 'data-status="no_data"' not in html


def test_the_server_stops_by_its_pid(lab: Lab) -> None:
    """Last in the module: SIGTERM to the process ``make lab`` started stops the server and frees the port."""
    port = int(lab.base.rsplit(":", 1)[1])
    os.killpg(lab.proc.pid, signal.SIGTERM)
    assert lab.proc.wait(timeout=60) is not None
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "nothing listens on the port any more"
