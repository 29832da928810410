"""method.md §5(e) gated priority and §5(f) selection oracles + property tests on random fixtures."""

from __future__ import annotations

import math

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from codeblock.selection.budget import (
    Candidate,
    code_budget,
    example_cap,
    gated_priority,
    percentile_ranks,
    select_items,
    total_budget,
)

PI = [0.25, 0.0, 0.5, 0.75, 1.0]
R = [1.0, 0.5, 0.5, 0.25, 0.0]
B = [0.0, 1 / 3, 1 / 3, 1.0, 0.0]
COSTS = [8, 6, 6, 7, 3]


def _e1_candidates(lam: float) -> list[Candidate]:
    out, start = [], 0
    for i, cost in enumerate(COSTS):
        p = gated_priority(PI[i], R[i], B[i], lam, lam, 0.5)
        out.append(Candidate(0, i, start, tuple(range(start, start + cost)), p))
        start += cost
    return out


def test_percentiles_and_gated_priority_oracle():
    assert percentile_ranks([0.10, 0.05, 0.20, 0.25, 0.30]) == PI
    assert percentile_ranks([0.3]) == [1.0]
    assert percentile_ranks([0.2, 0.2, 0.4]) == [0.25, 0.25, 1.0]
    pri = [gated_priority(p, r, b, 0.25, 0.25, 0.5) for p, r, b in zip(PI, R, B)]
    assert [round(p, 6) for p in pri] == [0.25, 0.0, 0.708333, 1.0625, 1.0]
    order = sorted(range(5), key=lambda i: (-round(pri[i], 9), i))
    assert order == [3, 4, 2, 0, 1]
    flat = [gated_priority(p, r, b, 0.0, 0.0, 0.5) for p, r, b in zip(PI, R, B)]
    assert sorted(range(5), key=lambda i: (-flat[i], i)) == [4, 3, 2, 0, 1]


def test_selection_oracle_rerank_vs_no_rerank():
    n = {0: 10_000}
    sel = select_items(_e1_candidates(0.25), n, 9, max_example_fraction=1.0)
    assert set(sel.selected[0]) == {3} and sel.used == 7
    sel = select_items(_e1_candidates(0.0), n, 9, max_example_fraction=1.0)
    assert set(sel.selected[0]) == {4, 2} and sel.used == 9
    for lam in (0.25, 0.0):
        sel = select_items(_e1_candidates(lam), n, 10, max_example_fraction=1.0)
        assert set(sel.selected[0]) == {3, 4}


def test_budget_arithmetic_is_float_safe():
    assert total_budget(0.29, 100) == 29  # naive floor(0.29*100) is 28
    assert total_budget(0.019, 1000) == 19
    assert code_budget(10, 0.3) == 7
    assert example_cap(0.1, 95, 3) == 10
    assert example_cap(0.1, 5, 7) == 7  # the seed is exempt from the cap


def test_shared_boundary_tokens_are_counted_once():
    a = Candidate(0, 0, 0, (0, 1, 2), 1.0)
    b = Candidate(0, 1, 3, (2, 3), 0.9)  # shares token 2 with a
    sel = select_items([a, b], {0: 100}, 4, max_example_fraction=1.0)
    assert sel.selected[0] == [0, 1] and sel.used == 4 and sel.tokens[0] == {0, 1, 2, 3}


def test_block_items_exclude_their_sub_items():
    block = Candidate(0, 9, 0, (0, 1, 2, 3), 2.0, conflicts=(0, 1))
    subs = [Candidate(0, 0, 0, (0, 1), 1.0, conflicts=(9,)), Candidate(0, 1, 2, (2, 3), 0.5, conflicts=(9,))]
    sel = select_items([block] + subs, {0: 100}, 100, max_example_fraction=1.0)
    assert sel.selected[0] == [9]


def test_per_example_scope_quota_and_seed_overshoot():
    cands = [Candidate(0, 0, 0, tuple(range(5)), 1.0), Candidate(0, 1, 5, (5, 6), 0.5), Candidate(1, 0, 0, (0, 1), 0.7)]
    sel = select_items(cands, {0: 20, 1: 20}, 0, scope="per_example", quota_ratio=0.1)
    # quota = floor(0.1 * 20) = 2 per example: example 0's seed (5 tokens) is taken anyway and overshoots by 3
    assert sel.selected == {0: [0], 1: [0]} and sel.seed_overshoot == 3


@st.composite
def fixtures(draw):
    n_ex = draw(st.integers(1, 6))
    cands, n_resp = [], {}
    for e in range(n_ex):
        n = draw(st.integers(5, 80))
        n_resp[e] = n
        for i in range(draw(st.integers(0, 6))):
            a = draw(st.integers(0, n - 1))
            b = draw(st.integers(a + 1, min(n, a + 12)))
            p = draw(st.floats(0, 1.5, allow_nan=False))
            cands.append(Candidate(e, i, a, tuple(range(a, b)), p))
    budget = draw(st.integers(0, 60))
    frac = draw(st.sampled_from([0.05, 0.1, 0.3, 1.0]))
    return cands, n_resp, budget, frac


@settings(max_examples=150, deadline=None)
@given(fixtures())
def test_selection_invariants(fx):
    cands, n_resp, budget, frac = fx
    sel = select_items(cands, n_resp, budget, max_example_fraction=frac)
    again = select_items(list(reversed(cands)), n_resp, budget, max_example_fraction=frac)
    assert sel.selected == again.selected and sel.used == again.used  # order of input does not matter
    assert sel.used == sum(len(t) for t in sel.tokens.values()) <= budget
    by_id = {(c.example, c.item_id): c for c in cands}
    for e, ids in sel.selected.items():
        toks = set().union(*(by_id[(e, i)].tokens for i in ids))
        assert toks == sel.tokens[e]
        seed = sel.seeds[e]
        if len(ids) > 1 or ids[0] != seed:
            assert len(toks) <= max(sel.caps[e], len(by_id[(e, seed)].tokens)) or ids[0] == seed
    # maximality: nothing unselected still fits the budget and its cap
    for c in cands:
        if c.item_id in sel.selected.get(c.example, []):
            continue
        have = sel.tokens.get(c.example, set())
        cost = len(set(c.tokens) - have)
        assert not (cost <= budget - sel.used and len(have) + cost <= sel.caps[c.example])
    # coverage: with room for every seed, every example with a candidate gets an item
    seeds = {}
    for c in sorted(cands, key=lambda c: c.key):
        seeds.setdefault(c.example, c)
    if budget >= sum(len(c.tokens) for c in seeds.values()):
        assert set(sel.selected) == set(seeds)
    assert math.isfinite(sel.used)


def test_budget_is_the_floor_and_lambdas_weigh_their_own_signal():
    # the GPTeacher run in the README: rho = 1.9% of 35,285 response tokens = 670.4 -> 670 (a ceil would give 671)
    assert total_budget(0.019, 35285) == 670
    # reach and bridge keep their own weights (a swap of lambda_r and lambda_b changes the priority)
    assert gated_priority(0.9, 1.0, 0.0, 0.5, 0.1, 0.5) == pytest.approx(1.4)
    assert gated_priority(0.9, 0.0, 1.0, 0.5, 0.1, 0.5) == pytest.approx(1.0)
