"""Progress and verbosity for long work (runs, sweeps, fits, benchmarks).

Through ``tqdm.auto``: a widget in Jupyter, a bar on a terminal; plain
``[label] done/total units (rate, ETA) ...`` lines otherwise (CI, logs, pipes), at most
one every few seconds plus a final one. The CLI's ``--quiet`` and
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

from tqdm import tqdm as plain_tqdm

from sim.core.numbers import num

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


def interactive() -> bool:
    """Someone is watching: stderr is a terminal, or the code runs in a Jupyter kernel."""
    return sys.stderr.isatty() or in_notebook()


def in_notebook() -> bool:
    """Inside a Jupyter (or VS Code, Colab) kernel, where tqdm.auto draws a widget."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and "ipykernel" in sys.modules and type(shell).__name__ == "ZMQInteractiveShell"


def _new_bar(total: int, label: str, unit: str) -> Any:
    """tqdm.auto's bar: a widget in a notebook (plain tqdm where ipywidgets is missing)."""
    if in_notebook():
        try:
            from tqdm.auto import tqdm as auto_tqdm

            return auto_tqdm(total=total, desc=label, unit=unit, leave=True)
        except ImportError:  # no ipywidgets: the text bar, which a notebook shows too
            pass
    return plain_tqdm(total=total, desc=label, unit=unit, leave=False)


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
        self._started = time.monotonic()
        self._bar = _new_bar(total, label, unit) if self.enabled and interactive() else None

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
        line = f"[{self.label}] {self.count}/{self.total} {self.unit}s ({self._pace()}) {extra}".rstrip()
        print(line + (f": {reason}" if reason else ""), file=sys.stderr, flush=True)

    def _pace(self) -> str:
        """'2.5 steps/s, ETA 00:04' (or '3.1 s/run' for slow work); no ETA once done."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self.count / elapsed
        pace = f"{rate:.3g} {self.unit}s/s" if rate >= 1 else f"{1 / rate:.3g} s/{self.unit}" if rate else "-"
        if self.count >= self.total or not rate:
            return pace
        return f"{pace}, ETA {plain_tqdm.format_interval((self.total - self.count) / rate)}"


def _short(value: Any) -> Any:
    # Four significant digits: 0.12 stays 0.12 (one decimal made it 0.1), 1234.5 -> 1234.
    if value is None:  # a series with nothing yet (no norm voted)
        return "n/a"
    return num(value) if isinstance(value, float) else value
