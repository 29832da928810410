"""Pair-level quality selection (method.md §2(a)): keep ⌊ρ·N⌋ instruction/response pairs.

Selectors (``pair_selector``):
    quality_longtail  (default, DS2-style) sort by (quality level L desc, long-tail score LT desc, index asc).
                      L from OpenCodeInstruct fields (``llm_judgement`` + ``average_test_score``) or a configured
                      numeric rating field; without either it falls back to ``ifd``.
    ifd               IFD = meanCE(y|x)/meanCE(y|""), drop IFD > 1 and non-finite, keep the top by IFD desc.
    kmeans_ifd        KMeans(k=min(100, N)) on instruction embeddings; ⌈ρ·|c|⌉ per cluster by IFD, then a global
                      trim to ⌊ρ·N⌋ by (IFD desc, index).
    random            seeded sample of ⌊ρ·N⌋.
    none              keep everything.

Pure (numpy + scikit-learn); the IFD values come from an ``ifd_fn`` the caller provides
(:func:`codeblock.scoring.scorer.make_ifd_fn`), which receives ``[(prompt_text, response_text), ...]``.

    >>> quality_level_oci([5, 5, 5], 1.0), quality_level_oci([3, 3, 3], 0.5)
    (5, 1)
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from codeblock.scoring.embeddings import DEFAULT_EMBEDDING, embed_texts, knn_mean_cosine_distance, longtail_from_distance

PAIR_SELECTORS = ("quality_longtail", "ifd", "kmeans_ifd", "random", "none")
OCI_JUDGE_FIELD = "llm_judgement"
OCI_TEST_FIELD = "average_test_score"
_DEC = 9  # §2.0: round scores to 9 decimals before comparing


@dataclass
class SelectionResult:
    """kept_indices: sorted input indices kept. scores: per-row score dict (L, Q, d, LT, ifd, cluster...).
    dropped: index -> reason for every row not kept. method_used: the selector that actually ran (fallbacks)."""

    kept_indices: list[int]
    scores: dict[int, dict[str, float]]
    dropped: dict[int, str]
    method_used: str
    stats: dict[str, Any] = field(default_factory=dict)


def n_keep(n: int, keep_ratio: float) -> int:
    """⌊ρ·N⌋, robust to float error (0.4·10 must give 4, not 3)."""
    if not 0.0 <= keep_ratio <= 1.0:
        raise ValueError(f"pair_keep_ratio must be in [0, 1], got {keep_ratio}")
    return int(math.floor(round(keep_ratio * n, 9)))


def _round_half_up(x: float) -> int:
    return int(math.floor(round(x, _DEC) + 0.5))


# --------------------------------------------------------------------------- quality levels


def _judge_scores(value) -> list[float] | None:
    """The three judge scores from an OpenCodeInstruct ``llm_judgement`` (JSON string, dict or list)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, TypeError):
            return None
    if isinstance(value, Mapping):
        value = [v.get("score") if isinstance(v, Mapping) else v for v in value.values()]
    if not isinstance(value, (list, tuple)) or not value:
        return None
    try:
        scores = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return scores if all(math.isfinite(s) for s in scores) else None


def oci_quality(judge, test_score) -> float | None:
    """Q = J × average_test_score with J = mean((s − 1)/4) of the judge scores; None when unparsable."""
    scores = _judge_scores(judge)
    try:
        t = float(test_score)
    except (TypeError, ValueError):
        return None
    if scores is None or not math.isfinite(t):
        return None
    j = (float(np.mean(scores)) - 1.0) / 4.0
    return j * t


def quality_level_oci(judge, test_score) -> int:
    """L = ⌊5·Q + 0.5⌋ (round half up), clipped to 0..5; 0 when unparsable."""
    q = oci_quality(judge, test_score)
    return 0 if q is None else min(5, max(0, _round_half_up(5.0 * q)))


