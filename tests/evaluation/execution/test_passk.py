from __future__ import annotations

import math

import pytest

from codeblock_eval.execution.passk import estimate_pass_at_k, mean_pass_at_k


def test_matches_closed_form():
    for n, c, k in [(10, 3, 1), (10, 3, 5), (20, 0, 10), (5, 5, 1), (200, 17, 100)]:
        expected = 1.0 - math.comb(n - c, k) / math.comb(n, k)
        assert estimate_pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_greedy_is_fraction_passed():
    assert mean_pass_at_k([(1, 1), (1, 0), (1, 1), (1, 0)], 1) == 0.5
    assert mean_pass_at_k([(1, 1)], 10) is None


def test_bad_arguments():
    with pytest.raises(ValueError):
        estimate_pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        estimate_pass_at_k(3, 1, 5)
