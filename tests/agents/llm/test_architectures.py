"""The engine on every architecture family researchers bring, against plain eager forwards.

Tiny random models of each architecture class are built from their config in code
(nothing is downloaded; :func:`agents.llm.testing.tiny_model`). Windowed variants get a
window of 16 positions, well below the prompts' length (the shared system text alone
is longer), and a mix of full and sliding layers where the family has both. Each
engine is held to references that run the model in its original eager attention, one
prompt and one option at a time, with no cache, no padding and no shared prefix:

* scoring: every option's log-probability (the sum of its tokens'), prefix reuse on and
  off, left and right padding;
* generation: greedy replies against naive token-by-token decoding;
* steering: coefficient 0 is bit-identical to unsteered, a non-zero coefficient matches
  the same vector applied with :class:`steering.hooks.Steerer` to the plain forward;
* capture: each row's layer output at its last prompt token.

ALiBi families are refused at load with one line naming the family. Print the table of
largest differences with ``python -m tests.agents.llm.test_architectures``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch

from agents.llm import attention
from agents.llm.architecture import UnsupportedModel
from agents.llm.backend import Backend
from agents.llm.scoring import prepare, score_items
from agents.llm.testing import tiny_model, tiny_tokenizer
from agents.llm.types import GenerateItem, ScoreItem
from steering.config import SteerSpec
from steering.hooks import Steerer
from steering.positions import LAST, PROMPT
from steering.vectors import SteeringVector

W = 16  # sliding window of the windowed variants: shorter than every prompt
MIXED = ["sliding_attention", "full_attention"]
ROPE16 = {"rotary_dim": 16}

# name -> (model_type, config overrides); "drop" leaves base fields out
ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("llama", {}),
    "mistral-sliding": ("mistral", {"sliding_window": W}),
    "mixtral": ("mixtral", {"num_local_experts": 4, "num_experts_per_tok": 2, "sliding_window": None}),
    "qwen2": ("qwen2", {}),
    "qwen2-sliding": ("qwen2", {"use_sliding_window": True, "sliding_window": W, "max_window_layers": 1}),
    "qwen2_moe": (
        "qwen2_moe",
        {
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 32,
            "shared_expert_intermediate_size": 32,
        },
    ),
    "qwen3": ("qwen3", {}),
    "qwen3_moe": ("qwen3_moe", {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}),
    "gemma": ("gemma", {}),
    "gemma2-sliding": ("gemma2", {"sliding_window": W}),
    "gemma3-sliding": ("gemma3_text", {"sliding_window": W, "layer_types": MIXED}),
    "phi": ("phi", {}),
    "phi3": ("phi3", {}),
    "gpt2": ("gpt2", {}),
    "olmo": ("olmo", {}),
    "olmo2": ("olmo2", {}),
    "olmo3-sliding": ("olmo3", {"sliding_window": W, "layer_types": MIXED}),
    "falcon": ("falcon", {"drop": ("head_dim", "num_key_value_heads"), "new_decoder_architecture": True}),
    "gpt_neox": ("gpt_neox", {}),
    "gptj": ("gptj", ROPE16),
    "codegen": ("codegen", ROPE16),
    "stablelm": ("stablelm", {}),
    "starcoder2-sliding": ("starcoder2", {"sliding_window": W}),
    "cohere": ("cohere", {}),
    "cohere2-sliding": ("cohere2", {"sliding_window": W, "layer_types": MIXED}),
    "granite": ("granite", {}),
    "granitemoe": ("granitemoe", {"num_local_experts": 4, "num_experts_per_tok": 2}),
    "smollm3": ("smollm3", {}),
    "glm": ("glm", {}),
    "glm4": ("glm4", {}),
    "opt": ("opt", {"word_embed_proj_dim": 64, "ffn_dim": 128}),
    "gpt_bigcode": ("gpt_bigcode", {}),
    "gpt_oss-sliding": (
        "gpt_oss",
        {"sliding_window": W, "layer_types": MIXED, "num_local_experts": 4, "num_experts_per_tok": 2},
    ),
    "exaone4-sliding": ("exaone4", {"sliding_window": W, "layer_types": MIXED}),
    "ministral-sliding": ("ministral", {"sliding_window": W, "layer_types": MIXED}),
    "helium": ("helium", {}),
    "seed_oss": ("seed_oss", {}),
    "nemotron": ("nemotron", {}),
    "persimmon": ("persimmon", {}),
}
# Families the engine refuses at load, and a word the one-line reason must contain.
REFUSED: dict[str, tuple[str, dict[str, Any], str]] = {
    "bloom": ("bloom", {}, "ALiBi"),
    "mpt": ("mpt", {"drop": ("head_dim", "num_key_value_heads")}, "ALiBi"),
    "falcon-alibi": ("falcon", {"drop": ("head_dim", "num_key_value_heads"), "alibi": True}, "ALiBi"),
}

SYSTEM = (
    "You are one of 5 fishers sharing a lake that holds at most 100 tons of fish. "
    "Each month every fisher decides how much to catch. The agreed limit is 10 tons per fisher."
)
USERS = [
    "Month 2: you caught 9.5 tons; others caught 1: 10.0, 2: 20.0; 80 tons were left. How much do you catch?",
    "How much do you catch this month?",
    "You care about the community. Do you fine fisher 3?",
    # shares its first sentence with the first: a branch of the batch's prefix tree
    "Month 2: you caught 9.5 tons; others caught 1: 10.0, 2: 20.0; 80 tons were left. Do you fine fisher 2?",
]
OPTIONS = ("10% of the stock (10.0 tons)", "12 tons", "no")
TOL = 2e-4  # float32 log-probabilities of values up to ~40: sums of a few hundred rounded terms


def _build(name: str) -> Any:
    model_type, overrides = ARCHITECTURES[name]
    overrides = dict(overrides)
    return tiny_model(model_type, seed=1, drop=overrides.pop("drop", ()), **overrides)


@functools.cache
def backend_for(name: str) -> Backend:
    return Backend(_build(name), tiny_tokenizer(), name=f"tiny-{name}")


def score_items_for() -> list[ScoreItem]:
    return [ScoreItem(SYSTEM, u, "I choose: ", OPTIONS) for u in USERS]


@contextmanager
def eager(model: Any) -> Iterator[None]:
    """The model's own eager attention for the duration (the reference's)."""
    current = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(current)


def reference_logprobs(backend: Backend, items: list[ScoreItem], steerer: Steerer | None = None) -> list[np.ndarray]:
    """One eager forward per (item, option); with ``steerer``, its rows steer the last prompt token."""
    out = []
    with eager(backend.model), torch.inference_mode():
        for prep in prepare(backend.engine, items):
            scores = []
            for tail in prep.tails:
                ids = torch.tensor([prep.context + tail])
                if steerer is not None:
                    kinds = torch.full(ids.shape, PROMPT)
                    kinds[0, len(prep.context) - 1] = LAST
                    kinds[0, len(prep.context) :] = 4  # generated: not steered at last_prompt
                    steerer.set_tokens(kinds)
                logp = torch.log_softmax(backend.model(input_ids=ids, use_cache=False).logits[0].float(), -1)
                start = len(prep.context)
                scores.append(sum(float(logp[start + j - 1, tok]) for j, tok in enumerate(tail)))
            out.append(np.array(scores))
    return out


def max_diff(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    return max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True))


# ------------------------------------------------------------------------ checks
def check_scoring(name: str) -> float:
    backend = backend_for(name)
    items = score_items_for()
    want = reference_logprobs(backend, items)
    worst = 0.0
    engine = backend.engine
    try:
        for reuse in (True, False):
            for side in ("left", "right"):
                engine.reuse_prefix, engine.padding_side = reuse, side
                got = [r.logprobs for r in score_items(engine, items)]
                worst = max(worst, max_diff(got, want))
    finally:
        engine.reuse_prefix, engine.padding_side = True, "right"
    return worst


def check_generation(name: str) -> float:
    """0.0 when every greedy reply equals naive decoding (else the test fails on the text)."""
    backend = backend_for(name)
    engine = backend.engine
    items = [GenerateItem(SYSTEM, u, "I propose ", max_new_tokens=5, temperature=0.0) for u in USERS]
    want = []
    with eager(backend.model), torch.inference_mode():
        for item in items:
            ids = engine.encode([engine.render(item.system, item.user, item.answer_prefix)])[0]
            new: list[int] = []
            for _ in range(item.max_new_tokens):
                token = int(backend.model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax())
                if token in engine.eos_ids:
                    break
                new.append(token)
            want.append(engine.decode(new))
    for side in ("left", "right"):
        engine.padding_side = side
        try:
            got = backend.generate(items)
        finally:
            engine.padding_side = "right"
        assert got == want, f"{name} ({side} padding): {got} != {want}"
    return 0.0


def random_vector(backend: Backend, tmp_dir: Any) -> str:
    info = backend.info()
    gen = torch.Generator().manual_seed(5)
    dirs = {layer: torch.randn(info.hidden_size, generator=gen) for layer in range(info.num_layers)}
    vector = SteeringVector(dirs, info.model_id, info.hidden_size, info.num_layers, "random")
    return str(vector.save(tmp_dir / f"{info.model_id}-random"))


def check_steering(name: str, tmp_dir: Any) -> float:
    backend = backend_for(name)
    path = random_vector(backend, tmp_dir)
    layers = tuple(range(len(backend.layers)))
    items = score_items_for()

    def steered(coef: float) -> list[ScoreItem]:
        spec = SteerSpec(vector=path, layers=layers, coefficient=coef, positions="last_prompt")
        return [ScoreItem(i.system, i.user, i.answer_prefix, i.options, steer=spec) for i in items]

    plain = [r.logprobs for r in backend.score(items)]
    zero = [r.logprobs for r in backend.score(steered(0.0))]
    assert all(np.array_equal(a, b) for a, b in zip(zero, plain, strict=True)), name
    coef = 4.0
    got = [r.logprobs for r in backend.score(steered(coef))]
    with Steerer(backend.model, model_id=backend.name, blocks=backend.layers) as steerer:
        steerer.set_rows(steerer.add(SteeringVector.load(path)), coef, "last_prompt")
        want = reference_logprobs(backend, items, steerer)
    assert max_diff(got, plain) > 1e-3, f"{name}: steering changed nothing"
    return max_diff(got, want)


def _recorder(outputs: dict[int, torch.Tensor], layer: int) -> Any:
    def hook(_module: Any, _inputs: Any, out: Any) -> None:
        outputs[layer] = out[0] if isinstance(out, tuple) else out

    return hook


def check_capture(name: str) -> float:
    backend = backend_for(name)
    last = len(backend.layers) - 1
    items = [ScoreItem(i.system, i.user, i.answer_prefix, i.options, capture=(0, last)) for i in score_items_for()]
    got = backend.score(items)
    worst = 0.0
    with eager(backend.model), torch.inference_mode():
        for prep, result in zip(prepare(backend.engine, items), got, strict=True):
            outputs: dict[int, torch.Tensor] = {}
            handles = [backend.layers[layer].register_forward_hook(_recorder(outputs, layer)) for layer in (0, last)]
            try:
                backend.model(input_ids=torch.tensor([prep.context]), use_cache=False)
            finally:
                for handle in handles:
                    handle.remove()
            for layer in (0, last):
                want = outputs[layer][0, -1].float().numpy()
                worst = max(worst, float(np.abs(result.activations[layer] - want).max()))
    return worst


# ------------------------------------------------------------------------- tests
NAMES = sorted(ARCHITECTURES)


@pytest.mark.parametrize("name", NAMES)
def test_scoring_equals_eager_per_prompt(name):
    assert check_scoring(name) <= TOL


@pytest.mark.parametrize("name", NAMES)
def test_greedy_generation_equals_naive_decoding(name):
    check_generation(name)


@pytest.mark.parametrize("name", NAMES)
def test_steering_zero_is_exact_and_nonzero_equals_hooked_reference(name, tmp_path):
    assert check_steering(name, tmp_path) <= TOL


@pytest.mark.parametrize("name", NAMES)
def test_capture_equals_layer_outputs(name):
    assert check_capture(name) <= 1e-4


def test_windowed_models_keep_the_shared_prefix_and_say_so(caplog):
    for name in NAMES:
        backend = backend_for(name)
        described = backend.describe()
        if "sliding" in name:
            assert any(w == W for w in described["windows"]), name
            assert described["attention_path"] == "shared_prefix", (name, described)


def test_the_attention_path_is_logged_once_with_its_reason(caplog):
    with caplog.at_level(logging.INFO, logger="agents.llm"):
        fallback = Backend(_build("falcon"), tiny_tokenizer(), name="tiny-falcon-logged")
        shared = Backend(_build("gemma2-sliding"), tiny_tokenizer(), name="tiny-gemma2-logged")
        fallback.score(score_items_for())
    lines = [r.getMessage() for r in caplog.records if r.name == "agents.llm"]
    assert len(lines) == 2
    assert "tiny-falcon-logged: attention path: per-row prefix" in lines[0]
    assert "FalconForCausalLM's attention layers do not all go through" in lines[0]
    assert lines[1] == "tiny-gemma2-logged: attention path: shared prefix; layers: 1 sliding(16) + 1 full"
    assert fallback.describe()["fallback_reason"] in lines[0] and shared.describe()["fallback_reason"] is None


def test_per_row_prefix_path_applies_windows_too():
    """The path for models whose attention bypasses the context: the model applies the
    engine's mask itself (one kind for all layers), prefix copied into every row."""
    backend = Backend(_build("mistral-sliding"), tiny_tokenizer(), name="tiny-mistral-per-row")
    backend.engine.share_prefix_kv = False
    attention.uninstall(backend.model)
    items = score_items_for()
    want = reference_logprobs(backend, items)
    for side in ("left", "right"):
        backend.engine.padding_side = side
        assert max_diff([r.logprobs for r in score_items(backend.engine, items)], want) <= TOL


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_alibi_families_are_refused_at_load_with_one_line(name):
    model_type, overrides, word = REFUSED[name]
    overrides = dict(overrides)
    model = tiny_model(model_type, drop=overrides.pop("drop", ()), **overrides)
    with pytest.raises(UnsupportedModel) as err:
        Backend(model, tiny_tokenizer(), name=f"tiny-{name}")
    message = str(err.value)
    assert word in message and model_type in message and "\n" not in message


