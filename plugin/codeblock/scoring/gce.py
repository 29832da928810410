"""Generalized cross-entropy token scores and item utility (method.md §2(d)): the one implementation, numpy only.

Token score (``utility_mode``):
    gce         g = (1 - p^q) / q          (q = ``gce_q``, default 0.7; q = 0 is CE, -log p)
    ce          g = -log p
    excess_gce  g = l_q(p_M) - l_q(p_R)    (R = reference model)
    excess_ce   the same with q = 0

computed from log-probabilities: (1 - exp(q·logp)) / q = -expm1(q·logp) / q, which stays exact as q -> 0 and for p
near 1.

    >>> round(float(gce_from_logp(np.log(0.5), 0.7)), 7)
    0.5491826

The percentile normalisation of utilities lives with the budget (:func:`codeblock.selection.budget.percentile_ranks`).
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
    """Item utility u_i from the scores of its core tokens (what ``codeblock prepare`` runs); nan when there are none
    (the item is not selectable). ``topk_mean``: mean of the k largest (all of them when fewer than k).

    Sums run left to right in float64, so u_i does not depend on numpy's blocked summation.

    >>> aggregate([0.25, 0.5, 1.0]), aggregate([0.25, 0.5, 1.0], "topk_mean", k=2), aggregate([], "max")
    (0.5833333333333334, 0.75, nan)
    """
    if agg not in UTILITY_AGGS:
        raise ValueError(f"unknown utility_agg {agg!r}; choose one of {', '.join(UTILITY_AGGS)}")
    v = [float(x) for x in np.asarray(values, dtype=np.float64).ravel()]
    if not v:
        return math.nan
    if agg == "mean":
        return sum(v) / len(v)
    if agg == "sum":
        return sum(v)
    if agg == "max":
        return max(v)
    top = sorted(v, reverse=True)[:k]
    return sum(top) / len(top)
