"""`codeblock prepare` / `codeblock inspect` as real subprocesses on the tiny model folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _cli(*args, cwd=None):
    env = {**os.environ, "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "plugin")}
    return subprocess.run([sys.executable, "-m", "codeblock.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    rows = [json.loads(line) for line in open(REPO / "plugin/codeblock/data/demo_sample.jsonl")]
    path = tmp_path_factory.mktemp("data") / "sample.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_model_dir, sample):
    out = tmp_path_factory.mktemp("prep")
    cfg = out.parent / "cfg.yaml"
    cfg.write_text("max_example_fraction: 0.5\n")
    proc = _cli("prepare", "--data", str(sample), "--model", str(tiny_model_dir), "--out", str(out), "--budget", "0.2",
                "--pair-selector", "random", "--keep-ratio", "0.75", "--config", str(cfg), "--seed", "3", "--score-cache", "none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_prepare_writes_all_artifacts(prepared, sample):
    out, proc = prepared
    for name in ("train.jsonl", "selection.jsonl", "stats.json", "config.yaml", "dataset", "manifest.json"):
        assert (out / name).exists(), name
    stats = json.loads((out / "stats.json").read_text())
    assert stats["n_input"] == 14 and stats["n_dropped"]["invalid_json"] == 1 and stats["n_pair_selected"] == 9
    assert stats["n_input"] == stats["n_kept"] + stats["n_dropped_total"]
    assert stats["config"]["budget_ratio"] == 0.2 and stats["config"]["seed"] == 3 and stats["config"]["max_example_fraction"] == 0.5
    assert stats["input"]["sha256"] and stats["library_versions"]["transformers"]
    rows = [json.loads(line) for line in open(out / "train.jsonl")]
    assert len(rows) == stats["n_kept"] > 0
    sup = sum(sum(1 for v in r["labels"] if v != -100) for r in rows)
    assert sup == stats["supervised_tokens"] + stats["eos"]["supervised"]
    assert stats["supervised_fraction"] == round(stats["supervised_tokens"] / stats["response_tokens"], 9)
    from datasets import load_from_disk

    ds = load_from_disk(str(out / "dataset"))
    assert ds["labels"] == [r["labels"] for r in rows]
    sel = [json.loads(line) for line in open(out / "selection.jsonl")]
    assert all("selected_spans" in r for r in sel)
    assert any(s["item_id"] is not None and s["P"] is not None for r in sel for s in r["selected_spans"])
    assert "supervised fraction" in proc.stderr  # the rich summary table


def test_prepare_is_byte_identical_across_runs(prepared, tiny_model_dir, sample, tmp_path):
    out, _ = prepared
    cfg = out.parent / "cfg.yaml"
    proc = _cli("prepare", "--data", str(sample), "--model", str(tiny_model_dir), "--out", str(tmp_path), "--budget", "0.2",
                "--pair-selector", "random", "--keep-ratio", "0.75", "--config", str(cfg), "--seed", "3", "--score-cache", "none", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("train.jsonl", "selection.jsonl", "config.yaml"):
        assert (out / name).read_bytes() == (tmp_path / name).read_bytes(), name
    a, b = (json.loads((d / "stats.json").read_text()) for d in (out, tmp_path))
    a.pop("timings_s"), b.pop("timings_s")
    assert a == b


def test_usage_errors_exit_2(tiny_model_dir, sample, tmp_path):
    proc = _cli("prepare", "--data", str(tmp_path / "nope.jsonl"), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "no such file" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("budget_rato: 0.1\n")
    proc = _cli("prepare", "--data", str(sample), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"), "--config", str(bad))
    assert proc.returncode == 2 and "did you mean 'budget_ratio'" in proc.stderr
    proc = _cli("prepare", "--data", str(sample), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"), "--budget", "2")
    assert proc.returncode == 2 and "budget_ratio" in proc.stderr
    proc = _cli("inspect", str(tmp_path), "--html", str(tmp_path / "x.html"))
    assert proc.returncode == 2 and "not a prepare output folder" in proc.stderr


def test_inspect_writes_html_with_output_flag_and_default(prepared, tmp_path):
    out, _ = prepared
    proc = _cli("inspect", str(out), "--output", str(tmp_path / "view.html"), "--n", "3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<html" in (tmp_path / "view.html").read_text()
    proc = _cli("inspect", str(out), "--n", "2")  # default: <dir>/inspect.html
    assert proc.returncode == 0 and (out / "inspect.html").exists(), proc.stderr[-2000:]