@pytest.mark.parametrize(
    "reported, expected",
    [
        (([], []), 7),  # no kinds: one per layer, from the config
        ((["full_attention"] * 2, {}), None),  # transformers 5.17: one dict for all layers
        ((["sliding_attention"] * 2, {"sliding_window": 4}), 4),
        ((["sliding_attention"] * 2, [{"sliding_window": 4}, {"sliding_window": 4}]), 4),  # 5.25: one per layer
        ((["sliding_attention"] * 2, []), 7),  # no arguments: the config's window
    ],
)
def test_layer_kinds_are_read_from_every_release_s_answer(monkeypatch, reported, expected):
    import transformers.cache_utils

    from agents.llm.architecture import layer_windows
    from agents.llm.testing import tiny_model

    model = tiny_model("llama", seed=0)
    model.config.sliding_window = 7
    n = model.config.num_hidden_layers
    assert n == 2
    monkeypatch.setattr(transformers.cache_utils, "get_layer_types_and_kwargs", lambda config: reported)
    assert layer_windows(model, n) == (expected,) * n


def main() -> None:
    """The matrix as a table: architecture, attention path, largest differences."""
    import tempfile
    from pathlib import Path

    torch.set_num_threads(1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in NAMES:
            t0 = time.perf_counter()
            backend = backend_for(name)
            d = backend.describe()
            row = [check_scoring(name), check_generation(name), check_steering(name, Path(tmp)), check_capture(name)]
            print(
                f"{name:20s} {type(backend.model).__name__:28s} {d['attention_path']:15s} {d['layers']:28s} "
                f"score {row[0]:.1e}  steer {row[2]:.1e}  capture {row[3]:.1e}  ({time.perf_counter() - t0:.1f}s)"
            )
    for name, (model_type, overrides, _) in sorted(REFUSED.items()):
        overrides = dict(overrides)
        model = tiny_model(model_type, drop=overrides.pop("drop", ()), **overrides)
        try:
            Backend(model, tiny_tokenizer(), name=f"tiny-{name}")
            print(f"{name:20s} NOT refused")
        except UnsupportedModel as exc:
            print(f"{name:20s} refused: {exc}")
    print(f"total {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
