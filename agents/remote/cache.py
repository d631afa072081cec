"""The on-disk request cache: a rerun replays the server's answers without calling it.

A request's key is the SHA-256 of its endpoint and JSON body (model, prompt and every
parameter, the seed included), so only an identical request replays; the server's
address is not part of it (the same model moved to another port replays). One JSON
file per answer, written to a temporary name and renamed, so concurrent runs sharing
a cache never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def request_key(endpoint: str, body: dict[str, Any]) -> str:
    payload = json.dumps({"endpoint": endpoint, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class RequestCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text())["response"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError):  # a damaged entry is a miss, rewritten on the next answer
            return None

    def put(self, key: str, response: Any) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump({"response": response}, fh)
        os.replace(tmp, path)
