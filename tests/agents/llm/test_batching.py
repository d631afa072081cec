"""Splitting a batch into forwards: within the budgets, at the least padded cost."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from agents.llm.batching import chunks


def _cost(parts, costs, forward_cost):
    return sum(forward_cost * (1 + max(costs[i][2] for i in p)) + len(p) * max(costs[i][0] for i in p) for p in parts)


def _fits(part, costs, token_budget, logit_budget):
    rows = len(part)
    return rows == 1 or (
        rows * max(costs[i][0] for i in part) <= token_budget and rows * max(costs[i][1] for i in part) <= logit_budget
    )


def _all_splits(n):
    for cuts in itertools.product([False, True], repeat=n - 1):
        parts, start = [], 0
        for k, cut in enumerate(cuts, start=1):
            if cut:
                parts.append(list(range(start, k)))
                start = k
        yield [*parts, list(range(start, n))]


@pytest.mark.parametrize("seed", range(30))
def test_the_split_is_the_cheapest_that_fits(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    costs = [(int(rng.integers(1, 300)), int(rng.integers(0, 50)), int(rng.choice([0, 0, 8, 24]))) for _ in range(n)]
    token_budget, logit_budget, forward_cost = int(rng.integers(200, 1200)), 120, int(rng.integers(0, 400))
    parts = chunks(costs, token_budget, logit_budget, forward_cost=forward_cost)
    assert [i for p in parts for i in p] == list(range(n))  # every item once, in order
    assert all(_fits(p, costs, token_budget, logit_budget) for p in parts)
    best = min(
        _cost(s, costs, forward_cost)
        for s in _all_splits(n)
        if all(_fits(p, costs, token_budget, logit_budget) for p in s)
    )
    assert _cost(parts, costs, forward_cost) == best


def test_rows_whose_padding_costs_more_than_a_forward_get_their_own():
    costs = [(10, 0, 0)] * 3 + [(300, 0, 0)]
    assert chunks(costs, 4096, 1 << 20, forward_cost=32) == [[0, 1, 2], [3]]
    # a forward dearer than the padding (a GPU): one forward
    assert chunks(costs, 4096, 1 << 20, forward_cost=4096) == [[0, 1, 2, 3]]


def test_rows_that_reply_stay_together_when_their_decode_steps_cost_more_than_padding():
    # Each chunk decodes for its longest reply: a split pays every decode step twice.
    costs = [(100, 0, 24)] * 2 + [(200, 0, 24)] * 2
    assert chunks(costs, 4096, 1 << 20, forward_cost=32) == [[0, 1, 2, 3]]
    assert chunks([(c, lg, 0) for c, lg, _ in costs], 4096, 1 << 20, forward_cost=32) == [[0, 1], [2, 3]]


def test_a_single_item_over_the_budget_still_runs_alone():
    assert chunks([(5000, 0, 0), (10, 0, 0)], 1024, 1 << 20, forward_cost=32) == [[0], [1]]
    assert chunks([], 1024, 1 << 20, forward_cost=32) == []
