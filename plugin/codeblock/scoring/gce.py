"""Generalized cross-entropy token scores, item utility and percentile normalisation (method.md §2(d)). numpy only.

Token score (``utility_mode``):
    gce         g = (1 - p^q) / q          (q = ``gce_q``, default 0.7; q = 0 is CE, -log p)
    ce          g = -log p
    excess_gce  g = l_q(p_M) - l_q(p_R)    (R = reference model)
    excess_ce   the same with q = 0

computed from log-probabilities: (1 - exp(q·logp)) / q = -expm1(q·logp) / q, which stays exact as q -> 0 and for p
near 1.

    >>> round(float(gce_from_logp(np.log(0.5), 0.7)), 7)
    0.5491826
    >>> percentile_ranks([0.10, 0.05, 0.20, 0.25, 0.30]).tolist()
    [0.25, 0.0, 0.5, 0.75, 1.0]
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

UTILITY_MODES = ("gce", "ce", "excess_gce", "excess_ce")
UTILITY_AGGS = ("mean", "sum", "max", "topk_mean")
SCORE_DECIMALS = 9  # §2.0: scores are rounded to 9 decimals before any comparison


def gce_from_logp(logp, q: float):
    """GCE loss ``(1 - p^q)/q`` from ``log p`` (CE at q = 0). Bounded by 1/q, strictly decreasing in p.

    Works on scalars and arrays (float64 out); nan in, nan out.
    """
    if q < 0:
        raise ValueError(f"gce_q must be >= 0, got {q}")
    lp = np.asarray(logp, dtype=np.float64)
    if q == 0:
        return 0.0 - lp  # 0.0 - x, not -x: p = 1 must give +0.0, never -0.0
    return 0.0 - np.expm1(q * lp) / q


def token_scores(logp, mode: str = "gce", q: float = 0.7, logp_ref=None) -> np.ndarray:
    """Per-token scores g_t for one row (or any array) of log-probs under ``mode``."""
    if mode not in UTILITY_MODES:
        raise ValueError(f"unknown utility_mode {mode!r}; choose one of {', '.join(UTILITY_MODES)}")
    qq = 0.0 if mode in ("ce", "excess_ce") else q
    g = gce_from_logp(logp, qq)
    if mode.startswith("excess_"):
        if logp_ref is None:
            raise ValueError(f"utility_mode {mode!r} needs the reference model's log-probs (logp_ref)")
        ref = np.asarray(logp_ref, dtype=np.float64)
        if ref.shape != g.shape:
            raise ValueError(f"logp_ref shape {ref.shape} != logp shape {g.shape}")
        g = g - gce_from_logp(ref, qq)
    return g


def aggregate(values, agg: str = "mean", k: int = 3) -> float:
    """Item utility from the scores of its core tokens; nan when there are none (the item is not selectable).

    ``topk_mean``: mean of the k largest (all of them when fewer than k).
    """
    if agg not in UTILITY_AGGS:
        raise ValueError(f"unknown utility_agg {agg!r}; choose one of {', '.join(UTILITY_AGGS)}")
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return math.nan
    if agg == "mean":
        return float(v.mean())
    if agg == "sum":
        return float(v.sum())
    if agg == "max":
        return float(v.max())
    top = np.sort(v)[::-1][:k]
    return float(top.mean())


def item_utility(
    logp,
    core_positions: Sequence[int],
    *,
    mode: str = "gce",
    q: float = 0.7,
    agg: str = "mean",
    logp_ref=None,
    k: int = 3,
) -> float:
    """u_i over the core tokens of one item: ``aggregate(token_scores(logp[core]))``.

    ``logp`` is the row's log-prob array (token positions index it); only ``core_positions`` matter, so changing
    p of any other token leaves u_i unchanged. A core position with nan log-prob (position 0) is an error.
    """
    pos = np.asarray(list(core_positions), dtype=np.int64)
    if pos.size == 0:
        return math.nan
    lp = np.asarray(logp, dtype=np.float64)[pos]
    ref = None if logp_ref is None else np.asarray(logp_ref, dtype=np.float64)[pos]
    g = token_scores(lp, mode, q, ref)
    if not np.all(np.isfinite(g)):
        raise ValueError(f"non-finite token score at core positions {pos[~np.isfinite(g)].tolist()}")
    return aggregate(g, agg, k)


def average_ranks(values) -> np.ndarray:
    """1-based ranks, ties get the average of their ranks (like scipy's ``rankdata(method='average')``)."""
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    order = np.argsort(v, kind="stable")
    sorted_v = v[order]
    ranks = np.empty(n, dtype=np.float64)
    i = 0
    while i < n:
        j = i
        while j + 1 < n and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def percentile_ranks(utilities) -> np.ndarray:
    """π = (rank − 1)/(N − 1) with average ranks over the finite utilities (rounded to 9 decimals first).

    N = 1 gives π = 1; nan utilities (not selectable) get nan and do not count in N.
    """
    u = np.asarray(utilities, dtype=np.float64)
    out = np.full(u.shape, np.nan)
    finite = np.isfinite(u)
    n = int(finite.sum())
    if n == 0:
        return out
    if n == 1:
        out[finite] = 1.0
        return out
    ranks = average_ranks(np.round(u[finite], SCORE_DECIMALS))
    out[finite] = (ranks - 1.0) / (n - 1)
    return out
