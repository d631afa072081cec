"""Tiny-model tests run single-threaded: their matrices are far too small to gain from
a second thread, and on a busy 2-core machine waiting for one costs more than the work."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread_for_tiny_models(request):
    # Module scope, so module-scoped fixtures (a whole run) get one thread too; the
    # default-model module is marked integration at module level and keeps all threads.
    if request.node.get_closest_marker("integration"):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
