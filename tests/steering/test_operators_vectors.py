from __future__ import annotations

import json

import pytest
import torch

from steering.operators import ablate, add, add_norm, cosine_gate, plane_axis, rotate
from steering.vectors import SteeringVector, VectorMismatch, load_vector


def _data(n=5, h=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, h, generator=g), torch.randn(n, h, generator=g), torch.randn(n, h, generator=g)


def test_add_and_norm_preserving_add():
    h, v, _ = _data()
    c = torch.full((5, 1), 2.0)
    torch.testing.assert_close(add(h, v, c), h + 2 * v)
    out = add_norm(h, v, c)
    torch.testing.assert_close(out.norm(dim=-1), h.norm(dim=-1))
    cos_before = torch.cosine_similarity(h, v, dim=-1)
    assert (torch.cosine_similarity(out, v, dim=-1) > cos_before).all()


def test_rotation_is_norm_preserving_and_turns_plane_axis_toward_direction():
    h, v, cand = _data()
    b = torch.stack([plane_axis(v[i], cand[i]) for i in range(5)])
    u = v / v.norm(dim=-1, keepdim=True)
    out = rotate(h, v, torch.full((5, 1), 37.0), b)
    torch.testing.assert_close(out.norm(dim=-1), h.norm(dim=-1))
    # the part of h outside the plane is untouched
    P = lambda x: (x * b).sum(-1, keepdim=True) * b + (x * u).sum(-1, keepdim=True) * u  # noqa: E731
    torch.testing.assert_close(out - P(out), h - P(h), atol=1e-5, rtol=1e-5)
    quarter = rotate(b, v, torch.full((5, 1), 90.0), b)  # b itself turns into u
    torch.testing.assert_close(quarter, u, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(rotate(h, v, torch.zeros(5, 1), b), h, atol=1e-6, rtol=1e-5)


def test_ablation_removes_the_direction():
    h, v, _ = _data()
    out = ablate(h, v, torch.ones(5, 1))
    u = v / v.norm(dim=-1, keepdim=True)
    assert (out * u).sum(-1).abs().max() < 1e-5
    half = ablate(h, v, torch.full((5, 1), 0.5))
    torch.testing.assert_close((half * u).sum(-1), 0.5 * (h * u).sum(-1))


def test_cosine_gate():
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert cosine_gate(h, v, 0.1).flatten().tolist() == [False, True]


def _vector(**kw):
    base = dict(
        directions={3: torch.arange(8.0), 5: -torch.ones(8)},
        planes={3: torch.eye(8)[0]},
        model_id="m",
        hidden_size=8,
        num_layers=6,
        method="east",
        source_runs=["runs/a"],
        params={"k": 1},
    )
    return SteeringVector(**{**base, **kw})


def test_save_load_roundtrip(tmp_path):
    vec = _vector()
    path = vec.save(tmp_path / "v.safetensors")
    assert path.exists() and (tmp_path / "v.json").exists()
    meta = json.loads((tmp_path / "v.json").read_text())
    assert meta["layers"] == [3, 5] and meta["method"] == "east" and meta["source_runs"] == ["runs/a"]
    back = SteeringVector.load(tmp_path / "v")
    assert back.layers == [3, 5] and back.params == {"k": 1} and back.model_id == "m"
    assert torch.equal(back.directions[3], vec.directions[3]) and torch.equal(back.planes[3], vec.planes[3])


def test_load_checks_the_model(tmp_path):
    _vector().save(tmp_path / "v")
    load_vector(tmp_path / "v.safetensors", hidden_size=8, num_layers=6)
    with pytest.raises(VectorMismatch) as err:
        load_vector(tmp_path / "v", hidden_size=576, num_layers=4, model_id="smollm2-135m")
    msg = str(err.value)
    assert "hidden size 8 != model's 576" in msg and "layer count 6 != model's 4" in msg
    assert "layer(s) [5] outside the model's 0..3" in msg and "fitted on 'm'" in msg
    with pytest.raises(FileNotFoundError, match="safetensors"):
        SteeringVector.load(tmp_path / "missing")


def test_shuffled_control_keeps_norms_and_loses_direction():
    vec = _vector(directions={3: torch.randn(64), 5: torch.randn(64)}, planes={}, hidden_size=64)
    sh = vec.shuffled(seed=1)
    assert sh.norms() == pytest.approx(vec.norms())
    assert abs(torch.cosine_similarity(sh.directions[3], vec.directions[3], dim=0)) < 0.5
    assert sh.method == "shuffled(east)"
    assert vec.select([5]).layers == [5]
    with pytest.raises(VectorMismatch, match="no direction for layer"):
        vec.select([4])
