"""EAST with the context's drift within episodes removed (``center``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from steering import extract
from steering.sweep import summarize


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


def _drifting(seed: int = 0, K: int = 8, T: int = 12, H: int = 32, offsets: float = 0.0):
    """Activations = drift(step) + entropy x signal (+ per-episode offset + noise), with
    entropy falling over the episode, as in-context agents' entropy collapses: the
    drift then correlates with entropy inside every episode."""
    g = torch.Generator().manual_seed(seed)
    # three orthonormal directions, so a cosine with one says nothing about the others
    signal, drift, persona = torch.linalg.qr(torch.randn(H, 3, generator=g))[0].T
    t = torch.arange(T, dtype=torch.float32)
    ent = 0.9 - 0.05 * t[None, :] + 0.3 * torch.rand(K, T, generator=g)  # between-agent spread at each step
    z = (
        4.0 * t[None, :, None] * drift
        + 3.0 * ent[..., None] * signal
        + offsets * torch.randn(K, 1, 1, generator=g) * persona
        + 0.05 * torch.randn(K, T, H, generator=g)
    )
    episodes = [("run", k) for k in range(K) for _ in range(T)]
    steps = [("run", s, "pull") for _ in range(K) for s in range(T)]
    return z.reshape(K * T, H), ent.reshape(-1), episodes, steps, signal, drift, t.repeat(K)


def test_step_centring_recovers_the_signal_where_plain_east_learns_the_drift():
    z, ent, episodes, steps, signal, drift, t = _drifting()
    plain = extract.east(z, ent, episodes)
    by_step = extract.east(z, ent, episodes, steps=steps, center="step")
    assert extract.cosine(plain, drift) < -0.9  # entropy falls as the context moves: EAST points back in time
    assert abs(extract.cosine(plain, signal)) < 0.3
    assert extract.cosine(by_step, signal) > 0.95
    assert abs(extract.cosine(by_step, drift)) < 0.1
    # the diagnostic the fit records: the drift direction itself is last step minus first
    d = extract.drift_direction(z, t.numpy())
    assert extract.cosine(d, drift) > 0.99
    assert abs(extract.cosine(by_step, d)) < 0.1 < abs(extract.cosine(plain, d))


def test_step_centring_is_the_entropy_weighted_mean_of_step_residuals():
    z, ent, episodes, steps, *_ = _drifting(seed=1, K=3, T=4, H=6)
    u = extract.east(z, ent, episodes, steps=steps, center="step")
    ref = torch.zeros(6)
    labels = np.array([s[1] for s in steps])
    for s in np.unique(labels):
        rows = torch.as_tensor(labels == s)
        ref += (ent[rows][:, None] * (z[rows] - z[rows].mean(0))).sum(0)
    torch.testing.assert_close(u, ref / ent.sum(), atol=1e-5, rtol=1e-5)


def test_two_way_centring_removes_episode_offsets_and_drift():
    # Agents also differ by a fixed offset (a persona) that correlates with nothing
    # in particular; with few agents it leaks into the step-centred vector, and the
    # two-way centring removes both it and the drift.
    z, ent, episodes, steps, signal, drift, _ = _drifting(seed=2, K=4, offsets=20.0)
    both = extract.east(z, ent, episodes, steps=steps, center="episode+step")
    assert extract.cosine(both, signal) > 0.9
    assert abs(extract.cosine(both, drift)) < 0.1
    centred = extract.centre(z, [episodes, steps])
    for labels in (episodes, steps):  # every episode's and every step's mean is zero
        codes = torch.as_tensor(extract._codes(labels))
        means = torch.zeros(int(codes.max()) + 1, z.shape[1]).index_add_(0, codes, centred)
        assert float(means.abs().max()) < 1e-3


def test_east_center_errors():
    z, ent, episodes, steps, *_ = _drifting(K=2, T=3, H=4)
    with pytest.raises(ValueError, match="center 'month'; allowed: episode, step, episode\\+step"):
        extract.east(z, ent, episodes, steps=steps, center="month")
    with pytest.raises(ValueError, match="needs one step label per activation"):
        extract.east(z, ent, episodes, center="step")
    with pytest.raises(ValueError, match="same step"):
        extract.drift_direction(z, np.zeros(len(z)))


def test_summary_pairs_every_setting_with_coefficient_zero_by_seed():
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(6):
        level = rng.normal(0.5, 0.1)  # each seed's own level: pairing removes it
        rows.append({"seed": seed, "vector": "vector", "layers": "6", "coefficient": 0.0, "e": level})
        rows.append({"seed": seed, "vector": "shuffled", "layers": "6", "coefficient": 0.0, "e": level})
        rows.append({"seed": seed, "vector": "vector", "layers": "6", "coefficient": 2.0, "e": level + 0.1})
        noisy = level + rng.normal(0, 0.01)
        rows.append({"seed": seed, "vector": "shuffled", "layers": "6", "coefficient": 2.0, "e": noisy})
    table = pd.DataFrame(rows)
    s = summarize(table, "e").set_index(["vector", "coefficient"])
    assert np.isclose(s.loc[("vector", 2.0), "minus_zero_mean"], 0.1)
    assert s.loc[("vector", 2.0), "minus_zero_sd"] < 1e-9  # the seed levels cancel
    assert s.loc[("vector", 0.0), "minus_zero_mean"] == 0
    shuffled = s.loc[("shuffled", 2.0)]
    assert shuffled["minus_zero_lo"] < shuffled["minus_zero_mean"] < shuffled["minus_zero_hi"]
    width = shuffled["minus_zero_hi"] - shuffled["minus_zero_mean"]
    expect = 2.570582 * shuffled["minus_zero_sd"] / np.sqrt(6)  # t(0.975, 5 df)
    assert np.isclose(width, expect, rtol=1e-5)
    row = s.loc[("vector", 2.0)]
    assert row["minus_shuffled_lo"] < row["minus_shuffled_mean"] < row["minus_shuffled_hi"]
    assert 0.08 < row["minus_shuffled_mean"] < 0.12
