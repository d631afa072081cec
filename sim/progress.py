"""Progress reporting: a tqdm bar on a terminal, plain lines otherwise (CI, logs)."""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, label: str, enabled: bool = True, every_seconds: float = 5.0) -> None:
        self.enabled = enabled
        self.total = total
        self.label = label
        self.count = 0
        self.every = every_seconds
        self._last = 0.0
        self._bar = tqdm(total=total, desc=label, unit="step", leave=False) if enabled and sys.stderr.isatty() else None

    def update(self, info: dict[str, Any] | None = None, n: int = 1) -> None:
        if not self.enabled:
            return
        self.count += n
        postfix = {k: _short(v) for k, v in (info or {}).items() if k in _SHOWN}
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            return
        now = time.monotonic()
        if now - self._last >= self.every or self.count >= self.total:
            self._last = now
            extra = " ".join(f"{k}={v}" for k, v in postfix.items())
            print(f"[{self.label}] {self.count}/{self.total} {extra}".rstrip(), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# Step-row fields worth showing beside the bar.
_SHOWN = ("stock", "group_norm", "punishments", "violations")


def _short(value: Any) -> Any:
    return f"{value:.1f}" if isinstance(value, float) else value
