"""GCE token scores, item utility and percentile ranks: the §5(d) oracles."""

import math

import numpy as np
import pytest

from codeblock.scoring.gce import aggregate, gce_from_logp, token_scores
from codeblock.selection.budget import percentile_ranks


def g(p, q):
    return float(gce_from_logp(math.log(p), q))


@pytest.mark.parametrize(
    "p, expected",
    [(0.5, 0.5491826), (0.9, 0.1015690), (1e-6, 1.4284813)],
)
def test_gce_oracles_q07(p, expected):
    assert round(g(p, 0.7), 7) == expected


def test_ce_at_q0_and_gce_much_smaller_for_rare_tokens():
    assert g(1e-6, 0.0) == pytest.approx(13.8155106, abs=1e-6)
    assert g(1e-6, 0.7) < 1 / 0.7 < g(1e-6, 0.0)


def test_bounded_by_inverse_q_and_strictly_decreasing():
    tiny = gce_from_logp(np.log(np.logspace(-300, -30, 50)), 0.7)
    assert np.all(tiny <= 1 / 0.7) and np.all(tiny > 1 / 0.7 - 1e-9)  # saturates at the bound
    ps = np.concatenate([np.logspace(-20, -1, 200), np.linspace(0.11, 1.0, 200)])
    vals = gce_from_logp(np.log(ps), 0.7)
    assert np.all(vals <= 1 / 0.7) and np.all(vals >= 0)
    assert np.all(np.diff(vals) < 0)
    assert vals[-1] == 0.0 and not np.signbit(vals[-1])  # p = 1 costs nothing (+0.0)


def test_small_q_tends_to_ce():
    v = g(0.5, 1e-4)
    assert abs(v - math.log(2)) < 1e-4
    assert round(v, 6) == 0.693123


def test_q1_is_one_minus_p():
    for p in (0.01, 0.3, 0.5, 0.99):
        assert g(p, 1.0) == pytest.approx(1 - p, abs=1e-15)


def test_expm1_keeps_precision_near_p1():
    # 1 - p^q for p = 1 - 1e-12 would lose most digits with a naive pow
    p_log = math.log1p(-1e-12)
    assert float(gce_from_logp(p_log, 0.7)) == pytest.approx(1e-12, rel=1e-6)


def test_negative_q_rejected():
    with pytest.raises(ValueError, match="gce_q"):
        gce_from_logp(-1.0, -0.1)


def test_excess_gce_with_identical_reference_is_zero():
    rng = np.random.default_rng(0)
    logp = np.log(rng.uniform(0.01, 1.0, size=12))
    for mode in ("excess_gce", "excess_ce"):
        assert aggregate(token_scores(logp, mode, logp_ref=logp.copy())[[1, 3, 5, 7]]) == 0.0
    with pytest.raises(ValueError, match="reference"):
        token_scores(logp, "excess_gce")


def test_excess_sign_is_model_minus_reference():
    m, r = np.log([0.2]), np.log([0.8])
    assert token_scores(m, "excess_ce", logp_ref=r)[0] == pytest.approx(-math.log(0.2) + math.log(0.8))


def test_utility_is_mean_over_core_only():
    logp = np.log(np.array([np.nan, 0.5, 0.9, 0.1, 0.3]))
    core = [1, 2]
    u = aggregate(token_scores(logp)[core])
    assert u == pytest.approx((g(0.5, 0.7) + g(0.9, 0.7)) / 2)
    changed = logp.copy()
    changed[3] = math.log(0.999)  # a non-core token of the item
    assert aggregate(token_scores(changed)[core]) == u
    assert math.isnan(aggregate([]))  # empty core: not selectable


def test_aggregations():
    v = [0.1, 0.4, 0.2, 0.8]
    assert aggregate(v, "sum") == pytest.approx(1.5)
    assert aggregate(v, "max") == 0.8
    assert aggregate(v, "topk_mean") == pytest.approx((0.8 + 0.4 + 0.2) / 3)
    assert aggregate([0.5, 0.1], "topk_mean") == pytest.approx(0.3)
    with pytest.raises(ValueError, match="utility_agg"):
        aggregate(v, "median")
    with pytest.raises(ValueError, match="utility_mode"):
        token_scores(np.log(v), "focal")


def test_aggregation_sums_left_to_right():
    """u_i must not depend on numpy's blocked summation: sequential float64 sums, as prepare has always run them."""
    v = [0.1] * 7 + [1e16, -1e16] + [0.3] * 9
    seq = 0.0
    for x in v:
        seq += x
    assert aggregate(v, "sum") == seq and aggregate(v, "mean") == seq / len(v)


def test_percentile_oracle_and_ties():
    assert percentile_ranks([0.10, 0.05, 0.20, 0.25, 0.30]) == [0.25, 0.0, 0.5, 0.75, 1.0]
    assert percentile_ranks([0.7]) == [1.0]
    # ties share their average rank; values equal after rounding to 9 decimals tie
    assert percentile_ranks([0.1, 0.2, 0.2, 0.3]) == [0.0, 0.5, 0.5, 1.0]
    assert percentile_ranks([0.2, 0.2 + 1e-12, 0.1]) == [0.75, 0.75, 0.0]
    assert percentile_ranks([3, 1, 3, 2]) == [5 / 6, 0.0, 5 / 6, 1 / 3]
