"""Kill -9 a real run during generation and during execution; `--resume` must lose and duplicate nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from support.tiny_lm import tiny_lm_dir  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


def _cmd(repo_root: Path, model: Path, out: Path, data_dir: Path, *extra: str, benchmarks="humaneval,humaneval+"):
    return [
        sys.executable, str(repo_root / "eval" / "run_benchmarks.py"), "--model", str(model),
        "--benchmarks", benchmarks, "--output", str(out), "--allow_code_execution",
        "--data_dir", str(data_dir), "--threads", "1", *extra,
    ]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _run_until(cmd, cwd, condition, *, timeout=120.0):
    """Start ``cmd``; SIGKILL it (whole process group) as soon as ``condition()`` holds. Returns the exit status."""
    env = dict(os.environ, TQDM_DISABLE="1")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"run ended (rc={proc.returncode}) before the kill point: {proc.stderr.read().decode()[-2000:]}")
        if condition():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return proc.returncode
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("kill point never reached")


def _finish(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=dict(os.environ, TQDM_DISABLE="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _check_complete(out: Path, n_tasks: int, benchmarks=("humaneval", "humaneval+")):
    samples = _rows(out / "humaneval" / "samples.jsonl")
    keys = Counter((r["task_id"], r["sample_index"]) for r in samples)
    assert len(keys) == n_tasks and set(keys.values()) == {1}, keys  # nothing lost, nothing duplicated
    for bench in benchmarks:
        results = _rows(out / bench / "eval_results.jsonl")
        got = Counter((r["task_id"], r.get("sample_index", 0)) for r in results)
        assert got == keys, (bench, got)
        assert all(r["status"] in {"pass", "fail", "timeout", "error", "excluded"} and isinstance(r["passed"], bool) for r in results)
    summary = json.loads((out / "results.json").read_text())
    assert {b: summary["benchmarks"][b]["n_samples"] for b in benchmarks} == {b: n_tasks for b in benchmarks}
    return samples


def test_sigkill_during_generation_then_resume(tiny_lm_dir, tmp_path, data_dir, repo_root):
    n_tasks = 6
    out = tmp_path / "run"
    # batch 1 and 160 new tokens: each sample takes a visible fraction of a second, so the kill lands mid-generation.
    opts = ("--limit", str(n_tasks), "--batch_size", "1", "--max_new_tokens", "160")
    cmd = _cmd(repo_root, tiny_lm_dir, out, data_dir, *opts, benchmarks="humaneval")
    samples_path = out / "humaneval" / "samples.jsonl"
    _run_until(cmd, repo_root, lambda: len(_rows(samples_path)) >= 2)
    before = _rows(samples_path)
    assert 2 <= len(before) < n_tasks and not (out / "results.json").exists()
    # Simulate the write being torn by the kill: a half-written row at the end of the file.
    with samples_path.open("a") as handle:
        handle.write('{"task_id": "HumanEval/5", "sample_index": 0, "raw": "trunc')
    _finish(cmd + ["--resume"], repo_root)
    samples = _check_complete(out, n_tasks, ("humaneval",))
    assert samples[: len(before)] == before  # earlier rows kept as they were
    # Greedy, batch 1: the resumed file holds exactly what an uninterrupted run produces.
    fresh = tmp_path / "fresh"
    _finish(_cmd(repo_root, tiny_lm_dir, fresh, data_dir, *opts, "--generation_only", benchmarks="humaneval"), repo_root)
    by_task = lambda rows: {r["task_id"]: r["raw"] for r in rows}  # noqa: E731
    assert by_task(samples) == by_task(_rows(fresh / "humaneval" / "samples.jsonl"))


def test_sigkill_during_execution_then_resume(tiny_lm_dir, tmp_path, data_dir, repo_root):
    n_tasks = 10
    out = tmp_path / "run"
    cmd = _cmd(repo_root, tiny_lm_dir, out, data_dir, "--limit", str(n_tasks), "--max_new_tokens", "16", "--parallel", "1")
    samples_path = out / "humaneval" / "samples.jsonl"
    eval_dir = out / "humaneval"

    def executing() -> bool:
        # Generation is complete and execution has started (its output directory content changed).
        return len(_rows(samples_path)) == n_tasks and any(p.name != "samples.jsonl" for p in eval_dir.iterdir())

    def generated() -> bool:
        if len(_rows(samples_path)) < n_tasks:
            return False
        time.sleep(0.5)  # inside evaluation of humaneval (10 sequential sandboxed programs)
        return True

    _run_until(cmd, repo_root, lambda: executing() or generated())
    samples_before = samples_path.read_bytes()
    assert not (out / "results.json").exists(), "run finished before the kill"
    _finish(cmd + ["--resume"], repo_root)
    assert samples_path.read_bytes() == samples_before  # nothing regenerated
    _check_complete(out, n_tasks)
