"""`codeblock prepare --num_workers N`: byte-identical to one process, to a cached run, and resumable from the cache.

Rank 0 runs in this process (``codeblock.cli.main``); ``--num_workers 2`` starts rank 1 as a real subprocess that
scores its shard of every scoring call (IFD pair selection and token scores) on the tiny Llama.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeblock.cli import main

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "plugin/codeblock/data/demo_sample.jsonl"


def _prepare(out: Path, model_dir: Path, *extra: str) -> dict:
    code = main(["prepare", "--data", str(SAMPLE), "--model", str(model_dir), "--out", str(out), "--pair-selector",
                 "ifd", "--keep-ratio", "0.7", "--budget", "0.2", "--quiet", *extra])
    assert code == 0, (out / "workers").is_dir() and [p.read_text()[-2000:] for p in (out / "workers").glob("*.log")]
    return json.loads((out / "stats.json").read_text())


def _same_outputs(a: Path, b: Path) -> None:
    for name in ("train.jsonl", "selection.jsonl", "pair_scores.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def single(tmp_path_factory, tiny_model_dir, monkeypatch_module):
    out = tmp_path_factory.mktemp("one")
    return out, _prepare(out, tiny_model_dir, "--score-cache", "none", "--num_workers", "1")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TQDM_DISABLE", "1")
        mp.setenv("PYTHONPATH", str(REPO / "plugin"))
        yield mp


def test_two_workers_resume_a_cut_run_and_equal_one_worker_and_a_cached_rerun(single, tiny_model_dir, tmp_path):
    one, stats_one = single
    cache = str(tmp_path / "cache")
    # A cut run: the first 5 rows stand for what it had committed. Two workers then score only the rest.
    _prepare(tmp_path / "cut", tiny_model_dir, "--score-cache", cache, "--limit", "5")
    two = tmp_path / "two"
    stats_two = _prepare(two, tiny_model_dir, "--score-cache", cache, "--num_workers", "2")
    _same_outputs(one, two)  # --num_workers 2 (cache partly warm) == --num_workers 1 (no cache)
    scoring = stats_two["scoring"]
    assert scoring["workers"] == 2 and 0 < scoring["cached_rows"] and 0 < scoring["forward_rows"]
    assert scoring["forward_rows"] + scoring["cached_rows"] == stats_one["scoring"]["forward_rows"]
    assert min(json.loads((two / "stats.json").read_text())["scoring"]["forward_rows_by_rank"]) > 0  # both ranks scored
    rerun = tmp_path / "rerun"
    stats_rerun = _prepare(rerun, tiny_model_dir, "--score-cache", cache)
    _same_outputs(one, rerun)  # fully cached == uncached
    assert stats_rerun["scoring"]["forward_rows"] == 0 and stats_rerun["scoring"]["cache_hit_rate"] == 1.0
