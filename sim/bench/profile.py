"""Where the batched, prefix-reusing decision path spends its time: torch.profiler by kind of op.

One scoring call runs under the profiler; each op's self time goes to a category:
matrix products, attention, element-wise math (norms, rotary embedding, activation),
data movement (KV-cache concatenation, copies, indexing) or other; what no op accounts
for is Python and framework overhead. With the counted FLOPs this gives the rate the
matrix products themselves reach, which separates "matmuls are slow at these shapes"
from "time goes elsewhere".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

CATEGORIES: dict[str, tuple[str, ...]] = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::_mkldnn", "aten::linear"),
    "attention": ("aten::_scaled_dot_product", "aten::_flash_attention", "aten::_efficient_attention", "aten::softmax"),
    "elementwise": (
        "aten::mul",
        "aten::add",
        "aten::sub",
        "aten::div",
        "aten::silu",
        "aten::pow",
        "aten::rsqrt",
        "aten::mean",
        "aten::neg",
        "aten::sum",
        "aten::exp",
        "aten::sin",
        "aten::cos",
        "aten::log",
    ),
    "data_movement": (
        "aten::cat",
        "aten::copy_",
        "aten::index",
        "aten::gather",
        "aten::contiguous",
        "aten::fill_",
        "aten::clone",
        "aten::masked_fill",
        "aten::_to_copy",
        "aten::embedding",
        "aten::where",
    ),
}


def category(op: str) -> str:
    for name, prefixes in CATEGORIES.items():
        if op.startswith(prefixes):
            return name
    return "other"


def profile_call(fn: Any) -> dict[str, Any]:
    """Run ``fn()`` once under torch.profiler; seconds per category and the unaccounted rest."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
    seconds: dict[str, float] = {name: 0.0 for name in (*CATEGORIES, "other")}
    top: list[tuple[str, float]] = []
    for event in prof.key_averages():
        own = event.self_cpu_time_total / 1e6
        seconds[category(event.key)] += own
        top.append((event.key, own))
    ops = sum(seconds.values())
    seconds["python_and_framework"] = max(0.0, wall - ops)
    top.sort(key=lambda kv: -kv[1])
    return {
        "wall_seconds": round(wall, 3),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "share": {k: round(v / wall, 4) for k, v in seconds.items()},
        "top_ops": [{"op": k, "seconds": round(v, 3), "share": round(v / wall, 4)} for k, v in top[:8]],
    }


def profile_path(backend: Any, requests: Sequence[Any], counted_flops: float, peak: float) -> dict[str, Any]:
    """Profile one batched, prefix-reusing decision call and relate its matmul time to the peak."""
    from sim.bench.throughput import variants

    fn = variants(backend, 1)["batched_prefix"]
    fn(requests[:1])
    out = profile_call(lambda: fn(requests))
    matmul = out["seconds"]["matmul"]
    if matmul > 0:
        out["matmul_flops_per_second"] = counted_flops / matmul
        out["matmul_fraction_of_peak"] = round(counted_flops / matmul / peak, 4)
    return out
