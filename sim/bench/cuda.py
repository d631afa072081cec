"""The GPU run: ``normsim bench --device cuda`` measures every section with a ~1B-parameter random Llama.

The model is defined here in code (a Llama-3.2-1B-shaped config with the default
model's tokenizer, so prompts tokenise exactly as on CPU), its weights drawn from a
seeded generator on the GPU, and saved once as a local bfloat16 checkpoint under the
normsim cache: every part of the bench (the memory section's fresh processes, the sweep
section's Ray hosts) then loads it by path like any other model. Nothing is downloaded.
Random weights decide nonsense; the timings are what count.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Llama-3.2-1B's shape: 16 layers of width 2048, grouped-query attention (32 heads, 8
# key/value heads), MLP width 8192, tied embeddings. With SmolLM2's 49,152-token
# vocabulary that is 1.07 B parameters.
SHAPE = {
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": True,
}
SEED = 0


def llama_config(vocab_size: int, *, eos_token_id: int | None = None, pad_token_id: int | None = None) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size, eos_token_id=eos_token_id, pad_token_id=pad_token_id, **SHAPE)


def parameter_count(config: Any) -> int:
    """Parameters of the model a config defines, counted without allocating them."""
    import torch
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    return sum(p.numel() for p in model.parameters())


def _tokenizer() -> Any:
    from transformers import AutoTokenizer

    from agents.llm import loading

    return AutoTokenizer.from_pretrained(str(loading.convert_embedded(loading.DEFAULT_MODEL)), local_files_only=True)


def require_gpu_model() -> str:
    """Path of the saved random ~1B Llama (built on the GPU the first time)."""
    import torch
    from transformers import LlamaForCausalLM

    from agents.llm.loading import cache_root

    tokenizer = _tokenizer()
    config = llama_config(len(tokenizer), eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    digest = hashlib.sha256(json.dumps({**SHAPE, "vocab": len(tokenizer), "seed": SEED}).encode()).hexdigest()[:8]
    target = cache_root() / "models" / f"random-llama-1b-{digest}"
    if (target / "config.json").exists():
        return str(target)
    torch.manual_seed(SEED)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".random-llama-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)  # whole or not at all: a concurrent bench never reads half a checkpoint
    except OSError:
        if not (target / "config.json").exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    del model
    torch.cuda.empty_cache()
    return str(target)


def section(bench: Any) -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device on this machine; `normsim bench --device cuda` runs every section on a GPU"}
    if bench.device != "cuda":
        return {
            "skipped": "CPU run; `normsim bench --device cuda` runs every section on this machine's GPU",
            "gpu": torch.cuda.get_device_name(0),
        }
    model = bench.backend.model
    return {
        "gpu": torch.cuda.get_device_name(0),
        "model": bench.model,
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": str(bench.backend.dtype).removeprefix("torch."),
        "shape": SHAPE,
        "note": "every other section of this report ran on this GPU with this model",
    }
