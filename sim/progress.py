"""Progress and verbosity for long work (runs, sweeps, fits, benchmarks).

A tqdm bar on a terminal; plain ``[label] done/total ...`` lines otherwise (CI, logs,
pipes), at most one every few seconds plus a final one. The CLI's ``--quiet`` and
``--verbose`` call :func:`configure` once; every :class:`Progress` follows it::

    with Progress(total=len(runs), label="sweep", unit="run", show=("status",)) as bar:
        for run in runs:
            bar.update({"status": "finished"})
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

# Our packages' loggers; --verbose turns them to DEBUG, --quiet to WARNING.
PACKAGES = ("sim", "agents", "environments", "steering")

_state = {"quiet": False, "verbose": False}


def configure(quiet: bool = False, verbose: bool = False) -> None:
    """Set the verbosity of progress output and of our loggers (stderr)."""
    _state["quiet"], _state["verbose"] = quiet, verbose
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    for name in PACKAGES:
        logging.getLogger(name).setLevel(level)


def is_quiet() -> bool:
    return _state["quiet"]


def is_verbose() -> bool:
    return _state["verbose"]


class Progress:
    def __init__(
        self,
        total: int,
        label: str,
        enabled: bool = True,
        every_seconds: float = 5.0,
        unit: str = "step",
        show: Sequence[str] = (),
    ) -> None:
        self.enabled = enabled and not _state["quiet"]
        self.total = total
        self.label = label
        self.unit = unit
        self.show = tuple(show)
        self.count = 0
        self.every = 0.0 if _state["verbose"] else every_seconds
        self._last = float("-inf")  # the first update always prints
        self._started = time.monotonic()
        self._printed = -1
        self._postfix: dict[str, Any] = {}
        tty = sys.stderr.isatty()
        self._bar = tqdm(total=total, desc=label, unit=unit, leave=False) if self.enabled and tty else None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, info: dict[str, Any] | None = None, n: int = 1) -> None:
        if not self.enabled:
            return
        self.count += n
        self._postfix = {k: _short(v) for k, v in (info or {}).items() if k in self.show}
        if self._bar is not None:
            self._bar.update(n)
            if self._postfix:
                self._bar.set_postfix(self._postfix, refresh=False)
            return
        now = time.monotonic()
        if now - self._last >= self.every or self.count >= self.total:
            self._last = now
            self._line()

    def write(self, message: str) -> None:
        """A line of its own (a finished run, a warning) that does not break the bar."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    def close(self, reason: str | None = None) -> None:
        """End the bar; ``reason`` (e.g. "collapsed at step 7") becomes a last line of its own.

        The bar erases itself on a terminal, so work that stopped early always gets a
        final line saying where it stopped and why.
        """
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            if self.enabled and reason:
                print(f"[{self.label}] {self.count}/{self.total} {self.unit}s: {reason}", file=sys.stderr, flush=True)
        elif self.enabled and self.count and (self._printed != self.count or reason):
            self._line(reason)  # work that stopped early (a collapse) still gets its last line

    def _line(self, reason: str | None = None) -> None:
        self._printed = self.count
        extra = " ".join(f"{k}={v}" for k, v in self._postfix.items())
        line = f"[{self.label}] {self.count}/{self.total} {self.unit}s{_pace(self.count, self.total, self._started, self.unit)} {extra}"
        line = line.rstrip()
        print(line + (f": {reason}" if reason else ""), file=sys.stderr, flush=True)


def _pace(count: int, total: int, started: float, unit: str) -> str:
    """' (2.5 steps/s, ETA 0:12)', as a bar shows them; nothing before anything is done."""
    elapsed = time.monotonic() - started
    if count <= 0 or elapsed <= 0:
        return ""
    rate = count / elapsed
    speed = f"{rate:.3g} {unit}s/s" if rate >= 1 else f"{1 / rate:.3g} s/{unit}"
    left = max(0, total - count) / rate
    eta = (
        f"{int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}"
        if left >= 3600
        else (f"{int(left // 60)}:{int(left % 60):02d}")
    )
    return f" ({speed}, ETA {eta})" if count < total else f" ({speed}, {elapsed:.1f} s)"


def _short(value: Any) -> Any:
    # Four significant digits: 0.12 stays 0.12 (one decimal made it 0.1), 1234.5 -> 1234.
    return f"{value:.4g}" if isinstance(value, float) else value
