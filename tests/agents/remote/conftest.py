"""The real vLLM server for the engine tests, and a small fake one for the paths vLLM
does not take (top-k letters, samples, HTTP failures).

``make test`` starts ``vllm serve`` in the background (tests/vllm_server.sh) and sets
NORMSIM_VLLM_URL; the server loads while the rest of the suite runs, because the tests
that need it are moved to the end of the session and wait for its /health. Without the
variable (a plain ``pytest`` run) they skip and say why.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
STARTUP_SECONDS = 1800  # a fresh venv (3-9 min), the model conversion and a cold start on a busy 2-core machine


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests of the real server last, so its start-up overlaps the rest of the suite;
    # among them the file order stands (the one that kills the server runs at the very end).
    served = [i for i in items if i.get_closest_marker("vllm_server")]
    if served:
        items[:] = [i for i in items if not i.get_closest_marker("vllm_server")] + served


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vllm_server: needs the real vLLM server (NORMSIM_VLLM_URL)")


@pytest.fixture(scope="session")
def vllm_url() -> str:
    url = os.environ.get("NORMSIM_VLLM_URL")
    if not url:
        pytest.skip("NORMSIM_VLLM_URL is not set: `make test` starts a vLLM server (tests/vllm_server.sh)")
    health = url.removesuffix("/v1") + "/health"
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            with urllib.request.urlopen(health, timeout=5) as response:
                if response.status == 200:
                    return url
        except OSError:
            pass
        pid = os.environ.get("NORMSIM_VLLM_PID")
        if pid and not _alive(int(pid)):
            log = os.environ.get("NORMSIM_VLLM_LOG", "")
            tail = Path(log).read_text()[-3000:] if log and Path(log).exists() else ""
            pytest.fail(f"the vLLM server exited during start-up:\n{tail}")
        if time.monotonic() > deadline:
            pytest.fail(f"the vLLM server at {url} was not healthy within {STARTUP_SECONDS} s")
        time.sleep(1.0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------ a fake server
class FakeServer:
    """An OpenAI-style chat server answering from ``handler(path, body) -> (status, json)``."""

    def __init__(self, handler: Callable[[str, dict[str, Any]], tuple[int, Any]]) -> None:
        self.handler = handler
        self.requests: list[tuple[str, dict[str, Any]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                fake.requests.append((self.path, body))
                status, payload = fake.handler(self.path, body)
                # bytes go out as they are (an HTML error page, a body cut short); the rest as JSON
                raw = isinstance(payload, bytes)
                data = payload if raw else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "text/html" if raw else "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeServer]]:
    servers: list[FakeServer] = []

    def start(handler: Callable[[str, dict[str, Any]], tuple[int, Any]]) -> FakeServer:
        servers.append(FakeServer(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