def quality_level_rating(value, lo: float, hi: float) -> int:
    """A numeric rating mapped linearly from [lo, hi] onto 0..5, rounded half up; 0 when missing/unparsable."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0
    if not math.isfinite(v) or hi <= lo:
        return 0 if not math.isfinite(v) else 5
    return min(5, max(0, _round_half_up(5.0 * (v - lo) / (hi - lo))))


def _has_oci(rows: Sequence[Mapping]) -> bool:
    return any(isinstance(r, Mapping) and OCI_JUDGE_FIELD in r and OCI_TEST_FIELD in r for r in rows)


def _quality_levels(rows, quality_field, quality_range) -> tuple[list[int], str, int] | None:
    """(levels, source, n_unparsable) or None when the data carries no quality signal."""
    if _has_oci(rows):
        levels, bad = [], 0
        for r in rows:
            q = oci_quality(r.get(OCI_JUDGE_FIELD), r.get(OCI_TEST_FIELD)) if isinstance(r, Mapping) else None
            bad += q is None
            levels.append(0 if q is None else min(5, max(0, _round_half_up(5.0 * q))))
        return levels, "opencodeinstruct", bad
    if quality_field and any(isinstance(r, Mapping) and quality_field in r for r in rows):
        vals = []
        for r in rows:
            try:
                v = float(r.get(quality_field)) if isinstance(r, Mapping) else math.nan
            except (TypeError, ValueError):
                v = math.nan
            vals.append(v)
        finite = [v for v in vals if math.isfinite(v)]
        lo, hi = quality_range if quality_range is not None else (min(finite, default=0.0), max(finite, default=1.0))
        levels = [quality_level_rating(v, lo, hi) for v in vals]
        return levels, f"field:{quality_field}", sum(not math.isfinite(v) for v in vals)
    return None


# --------------------------------------------------------------------------- selectors


def select_pairs(
    rows: Sequence[Mapping],
    method: str = "quality_longtail",
    keep_ratio: float = 0.40,
    seed: int = 42,
    *,
    instruction_texts: Sequence[str],
    response_texts: Sequence[str] | None = None,
    ifd_fn: Callable[[Sequence[tuple[str, str]]], Sequence[float]] | None = None,
    quality_field: str | None = None,
    quality_range: tuple[float, float] | None = None,
    embedding: str = DEFAULT_EMBEDDING,
    embeddings: np.ndarray | None = None,
    longtail_k: int = 10,
    max_clusters: int = 100,
) -> SelectionResult:
    """Keep ⌊keep_ratio·N⌋ rows (fewer only when IFD drops leave too few). See the module doc for the selectors.

    ``rows``: the raw records (for quality fields). ``instruction_texts``: x_e, embedded for long-tail/kmeans.
    ``response_texts`` + ``ifd_fn`` are needed by ``ifd``/``kmeans_ifd`` (and the quality_longtail fallback).
    ``embeddings``: precomputed L2-normalised instruction embeddings (skips ``embedding``).
    """
    if method not in PAIR_SELECTORS:
        raise ValueError(f"unknown pair_selector {method!r}; choose one of {', '.join(PAIR_SELECTORS)}")
    n = len(rows)
    if len(instruction_texts) != n:
        raise ValueError(f"{len(instruction_texts)} instruction texts for {n} rows")
    target = n_keep(n, keep_ratio)
    stats: dict[str, Any] = {"n_in": n, "target": target, "keep_ratio": keep_ratio, "seed": seed}
    scores: dict[int, dict[str, float]] = {i: {} for i in range(n)}

    def emb() -> np.ndarray:
        if embeddings is not None:
            e = np.asarray(embeddings, dtype=np.float64)
            if e.shape[0] != n:
                raise ValueError(f"{e.shape[0]} embeddings for {n} rows")
            return e
        return embed_texts(instruction_texts, embedding, seed)

    if method == "none":
        kept = list(range(n))
    elif method == "random":
        rng = np.random.default_rng(seed)
        kept = sorted(int(i) for i in rng.choice(n, size=target, replace=False)) if target else []
    elif method == "quality_longtail":
        levels = _quality_levels(rows, quality_field, quality_range)
        if levels is None:
            stats["fallback"] = "no quality fields (OpenCodeInstruct or quality_field): fell back to ifd"
            method = "ifd"
        else:
            lv, source, bad = levels
            stats.update(quality_source=source, quality_unparsable=bad)
            d = knn_mean_cosine_distance(emb(), longtail_k)
            lt = longtail_from_distance(d)
            for i in range(n):
                scores[i].update(L=float(lv[i]), d=float(d[i]), LT=float(lt[i]))
            order = sorted(range(n), key=lambda i: (-lv[i], -round(float(lt[i]), _DEC), i))
            kept = sorted(order[:target])
    if method in ("ifd", "kmeans_ifd"):
        ifd = _ifd_values(n, instruction_texts, response_texts, ifd_fn)
        valid = [i for i in range(n) if math.isfinite(ifd[i]) and ifd[i] <= 1.0]
        for i in range(n):
            scores[i]["ifd"] = float(ifd[i])
        by_ifd = lambda i: (-round(ifd[i], _DEC), i)  # noqa: E731
        if method == "ifd":
            kept = sorted(sorted(valid, key=by_ifd)[:target])
        else:
            labels = _kmeans(emb(), min(max_clusters, n), seed) if n else np.zeros(0, dtype=int)
            picked: list[int] = []
            valid_set = set(valid)
            for c in sorted(set(labels.tolist())):
                members = np.flatnonzero(labels == c).tolist()
                quota = math.ceil(round(keep_ratio * len(members), 9))
                picked += sorted((i for i in members if i in valid_set), key=by_ifd)[:quota]
            for i in range(n):
                scores[i]["cluster"] = float(labels[i])
            picked = sorted(picked, key=by_ifd)[:target]
            if len(picked) < target:  # sparse clusters: top up globally so the size stays ⌊ρ·N⌋ when possible
                rest = sorted(valid_set - set(picked), key=by_ifd)
                stats["topped_up"] = min(len(rest), target - len(picked))
                picked += rest[: target - len(picked)]
            kept = sorted(picked)
        stats["ifd_dropped"] = n - len(valid)
    kept_set = set(kept)
    dropped = {}
    for i in range(n):
        if i in kept_set:
            continue
        ifd_i = scores[i].get("ifd")
        if ifd_i is not None and not math.isfinite(ifd_i):
            dropped[i] = "ifd_non_finite"
        elif ifd_i is not None and ifd_i > 1.0:
            dropped[i] = "ifd_gt_1"
        else:
            dropped[i] = f"below_keep_ratio:{method}"
    stats["n_kept"] = len(kept)
    if len(kept) < target:
        stats["shortfall"] = target - len(kept)
    return SelectionResult(kept_indices=kept, scores=scores, dropped=dropped, method_used=method, stats=stats)


def _ifd_values(n, instruction_texts, response_texts, ifd_fn) -> list[float]:
    if ifd_fn is None or response_texts is None:
        raise ValueError(
            "IFD selection needs a scoring model: pass ifd_fn (codeblock.scoring.scorer.make_ifd_fn) and response_texts, "
            "or choose pair_selector: random / none"
        )
    if len(response_texts) != n:
        raise ValueError(f"{len(response_texts)} response texts for {n} rows")
    values = [float(v) for v in ifd_fn(list(zip(instruction_texts, response_texts)))]
    if len(values) != n:
        raise ValueError(f"ifd_fn returned {len(values)} values for {n} pairs")
    return values


def _kmeans(emb: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    with warnings.catch_warnings():  # duplicate points with k close to N: ConvergenceWarning is expected
        warnings.simplefilter("ignore")
        return KMeans(n_clusters=k, random_state=seed, n_init=10).fit_predict(emb)
