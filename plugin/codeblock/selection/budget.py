"""Gated priority and item selection under a global token budget (method.md §2(e) last part, §2(f)). Pure.

    P_i = pi_i + gamma_i * (lambda_r * R_i + lambda_b * B_i),   gamma_i = 1 if pi_i >= tau else 0
    B = floor(rho * T_den),  B_code = floor((1 - eta) * B),  cap_e = max(ceil(f * N_e), cost(seed_e))

Passes: coverage (each example's best item, in key order, cap exempt) -> fill (all others, first-fit, capped) ->
NL (see `nl_tokens`). The incremental cost of an item is the number of its tokens not already selected in its example,
so boundary tokens shared by two items are counted once. Ordering key: (-round(P, 9), e, a_x, item id).

    >>> pri = [gated_priority(p, r, b, 0.25, 0.25, 0.5) for p, r, b in
    ...        zip([0.25, 0, 0.5, 0.75, 1.0], [1, .5, .5, .25, 0], [0, 1/3, 1/3, 1, 0])]
    >>> [round(p, 6) for p in pri]
    [0.25, 0.0, 0.708333, 1.0625, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence


def _floor(x: float) -> int:
    return int(math.floor(round(x, 9)))  # round first: 0.29 * 100 must be 29, not 28


def _ceil(x: float) -> int:
    return int(math.ceil(round(x, 9)))


def total_budget(ratio: float, t_den: int) -> int:
    """B = floor(rho * T_den)."""
    return _floor(ratio * t_den)


def code_budget(budget: int, nl_share: float) -> int:
    """B_code = floor((1 - eta) * B)."""
    return _floor((1.0 - nl_share) * budget)


def example_cap(max_example_fraction: float, n_response: int, seed_cost: int = 0) -> int:
    return max(_ceil(max_example_fraction * n_response), seed_cost)


def percentile_ranks(values: Sequence[float]) -> list[float]:
    """Average-rank percentiles (rank-1)/(n-1) with rank 1 the smallest; a single value gets 1.0.

    >>> percentile_ranks([0.10, 0.05, 0.20, 0.25, 0.30])
    [0.25, 0.0, 0.5, 0.75, 1.0]
    """
    n = len(values)
    if n == 0:
        return []
    if n == 1:
        return [1.0]
    keyed = sorted(range(n), key=lambda i: (round(values[i], 9), i))
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and round(values[keyed[j + 1]], 9) == round(values[keyed[i]], 9):
            j += 1
        avg = (i + j) / 2.0 + 1.0  # average 1-based rank of the tie group
        for k in range(i, j + 1):
            ranks[keyed[k]] = avg
        i = j + 1
    return [(r - 1.0) / (n - 1.0) for r in ranks]


def gated_priority(pi: float, reach: float, bridge: float, lambda_r: float, lambda_b: float, tau: float) -> float:
    gate = 1.0 if pi >= tau else 0.0
    return pi + gate * (lambda_r * reach + lambda_b * bridge)


@dataclass
class Candidate:
    """A selectable item: ``tokens`` are its token indices tok(x) inside example ``example``."""

    example: int
    item_id: int
    start: int  # a_x: the item's first response character (tie-break)
    tokens: tuple[int, ...]
    priority: float
    conflicts: tuple[int, ...] = ()  # item ids of the same example that exclude this one (granularity=block)

    @property
    def key(self) -> tuple:
        return (-round(self.priority, 9), self.example, self.start, self.item_id)


@dataclass
class CodeSelection:
    selected: dict[int, list[int]] = field(default_factory=dict)  # example -> item ids, in selection order
    tokens: dict[int, set[int]] = field(default_factory=dict)  # example -> selected token indices
    caps: dict[int, int] = field(default_factory=dict)  # example -> cap_e (or quota Q_e for per_example)
    seeds: dict[int, int] = field(default_factory=dict)  # example -> seed item id
    used: int = 0  # code tokens selected (shared tokens counted once)
    budget_code: int = 0
    seed_overshoot: int = 0  # per_example scope: tokens above the quotas because seeds are always taken

    def count(self, example: int) -> int:
        return len(self.tokens.get(example, ()))


def select_items(
    candidates: Iterable[Candidate],
    n_response: dict[int, int],
    budget_code: int,
    *,
    max_example_fraction: float = 0.10,
    scope: str = "global",
    quota_ratio: float | None = None,
    nl_share: float = 0.0,
) -> CodeSelection:
    """Coverage + fill passes over ``candidates`` (global scope) or per-example quotas (``per_example``).

    ``n_response`` maps every kept example to N_e. ``quota_ratio`` is rho' = B / T_kept for ``per_example``.
    """
    cands = sorted(candidates, key=lambda c: c.key)
    by_example: dict[int, list[Candidate]] = {}
    for c in cands:
        by_example.setdefault(c.example, []).append(c)
    sel = CodeSelection(budget_code=budget_code)
    chosen: dict[int, set[int]] = {}  # example -> item ids (for conflicts)

    def take(c: Candidate, cost: int) -> None:
        sel.selected.setdefault(c.example, []).append(c.item_id)
        sel.tokens.setdefault(c.example, set()).update(c.tokens)
        chosen.setdefault(c.example, set()).add(c.item_id)
        sel.used += cost

    def cost_of(c: Candidate) -> int:
        have = sel.tokens.get(c.example)
        return len(c.tokens) if not have else sum(1 for t in c.tokens if t not in have)

    def blocked(c: Candidate) -> bool:
        mine = chosen.get(c.example, ())
        return c.item_id in mine or any(x in mine for x in c.conflicts)

    seeds = {e: group[0] for e, group in by_example.items()}
    sel.seeds = {e: c.item_id for e, c in seeds.items()}

    if scope == "per_example":
        if quota_ratio is None:
            raise ValueError("per_example selection needs quota_ratio = B / T_kept")
        for e, group in sorted(by_example.items()):
            quota = _floor(quota_ratio * n_response.get(e, 0))
            code_quota = _floor((1.0 - nl_share) * quota)
            seed = group[0]
            take(seed, len(seed.tokens))
            sel.caps[e] = max(quota, len(seed.tokens))
            sel.seed_overshoot += max(0, len(seed.tokens) - code_quota)
            for c in group[1:]:
                if blocked(c):
                    continue
                cost = cost_of(c)
                if sel.count(e) + cost <= code_quota:
                    take(c, cost)
        return sel

    for e in n_response:
        sel.caps[e] = example_cap(max_example_fraction, n_response[e], len(seeds[e].tokens) if e in seeds else 0)
    # 1. coverage pass: seeds in key order, no cap.
    for c in sorted(seeds.values(), key=lambda c: c.key):
        cost = len(c.tokens)
        if cost <= budget_code - sel.used:
            take(c, cost)
    # 2. fill pass: first-fit in key order under the remaining budget and the per-example cap.
    for c in cands:
        if blocked(c):
            continue
        cost = cost_of(c)
        if cost <= budget_code - sel.used and sel.count(c.example) + cost <= sel.caps[c.example]:
            take(c, cost)
    return sel
