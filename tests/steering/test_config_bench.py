from __future__ import annotations

import pytest
from pydantic import ValidationError

from steering.bench import overhead, table
from steering.config import SteeringConfig, SteerSpec
from steering.fit import read_prompts


def test_steering_block_validation():
    cfg = SteeringConfig(vector="v.safetensors", coefficient=4)
    assert cfg.positions == ["last_prompt", "generated"] and cfg.operator == "add"
    with pytest.raises(ValidationError, match="exactly one of vector"):
        SteeringConfig(coefficient=1)
    with pytest.raises(ValidationError, match="cosine gate applies to add"):
        SteeringConfig(vector="v", operator="rotate", gate=0.1)
    with pytest.raises(ValidationError, match="needs runs"):
        SteeringConfig(fit={"method": "east", "layers": [3]})
    with pytest.raises(ValidationError, match="unknown key 'coef'"):
        SteeringConfig(vector="v", coef=2)
    fit = SteeringConfig(
        fit={"method": "contrastive", "layers": [1], "runs": ["r"], "positive": "persona=a", "negative": "persona=b"}
    )
    assert fit.fit.method == "contrastive"
    spec = SteerSpec(vector="/x/bandit_east.safetensors", layers=(15,), coefficient=4.0, positions="last_prompt")
    assert spec.label == "bandit_east@15:add" and hash(spec) == hash(SteerSpec(**spec.__dict__))


def test_prompt_files(tmp_path):
    (tmp_path / "a.yaml").write_text("system: S\nanswer_prefix: 'I catch '\nprompts: [one, {user: two, system: T}]\n")
    (tmp_path / "b.yaml").write_text("- just text\n")
    a, b = read_prompts(tmp_path / "a.yaml"), read_prompts(tmp_path / "b.yaml")
    assert [(p.system, p.user, p.answer_prefix) for p in a] == [("S", "one", "I catch "), ("T", "two", "I catch ")]
    assert b[0].user == "just text" and b[0].system == ""


def test_overhead_reports_every_configuration(model):
    rows = overhead(model, batch=3, prompt_len=8, repeats=2, warmup=1)
    assert [r["config"] for r in rows] == [
        "unsteered",
        "1 layer, last_prompt",
        "1 layer, all_prompt",
        "4 layers, last_prompt",
        "4 layers, all_prompt",
    ]
    assert rows[0]["overhead_pct"] == 0 and all(r["ms"] > 0 for r in rows)
    assert "| 4 layers, all_prompt |" in table(rows)
