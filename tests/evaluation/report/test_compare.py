"""--compare: exact McNemar, seeded bootstrap CIs, markdown report and PNG chart from real run directories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codeblock_eval.report.compare import bootstrap_ci, compare, mcnemar_exact
from codeblock_eval.report.results import write_results


@pytest.mark.parametrize("b,c", [(0, 0), (0, 6), (1, 9), (5, 5), (3, 12), (40, 25), (0, 1)])
def test_mcnemar_matches_scipy_binomtest(b, c):
    scipy_stats = pytest.importorskip("scipy.stats")
    expected = 1.0 if b + c == 0 else scipy_stats.binomtest(min(b, c), b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)
    assert mcnemar_exact(b, c) == mcnemar_exact(c, b)


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    values = [1.0] * 30 + [0.0] * 70
    low, high = bootstrap_ci(values, seed=3)
    assert (low, high) == bootstrap_ci(values, seed=3)
    assert low < 0.3 < high and 0.15 < low and high < 0.45
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)


def _make_run(root: Path, name: str, outcomes: dict[str, list[bool]], *, model: str) -> Path:
    run = root / name
    entries = {}
    for bench, passed in outcomes.items():
        (run / bench).mkdir(parents=True, exist_ok=True)
        lines = [
            json.dumps({"task_id": f"{bench}/{i}", "sample_index": 0, "passed": p, "status": "pass" if p else "fail"})
            for i, p in enumerate(passed)
        ]
        (run / bench / "eval_results.jsonl").write_text("\n".join(lines) + "\n")
        entries[bench] = {
            "pass@1": sum(passed) / len(passed), "n_tasks": len(passed), "n_samples": len(passed), "timeouts": 0,
            "dataset": {"name": bench, "version": "v1", "sha256": "ab" * 32},
            "eval_results": f"{bench}/eval_results.jsonl",
        }
    write_results(run, entries, model=model, adapter=None, generation={"settings": {"prompt_style": "base"}}, command="test")
    return run


def test_compare_report_numbers_and_png(tmp_path):
    base = [True] * 20 + [False] * 20
    # B flips 2 tasks to fail and 10 to pass: 12 discordant tasks, 2 vs 10.
    better = [False] * 2 + [True] * 18 + [True] * 10 + [False] * 10
    run_a = _make_run(tmp_path, "base", {"humaneval": base, "mbpp": base[:30]}, model="m")
    run_b = _make_run(tmp_path, "codeblock", {"humaneval": better, "mbpp": base[:30]}, model="m2")
    report = compare([run_a, run_b], tmp_path / "report" / "cmp.md")
    md = (tmp_path / "report" / "cmp.md").read_text()
    row = report["benchmarks"]["humaneval"][1]
    assert (row["only_first"], row["only_this"]) == (2, 10)
    assert row["p_mcnemar"] == pytest.approx(mcnemar_exact(2, 10))
    assert row["delta"] == pytest.approx(0.2)
    assert row["delta_ci"][0] < 0.2 < row["delta_ci"][1]
    assert report["benchmarks"]["mbpp"][1]["p_mcnemar"] == 1.0
    assert report["average"]["base"] == pytest.approx((0.5 + 20 / 30) / 2)
    assert "| codeblock | m2 |" in md and "+20.0" in md and f"{mcnemar_exact(2, 10):.4g}" in md
    assert "![pass@1 by benchmark](cmp.png)" in md
    png = tmp_path / "report" / "cmp.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(str(png))
    assert image.shape[0] > 300 and image.shape[1] > 500
    # Same inputs -> byte-identical report and chart.
    first = (md, png.read_bytes())
    compare([run_a, run_b], tmp_path / "report" / "cmp.md")
    assert ((tmp_path / "report" / "cmp.md").read_text(), png.read_bytes()) == first


def test_compare_handles_missing_benchmark_and_duplicate_names(tmp_path):
    run_a = _make_run(tmp_path / "x", "run", {"humaneval": [True, False]}, model="m")
    run_b = _make_run(tmp_path / "y", "run", {"humaneval": [True, True], "mbpp": [False, True]}, model="m")
    report = compare([run_a, run_b], tmp_path / "r.md")
    assert report["common_benchmarks"] == ["humaneval"]
    md = (tmp_path / "r.md").read_text()
    assert "x/run" in md and "y/run" in md and "—" in md


def test_compare_cli_exit_codes(tmp_path, repo_root):
    run_a = _make_run(tmp_path, "a", {"humaneval": [True, False, True]}, model="m")
    run_b = _make_run(tmp_path, "b", {"humaneval": [True, True, True]}, model="m")
    cmd = [sys.executable, str(repo_root / "eval" / "run_benchmarks.py"), "--compare", str(run_a), str(run_b)]
    ok = subprocess.run(cmd + ["--output", str(tmp_path / "c.md")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "c.md").exists() and (tmp_path / "c.png").exists()
    bad = subprocess.run(cmd + ["--output", str(tmp_path / "c.txt")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "must end in .md" in bad.stderr
    missing = subprocess.run(cmd[:-1] + [str(tmp_path / "nope"), "--output", str(tmp_path / "d.md")], capture_output=True, text=True)
    assert missing.returncode == 2 and "has no results.json" in missing.stderr
