"""eval/perf/bench_training.py's bookkeeping (no model): repeats run interleaved and rotated, and the reported
figures are the median over repeats with their min and max."""

from __future__ import annotations

import importlib.util
from collections import Counter

import pytest


@pytest.fixture(scope="module")
def bench(repo_root):
    spec = importlib.util.spec_from_file_location("bench_training", repo_root / "eval" / "perf" / "bench_training.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_run_order_interleaves_and_rotates(bench):
    arms = ["full", "cb_dense", "cb_chunked", "cb_sparse"]
    order = bench.run_order(arms, 3)
    assert Counter(order) == {a: 3 for a in arms}
    rounds = [order[i:i + 4] for i in range(0, 12, 4)]
    assert all(sorted(r) == sorted(arms) for r in rounds)  # every repeat runs every arm once (interleaved)
    assert [r[0] for r in rounds] == ["full", "cb_dense", "cb_chunked"]  # no arm always runs first
    assert bench.run_order(arms, 1) == arms


def test_combine_reports_median_and_spread(bench):
    runs = [{"arm": "full", "step_s": s, "step_times_s": [s], "peak_rss_mb": m, "process_peak_rss_mb": m + 10}
            for s, m in ((30.0, 5000.0), (45.0, 5100.0), (33.0, 4900.0))]
    out = bench._combine(runs)
    assert out["step_s"] == 33.0 and out["peak_rss_mb"] == 5000.0
    assert out["spread"]["step_s"] == {"median": 33.0, "min": 30.0, "max": 45.0, "n": 3}
    assert out["spread"]["peak_rss_mb"]["min"] == 4900.0 and out["spread"]["peak_rss_mb"]["max"] == 5100.0
    assert out["repeats"] == 3
