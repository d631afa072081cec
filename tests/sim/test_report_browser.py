"""Reports opened in a real browser: headless Chromium, driven over the DevTools protocol.

Chromium comes from Debian's package (``make browser``, part of ``make test``). The
protocol runs over a pipe (``--remote-debugging-pipe``: JSON messages ending in NUL on
file descriptors 3 and 4), so no websocket client and no port are needed. The tests
skip, saying why, only when no Chromium binary can be found.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.sim.report_fixtures import COMMONS_PLOTS, tiny_run

BINARIES = ("chromium", "chromium-browser", "google-chrome", "chrome")
CHROMIUM = next((path for path in map(shutil.which, BINARIES) if path), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not found: `make browser` installs Debian's chromium package (needs root and apt)",
)

# NORMSIM_SCREENSHOTS=DIR keeps full-page screenshots of the reports there, for a look.
SHOTS = Path(os.environ["NORMSIM_SCREENSHOTS"]) if os.environ.get("NORMSIM_SCREENSHOTS") else None

IMAGES_JS = """
Promise.all(Array.from(document.images).map(img =>
  img.decode().then(() => [img.alt, img.naturalWidth, img.naturalHeight])
     .catch(() => [img.alt, 0, 0])))
"""


class Browser:
    """A headless Chromium and one page, recording console errors, exceptions and requests."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 900) -> None:
        to_chrome, self._w = os.pipe()
        self._r, from_chrome = os.pipe()
        # The protocol wants the pipe on descriptors 3 (in) and 4 (out). A tiny Python
        # trampoline moves them there and execs Chromium (no preexec_fn: it is unsafe with
        # threads); both ends are first lifted to >= 10 so the two dup2 cannot clobber each other.
        lifted = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome, from_chrome)]
        args = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-pipe",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        trampoline = (
            f"import os, sys; os.dup2({lifted[0]}, 3); os.dup2({lifted[1]}, 4); os.execv(sys.argv[1], sys.argv[1:])"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", trampoline, *args],
            pass_fds=lifted,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in (to_chrome, from_chrome, *lifted):
            os.close(fd)
        self._next = 0
        self._inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable", session=True)

    def _read(self) -> None:
        buf = b""
        while chunk := os.read(self._r, 1 << 16):
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                self._inbox.put(json.loads(raw))

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: bool = False, timeout: float = 30.0
    ) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._inbox.get(timeout=max(0.1, deadline - time.monotonic()))
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._inbox.get(timeout=max(0.1, deadline - time.monotonic()))
            self.events.append(event)
            if event.get("method") == method:
                return event

    def open(self, path: Path) -> None:
        self.events.clear()
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=True)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}, session=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, browser log errors, network requests."""
        self.evaluate("1")  # flush events queued before this point
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
                out.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
            elif method == "Runtime.exceptionThrown":
                out.append(f"exception: {params['exceptionDetails'].get('exception', {}).get('description')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                out.append(f"log {params['entry']['level']}: {params['entry']['text']}")
            elif method == "Network.requestWillBeSent" and not params["request"]["url"].startswith(("file:", "data:")):
                out.append(f"network request: {params['request']['url']}")
        return out

    def screenshot(self, path: Path) -> None:
        import base64

        size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 12000), "scale": 1}
        shot = self.call(
            "Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}, session=True
        )
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # it may already be gone; waited for or killed below
            self.call("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def test_run_report_in_chromium_shows_every_plot_without_console_errors(browser, tmp_path):
    result = tiny_run(tmp_path)
    browser.open(result.report)
    images = browser.evaluate(IMAGES_JS)
    assert len(images) == len(COMMONS_PLOTS)
    assert all(width > 300 and height > 150 for _, width, height in images), images
    assert browser.problems() == []
    figures = browser.evaluate("Array.from(document.querySelectorAll('figure')).map(f => f.id)")
    assert {f"plot-{name}" for name in COMMONS_PLOTS} == set(figures)
    # Collapsed by default; the search filters decisions and opens the agents with matches.
    assert browser.evaluate("document.querySelectorAll('details[open]').length") == 0
    total = browser.evaluate("document.querySelectorAll('#transcript details.turn').length")
    assert total == len(result.events)

    def search(text: str) -> tuple[int, int, str]:
        return tuple(
            browser.evaluate(f"""(() => {{
            const box = document.getElementById('transcript-search');
            box.value = {json.dumps(text)};
            box.dispatchEvent(new Event('input'));
            return [document.querySelectorAll('#transcript details.turn:not([hidden])').length,
                    document.querySelectorAll('#transcript details.agent[open]').length,
                    document.getElementById('transcript-count').textContent];
        }})()""")
        )

    shown, open_agents, label = search("What you remember")  # only prompt-reading agents' rows
    readers = result.events[result.events["prompt"].notna()]
    assert shown == len(readers) and open_agents == readers["agent_id"].nunique()
    assert label == f"{shown} of {total} decisions match"
    assert search("no decision says this")[:2] == (0, 0)
    assert search("")[0] == total
    browser.evaluate("document.getElementById('transcript-expand').click()")
    assert browser.evaluate("document.querySelectorAll('#transcript details.turn[open]').length") == total
    assert browser.problems() == []
    browser.evaluate("document.getElementById('transcript-collapse').click()")
    assert browser.evaluate("document.querySelectorAll('details[open]').length") == 0
    if SHOTS:
        browser.screenshot(SHOTS / "run_report.png")
        search("What you remember")  # one prompt-reading agent's first decision, opened
        browser.evaluate("document.querySelector('#transcript details.agent[open] details.turn').open = true")
        browser.screenshot(SHOTS / "run_report_transcript.png")


def test_sweep_report_in_chromium_shows_every_plot_without_console_errors(browser, tmp_path):
    from sim.report import write_report
    from sim.sweep import run_sweep

    spec = {
        "name": "tiny_grid",
        "base": "commons_grid_base.yaml",
        "seeds": 2,
        "backend": {"kind": "local"},
        "grid": {"mechanics.punishment.enabled": [True, False]},
    }
    shutil.copy(Path(__file__).resolve().parents[2] / "scenarios" / "commons_grid_base.yaml", tmp_path)
    (tmp_path / "sweep.yaml").write_text(json.dumps(spec))
    result = run_sweep(tmp_path / "sweep.yaml", tmp_path / "out")
    report = write_report(result.dir)
    browser.open(report)
    images = browser.evaluate(IMAGES_JS)
    assert len(images) == len(list((result.dir / "plots").glob("*.png"))) > 5
    assert all(width > 300 and height > 100 for _, width, height in images), images
    assert "Survival curves per cell" in [alt for alt, _, _ in images]
    assert browser.problems() == []
    if SHOTS:
        browser.screenshot(SHOTS / "sweep_report.png")


def test_the_browser_check_catches_broken_images_and_console_errors(browser, tmp_path):
    """The checks above can fail: a page with a broken image, a console error, an
    exception and a network reference is reported on every count."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body><img alt='broken' src='data:image/png;base64,AAAA'>"
        "<img alt='remote' src='http://example.invalid/x.png'>"
        "<script>console.error('boom'); null.x;</script></body></html>"
    )
    browser.open(page)
    images = browser.evaluate(IMAGES_JS)
    assert [w for _, w, _ in images] == [0, 0]
    found = "\n".join(browser.problems())
    assert "console.error: ['boom']" in found
    assert "exception: TypeError" in found
    assert "network request: http://example.invalid/x.png" in found
