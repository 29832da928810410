"""Execute samples of one benchmark in the sandbox and score them (pass@k, per-sample verdicts).

    summary = evaluate_samples(get_benchmark("humaneval"), problems, samples, out_dir=Path("run/humaneval"),
                               allow_code_execution=True)

Running model-written code must be asked for explicitly: ``allow_code_execution=True`` (the CLI's
``--allow_code_execution``) or ``CODEBLOCK_ALLOW_CODE_EXECUTION=1``; otherwise :class:`CodeExecutionNotAllowed`.

Writes ``out_dir/eval_results.jsonl``: one row per sample, in dataset task order then sample order, with ``task_id``,
``sample_index``, ``passed``, ``status`` (pass|fail|timeout|error|excluded) and ``details`` (e.g. base/plus status,
first failing input index). Timings are left out of the file so equal inputs give byte-identical results.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codeblock_eval.benchmarks.base import TRUST_LEVELS, Benchmark, Problem, Verdict
from codeblock_eval.execution.passk import mean_pass_at_k
from codeblock_eval.execution.sandbox import Limits, Sandbox

RESULTS_FILE = "eval_results.jsonl"
PROGRESS_FILE = ".eval_progress.jsonl"  # verdicts as they arrive, for --resume
ALLOW_ENV = "CODEBLOCK_ALLOW_CODE_EXECUTION"


class CodeExecutionNotAllowed(PermissionError):
    """Raised when evaluation would run model-written code without an explicit opt-in."""


def require_code_execution(allow: bool | None) -> None:
    if allow is True or (allow is None and os.environ.get(ALLOW_ENV) == "1"):
        return
    raise CodeExecutionNotAllowed(
        "evaluation executes model-generated code: pass --allow_code_execution (allow_code_execution=True) or set "
        f"{ALLOW_ENV}=1; the sandbox limits damage but is not a security boundary (use a container for untrusted "
        "models)")


def _sample_indices(samples: list[dict]) -> list[int]:
    seen: dict[str, int] = defaultdict(int)
    out = []
    for s in samples:
        idx = s.get("sample_index", s.get("sample_id"))
        if not isinstance(idx, int):
            idx = seen[s["task_id"]]
        seen[s["task_id"]] = max(seen[s["task_id"]], idx + 1)
        out.append(idx)
    return out


def evaluate_samples(benchmark: Benchmark, problems: list[Problem], samples: list[dict], *, out_dir: Path,
                     parallel: int | None = None, timeout_scale: float = 1.0, allow_code_execution: bool | None = None,
                     sandbox: Sandbox | None = None, limits: Limits | None = None, progress: bool = True,
                     resume: bool = False) -> dict:
    """``resume=True`` reuses the verdicts of an earlier (possibly killed) run in ``out_dir`` for samples whose task,
    index and text are unchanged (``.eval_progress.jsonl``, appended as verdicts arrive)."""
    require_code_execution(allow_code_execution)
    if timeout_scale <= 0:
        raise ValueError(f"timeout_scale must be > 0, got {timeout_scale}")
    parallel = max(1, int(parallel or os.cpu_count() or 1))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_id = {p.task_id: p for p in problems}
    order = {p.task_id: i for i, p in enumerate(problems)}
    notes = list(benchmark.notes())
    for s in samples:
        if "task_id" not in s:
            raise ValueError("every sample needs a 'task_id'")
    unknown = sorted({s["task_id"] for s in samples if s["task_id"] not in by_id})
    if unknown:
        n_rows = sum(s["task_id"] not in by_id for s in samples)
        notes.append(f"skipped {len(unknown)} task ids not in the dataset: {unknown[:5]}")
        print(f"warning: {benchmark.name}: skipped {n_rows} samples of {len(unknown)} task ids not in this benchmark "
              f"(e.g. {', '.join(map(str, unknown[:3]))})", file=sys.stderr, flush=True)
    if not samples:
        print(f"warning: {benchmark.name}: no samples to evaluate", file=sys.stderr, flush=True)
    indices = _sample_indices(samples)
    rows = [(s, i) for s, i in zip(samples, indices) if s["task_id"] in by_id]
    task_ids = sorted({s["task_id"] for s, _ in rows}, key=order.__getitem__)
    sandbox = sandbox or Sandbox(limits)
    try:  # the benchmark's own data folder (answer keys) is invisible to every run
        sandbox.hide(str(Path(benchmark.dataset_info()["path"]).resolve().parent))
    except Exception:  # noqa: BLE001 - a benchmark without a data file has nothing to hide
        pass
    used = [by_id[t] for t in task_ids]
    state = benchmark.prepare(used, sandbox, parallel=parallel, timeout_scale=timeout_scale)
    excluded: dict[str, str] = dict(state.get("excluded") or {})
    if state.get("exclusion_summary"):  # why tasks are missing, before any sample runs
        print(state["exclusion_summary"], file=sys.stderr, flush=True)

    progress_path = out_dir / PROGRESS_FILE
    done = _load_progress(progress_path) if resume else {}
    if not resume:
        progress_path.unlink(missing_ok=True)
    n_resumed = 0
    lock = threading.Lock()
    progress_file = open(progress_path, "a", encoding="utf-8")

    def run_one(item) -> Verdict:
        nonlocal n_resumed
        key = _sample_key(*item)
        if key in done:
            with lock:
                n_resumed += 1
            return Verdict(done[key]["status"], done[key]["details"])
        verdict = score_one(item)
        if verdict.status in ("pass", "fail", "timeout"):
            line = json.dumps({"key": key, "status": verdict.status,
                               "details": {k: v for k, v in verdict.details.items() if k != "wall_s"}})
            with lock:
                progress_file.write(line + "\n")
                progress_file.flush()
        return verdict

    def score_one(item) -> Verdict:
        sample, _ = item
        problem = by_id[sample["task_id"]]
        if problem.task_id in excluded:
            return Verdict("excluded", {"reason": excluded[problem.task_id]})
        try:
            program = benchmark.program_for(problem, sample)
        except (ValueError, TypeError) as exc:
            return Verdict("error", {"error": str(exc)})
        try:
            return benchmark.check(problem, program, sandbox, state, timeout_scale=timeout_scale)
        except Exception as exc:  # noqa: BLE001 - one sample never stops the run; it is reported with the cause
            import traceback

            tail = traceback.format_exc()[-600:]
            return Verdict("error", {"error": f"harness could not score this sample: {type(exc).__name__}: "
                                              f"{str(exc)[:200]}", "traceback": tail})

    try:
        from tqdm.auto import tqdm

        # Longest tasks first would need estimates; dataset order keeps runs comparable and is good enough.
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            verdicts = list(tqdm(pool.map(run_one, rows), total=len(rows), desc=f"exec {benchmark.name}",
                                 disable=None if progress else True))
    finally:
        progress_file.close()
        cleanup = getattr(benchmark, "cleanup", None)
        if cleanup:
            cleanup(state)

    results = []
    for (sample, idx), verdict in zip(rows, verdicts):
        details = {k: v for k, v in verdict.details.items() if k != "wall_s"}
        results.append({"task_id": sample["task_id"], "sample_index": idx, "passed": verdict.passed,
                        "status": verdict.status, "details": details})
    results.sort(key=lambda r: (order[r["task_id"]], r["sample_index"]))
    with open(out_dir / RESULTS_FILE, "w", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n")
    if n_resumed:
        notes.append(f"resumed: {n_resumed} verdicts reused from an earlier run in this folder")
    return summarize(benchmark, results, excluded, notes, sandbox, exclusions=state.get("exclusions"))


def _sample_key(sample: dict, idx: int) -> str:
    text = json.dumps([sample.get("task_id"), idx, sample.get("solution"), sample.get("completion")], default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _load_progress(path: Path) -> dict:
    """Verdicts an earlier run appended; a torn last line (killed mid-write) is ignored."""
    out: dict = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
            out[row["key"]] = {"status": row["status"], "details": dict(row["details"])}
        except (ValueError, KeyError, TypeError):
            continue
    return out


def summarize(benchmark: Benchmark, results: list[dict], excluded: dict, notes: list[str], sandbox: Sandbox, *,
              exclusions: dict | None = None) -> dict:
    per_task: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        if r["status"] != "excluded":
            per_task[r["task_id"]].append(r)
    counts = [(len(rs), sum(r["passed"] for r in rs)) for rs in per_task.values()]
    trust = getattr(benchmark, "trust", "in_process")
    summary = {
        "benchmark": benchmark.name,
        "pass@1": mean_pass_at_k(counts, 1) if counts else 0.0,
        "n_tasks": len(per_task),
        "n_samples": sum(n for n, _ in counts),
        "n_pass": sum(c for _, c in counts),
        "n_fail": sum(r["status"] == "fail" for rs in per_task.values() for r in rs),
        "n_timeout": sum(r["status"] == "timeout" for rs in per_task.values() for r in rs),
        "n_error": sum(r["status"] == "error" for rs in per_task.values() for r in rs),
        "dataset": benchmark.dataset_info(),
        "excluded_tasks": sorted(excluded),
        "n_excluded": len(excluded),
        "notes": notes + ([f"{len(excluded)} tasks excluded because the reference solution fails in this "
                           "environment (see excluded_tasks)"] if excluded else []),
        "sandbox": sandbox.describe(),
        "trust": trust,
        "trust_means": TRUST_LEVELS.get(trust, ""),
    }
    if exclusions is not None:  # per-cause counts and each excluded task's cause (BigCodeBench)
        summary["excluded_by_cause"] = exclusions
    for k in (10, 100):
        value = mean_pass_at_k(counts, k)
        if value is not None:
            summary[f"pass@{k}"] = value
    phases = [ph for ph in ("base", "plus") if any(f"{ph}_status" in r["details"] for r in results)]
    if "base" in phases and "plus" in phases:
        base_counts = [(len(rs), sum(r["details"].get("base_status") == "pass" for r in rs))
                       for rs in per_task.values()]
        summary["base_pass@1"] = mean_pass_at_k(base_counts, 1) if base_counts else 0.0
    return summary
