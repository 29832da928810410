"""Baseline supervision policies (method.md §3, B1-B6): which response tokens get a label. Pure (numpy + stdlib).

One config key, ``supervision``, picks the policy; every policy shares CodeBlock's data, rendering, tokenization,
pair selection, budget B = floor(rho * T_den), EOS policy and stats, so only the supervised token set differs.

* ``codeblock``: items + NL tokens (method.md §2), selected in :mod:`codeblock.prepare.pipeline`.
* ``random_items`` (B6): the same item passes, but each selectable item's priority is a seeded random rank
  (:func:`random_priorities`).
* token-level policies, resolved here over the *pool* = every response token of every kept pair, in the fixed order
  (example position, token index):

  - ``full`` (B1/B2/B7-B9): the whole pool; the budget is ignored;
  - ``random_tokens`` (B3): a seeded uniform sample of exactly min(B, |pool|) tokens (no per-example cap);
  - ``gce_tokens`` (B5): the top B tokens by the token score g_t;
  - ``excess_tokens`` (B4, Token Cleaning / Rho-1): the top B tokens by loss_base - loss_ref = logp_ref - logp_base.

  Scores are rounded to 9 decimals, NaN scores are never taken, ties go to the earlier (example, token).

    >>> pools = [[3, 4, 5], [2, 3]]
    >>> select_tokens("full", pools, budget=1, seed=0)
    {0: [3, 4, 5], 1: [2, 3]}
    >>> scores = [np.array([0, 0, 0, 0.5, np.nan, 0.9]), np.array([0, 0, 0.9, 0.1])]
    >>> select_tokens("gce_tokens", pools, budget=2, seed=0, scores=scores)
    {0: [5], 1: [2]}
    >>> sum(map(len, select_tokens("random_tokens", pools, budget=4, seed=7).values()))
    4
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Sequence

import numpy as np

SUPERVISIONS = ("codeblock", "full", "random_tokens", "gce_tokens", "excess_tokens", "random_items")
TOKEN_LEVEL = ("full", "random_tokens", "gce_tokens", "excess_tokens")
DESCRIPTIONS = {
    "codeblock": "CodeBlock items + informative NL tokens under the budget (method.md §2)",
    "full": "every response token of the kept pairs (B1 with pair_selector=none, B2/B7/B8/B9 with a pair selector)",
    "random_tokens": "B3: seeded uniform sample of exactly B response tokens over the kept pairs",
    "gce_tokens": "B5: global top-B response tokens by the token score g_t (utility_mode), no structure",
    "excess_tokens": "B4: global top-B response tokens by loss_base - loss_ref (plain CE; needs reference_model)",
    "random_items": "B6: CodeBlock's item passes and NL policy with a seeded random item priority",
}


def is_token_level(supervision: str) -> bool:
    """Token-level policies skip items, the code/NL budget split and the NL pass."""
    return supervision in TOKEN_LEVEL


def needs_scores(supervision: str) -> bool:
    """Does the policy need the scoring forward pass? (``full`` and ``random_tokens`` do not.)

    >>> [s for s in SUPERVISIONS if not needs_scores(s)]
    ['full', 'random_tokens']
    """
    return supervision not in ("full", "random_tokens")


def needs_reference(supervision: str, utility_mode: str) -> bool:
    """A reference model is scored for ``excess_tokens`` and for any scored policy with an ``excess_*`` utility.

    >>> needs_reference("excess_tokens", "gce"), needs_reference("full", "excess_gce"), needs_reference("codeblock", "excess_ce")
    (True, False, True)
    """
    return supervision == "excess_tokens" or (needs_scores(supervision) and utility_mode.startswith("excess"))


def excess_ce(logp_base: np.ndarray, logp_ref: np.ndarray) -> np.ndarray:
    """loss_base - loss_ref with plain CE (independent of gce_q): logp_ref - logp_base, float64, NaN stays NaN.

    >>> excess_ce(np.array([np.nan, -2.0, -0.5], np.float32), np.array([np.nan, -0.5, -1.0], np.float32)).tolist()
    [nan, 1.5, -0.5]
    """
    return np.asarray(logp_ref, dtype=np.float64) - np.asarray(logp_base, dtype=np.float64)


def random_priorities(n: int, seed: int) -> list[float]:
    """A seeded random permutation of 0..n-1 as item priorities (B6): distinct, so the item order is total.

    >>> sorted(random_priorities(4, 0)) == [0.0, 1.0, 2.0, 3.0], random_priorities(4, 0) == random_priorities(4, 0)
    (True, True)
    """
    return [float(p) for p in np.random.default_rng(seed).permutation(n)]


def _flat(pools: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    ks = np.repeat(np.arange(len(pools), dtype=np.int64), [len(p) for p in pools])
    ts = np.fromiter((int(t) for p in pools for t in p), dtype=np.int64, count=int(ks.size))
    return ks, ts


def _group(ks: np.ndarray, ts: np.ndarray) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for k, t in zip(ks.tolist(), ts.tolist()):
        out.setdefault(k, []).append(t)
    return {k: sorted(v) for k, v in sorted(out.items())}


def full_tokens(pools: Sequence[Sequence[int]]) -> dict[int, list[int]]:
    return {k: sorted(int(t) for t in p) for k, p in enumerate(pools) if len(p)}


def random_tokens(pools: Sequence[Sequence[int]], budget: int, seed: int) -> dict[int, list[int]]:
    """Exactly min(budget, |pool|) distinct pool tokens, uniform without replacement, ``default_rng(seed)``."""
    ks, ts = _flat(pools)
    n = int(ks.size)
    take = max(0, min(int(budget), n))
    picks = np.sort(np.random.default_rng(seed).choice(n, size=take, replace=False)) if take else np.empty(0, np.int64)
    return _group(ks[picks], ts[picks])


def top_tokens(pools: Sequence[Sequence[int]], scores: Sequence[np.ndarray], budget: int) -> dict[int, list[int]]:
    """The ``budget`` pool tokens with the highest score (rounded to 9 decimals), ties by (example, token).

    Tokens without a finite score (NaN: first position, a missing reference score) are never taken, so fewer than
    ``budget`` tokens come back only when fewer have a score.
    """
    ks, ts = _flat(pools)
    vals = np.full(ks.size, np.nan)
    for k, p in enumerate(pools):
        if not len(p):
            continue
        s = np.asarray(scores[k], dtype=np.float64)
        idx = np.asarray(p, dtype=np.int64)
        ok = idx < s.size
        lo = int(np.searchsorted(ks, k))
        vals[lo:lo + idx.size][ok] = s[idx[ok]]
    finite = np.isfinite(vals)
    ks, ts, vals = ks[finite], ts[finite], np.round(vals[finite], 9)
    order = np.lexsort((ts, ks, -vals))[: max(0, int(budget))]
    return _group(ks[order], ts[order])


def select_tokens(supervision: str, pools: Sequence[Sequence[int]], *, budget: int, seed: int,
                  scores: Sequence[np.ndarray] | None = None) -> dict[int, list[int]]:
    """Token-level policy -> {example position: sorted token indices}; examples with no token are absent.

    ``pools[k]`` = response token indices of kept example k; ``scores[k]`` = per-position ranking scores of example k
    (g_t for ``gce_tokens``, :func:`excess_ce` for ``excess_tokens``).
    """
    if supervision == "full":
        return full_tokens(pools)
    if supervision == "random_tokens":
        return random_tokens(pools, budget, seed)
    if supervision in ("gce_tokens", "excess_tokens"):
        if scores is None or len(scores) != len(pools):
            raise ValueError(f"supervision={supervision} needs one score array per example")
        return top_tokens(pools, scores, budget)
    raise ValueError(f"{supervision!r} is not a token-level supervision; choose one of: {', '.join(TOKEN_LEVEL)}")


def split_code_nl(tokens: Sequence[int], offsets: Sequence[tuple[int, int]],
                  code_spans: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """(code, nl): a token is code if any of its characters lies in a code span (rendered-text coordinates, sorted,
    disjoint); everything else (prose, fence lines) counts as NL. Used for the stats of token-level policies.

    >>> split_code_nl([0, 1, 2], [(0, 3), (3, 6), (6, 9)], [(4, 5)])
    ([1], [0, 2])
    """
    starts = [a for a, _ in code_spans]
    code, nl = [], []
    for t in tokens:
        s, e = offsets[t]
        j = bisect_left(starts, e) - 1  # last span starting before the token ends
        (code if j >= 0 and code_spans[j][1] > s and e > s else nl).append(int(t))
    return code, nl
