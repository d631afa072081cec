from __future__ import annotations

import torch

from steering.extract import (
    complement_axis,
    east,
    mean_difference,
    opposite_sign_layers,
    pca_direction,
    success_failure,
)


def _unit(v):
    return v / v.norm()


def test_east_matches_the_formula_and_needs_its_centring():
    g = torch.Generator().manual_seed(0)
    H, K, T = 24, 6, 10
    u_true = _unit(torch.randn(H, generator=g))
    w_ctx = _unit(torch.randn(H, generator=g))
    # Episodes differ in their context (offset along w_ctx), and more uncertain episodes
    # have larger offsets: without the per-episode centring EAST would learn w_ctx.
    level = torch.arange(K, dtype=torch.float32)
    ent = 0.2 * level[:, None] + torch.rand(K, T, generator=g)
    z = (10 * level[:, None, None] * w_ctx) + 3 * ent[..., None] * u_true + 0.1 * torch.randn(K, T, H, generator=g)
    flat, w = z.reshape(K * T, H), ent.reshape(-1)
    episodes = [("run-a", k // T) for k in range(K * T)]
    u = east(flat, w, episodes)
    ref = torch.zeros(H)  # the formula, written out
    for k in range(K):
        ref += (ent[k][:, None] * (z[k] - z[k].mean(0))).sum(0)
    torch.testing.assert_close(u, ref / ent.sum(), atol=1e-5, rtol=1e-5)
    assert torch.cosine_similarity(u, u_true, dim=0) > 0.95
    uncentred = (w[:, None] * flat).sum(0) / w.sum()
    assert torch.cosine_similarity(uncentred, u_true, dim=0) < 0.3


def test_contrastive_directions_recover_a_planted_difference():
    g = torch.Generator().manual_seed(1)
    H, N = 32, 40
    d = _unit(torch.randn(H, generator=g)) * 4
    base = torch.randn(N, H, generator=g) * 5
    pos = base + d + 0.3 * torch.randn(N, H, generator=g)
    neg = base - d + 0.3 * torch.randn(N, H, generator=g)
    md = mean_difference(pos, neg)
    pc = pca_direction(pos, neg)
    assert torch.cosine_similarity(md, d, dim=0) > 0.98
    assert torch.cosine_similarity(pc, d, dim=0) > 0.98  # oriented toward the positives
    assert abs(float(pc.norm()) - 8.0) < 0.5  # scaled like the mean difference's projection


def test_success_failure_is_unit_and_points_to_high_payoffs():
    g = torch.Generator().manual_seed(2)
    H, N = 16, 200
    d = _unit(torch.randn(H, generator=g))
    payoff = torch.randn(N, generator=g)
    acts = torch.randn(N, H, generator=g) + payoff[:, None] * d
    v = success_failure(acts, payoff)
    assert abs(float(v.norm()) - 1) < 1e-5
    assert torch.cosine_similarity(v, d, dim=0) > 0.9


def test_complement_axis_is_orthogonal_unit():
    g = torch.Generator().manual_seed(3)
    acts, d = torch.randn(50, 16, generator=g), torch.randn(16, generator=g)
    b = complement_axis(acts, d)
    assert abs(float(b.norm()) - 1) < 1e-5 and abs(float(b @ _unit(d))) < 1e-5


def test_opposite_sign_layer_selection():
    g = torch.Generator().manual_seed(4)
    H, N = 16, 30
    d = _unit(torch.randn(H, generator=g))
    common = 10 * _unit(torch.randn(H, generator=g))
    # layer 1: classes straddle the origin along d; layer 2: both far on the same side
    pos = {1: d * 2 + 0.1 * torch.randn(N, H, generator=g), 2: common + d * 3 + 0.1 * torch.randn(N, H, generator=g)}
    neg = {1: -d * 2 + 0.1 * torch.randn(N, H, generator=g), 2: common - d * 0.5 + 0.1 * torch.randn(N, H, generator=g)}
    pos[2] = pos[2] + d * 8  # make sure layer 2's negatives also project positively
    neg[2] = neg[2] + d * 8
    scores = opposite_sign_layers(pos, neg)
    assert [s.layer for s in scores] == [1, 2]
    assert scores[0].opposite and not scores[1].opposite
