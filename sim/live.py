"""A live view of a running society: a small local web page served by the run.

``normsim run --live`` (or ``sim.run(..., live=True)``) serves, on 127.0.0.1 only, a page
that polls the run's state once a second and draws, for any environment, from its spec:

* the environment's progress series (``spec.progress``: the commons' stock, norm,
  punishments...) first, then every other numeric step series, as small line charts;
* the latest step's decisions per phase: how often each option was chosen and the mean
  distribution the policies gave it (the policies' uncertainty, not only their picks);
* the latest decisions themselves (agent, group, phase, chosen option, its probability).

Nothing is fetched from a network (the page is one self-contained HTML file with its
script inline) and nothing outside the run's own state is served. A run on Ray hosts
(LLM groups served elsewhere) steps in this process, so its view works the same.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sim.core.numbers import tidy
from sim.live_page import PAGE

LATEST = 40  # decisions listed on the page (all of them count in the distributions)
MAX_POINTS = 2000  # points per series sent to the page (a long run is thinned evenly)


class LiveState:
    """What the page shows, updated by the run after every step (thread-safe)."""

    def __init__(self, title: str, total: int, progress: Sequence[str] = ()) -> None:
        self._lock = threading.Lock()
        self.title, self.total, self.progress = title, total, list(progress)
        self.step = 0
        self.status = "running"
        self.series: dict[str, list[float | None]] = {}
        self.steps: list[int] = []
        self.phases: dict[str, dict[str, Any]] = {}
        self.latest: list[dict[str, Any]] = []

    def update(self, step: int, row: dict[str, Any], events: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            self.step = step
            self.steps.append(step)
            for key, value in row.items():
                if key in ("step", "run_id", "seed") or not _numeric(value):
                    continue
                values = self.series.setdefault(key, [None] * (len(self.steps) - 1))
                values.append(None if value is None else tidy(float(value)))
            for values in self.series.values():  # a series missing from this row gets a gap
                values.extend([None] * (len(self.steps) - len(values)))
            if events:
                self.phases = _distributions(events)
                self.latest = [_decision(e) for e in events[-LATEST:]]

    def finish(self, status: str) -> None:
        with self._lock:
            self.status = status

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            every = max(1, math.ceil(len(self.steps) / MAX_POINTS))
            order = [k for k in self.progress if k in self.series] + sorted(
                k for k in self.series if k not in self.progress
            )
            return {
                "title": self.title,
                "step": self.step,
                "total": self.total,
                "status": self.status,
                "steps": self.steps[::every],
                "series": [{"name": k, "values": self.series[k][::every]} for k in order],
                "phases": self.phases,
                "latest": self.latest,
            }


def _numeric(value: Any) -> bool:
    if value is None:
        return True  # a gap (no norm voted yet) in a numeric series
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))


def _distributions(events: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per phase: each option's share of the choices and its mean probability."""
    out: dict[str, dict[str, Any]] = {}
    for e in events:
        phase = out.setdefault(str(e["phase"]), {"n": 0, "options": {}})
        phase["n"] += 1
        for i, (option, p) in enumerate(zip(e["options"], e["probs"], strict=False)):
            slot = phase["options"].setdefault(str(option), {"chosen": 0, "p_sum": 0.0})
            slot["p_sum"] += float(p)
            slot["chosen"] += int(i == int(e["choice"]))
    for phase in out.values():
        n = phase["n"]
        phase["options"] = [
            {"option": k, "share": v["chosen"] / n, "mean_p": tidy(v["p_sum"] / n)} for k, v in phase["options"].items()
        ]
    return out


def _decision(e: dict[str, Any]) -> dict[str, Any]:
    probs = list(e.get("probs") or [])
    choice = int(e["choice"])
    return {
        "step": int(e["step"]),
        "agent": int(e["agent_id"]),
        "group": str(e["group"]),
        "phase": str(e["phase"]),
        "chosen": str(e["chosen"]),
        "p": tidy(float(probs[choice])) if 0 <= choice < len(probs) else None,
        "text": (str(e["text"])[:200] if e.get("text") else None),
    }


class LiveView:
    """Serves the page and the state on 127.0.0.1 (port 0: any free port) until closed."""

    def __init__(self, state: LiveState, port: int = 0) -> None:
        self.state = state
        self.polled = threading.Event()  # someone is watching: the end waits for their last look
        page = PAGE.encode()
        polled = self.polled

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path in ("/", "/index.html"):
                    self._send(page, "text/html; charset=utf-8")
                elif self.path == "/state":
                    self._send(json.dumps(state.snapshot()).encode(), "application/json")
                    polled.set()
                else:
                    self.send_error(404, "the live view serves / and /state only")

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # the run's terminal is for progress lines
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="normsim-live", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self, status: str, grace: float = 1.5) -> None:
        """Mark the run ended and stop serving; a page that was watching gets ``grace``
        seconds to fetch the final state first."""
        self.state.finish(status)
        if self.polled.is_set():
            self.polled.clear()
            self.polled.wait(grace)
        self.server.shutdown()
        self.server.server_close()


def open_live(scenario: Any, run_dir: Path, port: int = 0) -> LiveView:
    """Start the live view of a run: its state drawn from the environment's spec."""
    state = LiveState(f"{scenario.name} ({Path(run_dir).name})", scenario.run.steps, scenario.spec.progress)
    return LiveView(state, port)
