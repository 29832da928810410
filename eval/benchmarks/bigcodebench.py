"""BigCodeBench v0.1.0 (1,140 tasks; ``complete`` and ``instruct`` splits), local execution like bigcodebench 0.2.5.

* Program: ``code_prompt + "\\n    pass\\n" + solution`` (the "calibrated" form that restores imports the model
  dropped), then the task's ``test`` (a ``unittest`` ``TestCases`` class); the whole suite runs under one limit,
  ``240 s x timeout_scale`` (the official ``BIGCODEBENCH_TIMEOUT_PER_TASK``); pass iff no failure and no error.
* Our Python 3.11 environment differs from the official (Python 3.10) library pins (install ``.[bigcodebench]`` for the
  task libraries), and the sandbox has no network, so some reference solutions fail here. Before scoring, the
  reference of every task being evaluated is run (a failure with no environmental explanation once more, to tell
  flaky ones); the failing ones are excluded and listed (``excluded_tasks``), each with its cause
  (``excluded_by_cause``, see :mod:`codeblock_eval.benchmarks.bcb_exclusions`), and a one-line summary is printed.
  The verdicts are cached in the harness cache keyed by the dataset sha256, the Python version and a hash of the
  installed distributions, so runs are deterministic.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from codeblock_eval.benchmarks.bcb_exclusions import classify_exclusion, exclusion_breakdown, summary_line
from codeblock_eval.benchmarks.base import INSTRUCTION_PREFIX, Benchmark, Problem, Verdict, payload_verdict
from codeblock_eval.benchmarks.data_files import cache_dir, data_file, dataset_info, file_sha256, read_jsonl
from codeblock_eval.execution.sandbox import Limits

TIMEOUT_PER_TASK = 240.0
MEMORY_MB = 8192
SWEEP_CHUNK = 20  # reference verdicts are saved after every SWEEP_CHUNK tasks
SANDBOX_VIEW_VERSION = 3  # bump when the sandbox's filesystem/process view changes (3: `python` on PATH)
VERDICT_FORMAT = 2  # bump when what the cache keeps per task changes (2: evidence for the exclusion cause)
# The reference cache's entry (not a task id) mapping each timed-out task to the --timeout_scale it timed out under.
TIMEOUT_SCALES_KEY = "_timeout_scale"


def _verdict_text(verdict: Verdict) -> str:
    """What the reference cache keeps: enough of the failure (exception, traceback tails) to classify its cause."""
    if verdict.passed:
        return "pass"
    d = verdict.details
    if verdict.status == "timeout":
        ran = f" after {d['tests_run']} tests" if d.get("tests_run") is not None else ""
        return f"timeout: suite ran past its limit{ran}"
    parts = [str(d["error"])] if d.get("error") else []
    parts += [f"{test_id}: {tb[-400:]}" for test_id, tb in (d.get("failed") or [])[:3]]
    if not parts:
        parts = [str(d.get("reason") or ""), str(d.get("stderr") or "")[-400:]]
    n_failed = f" ({d['n_failed']} tests failed)" if d.get("n_failed") else ""
    return f"{verdict.status}{n_failed}: " + " || ".join(p for p in parts if p)[:1500]


def _in_completion_order(problems: list[Problem], futures: list):
    by_future = dict(zip(futures, problems))
    return ((by_future[f], f) for f in as_completed(futures))


def _save(path: Path, known: dict) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(known, sort_keys=True, indent=0))
    os.replace(tmp, path)


def environment_fingerprint() -> str:
    from importlib import metadata

    # A set: a distribution seen through two sys.path entries (the perf scripts put plugin/, which holds the editable
    # install's egg-info, first on sys.path) must not change the key, or the sweep's verdicts would not be reused.
    dists = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata["Name"]})
    return hashlib.sha256("\n".join([sys.version, *dists]).encode()).hexdigest()[:16]


class BigCodeBench(Benchmark):
    relpath = "bigcodebench/BigCodeBench-v0.1.0.jsonl.gz"

    def __init__(self, split: str = "complete", *, timeout: float = TIMEOUT_PER_TASK):
        if split not in ("complete", "instruct"):
            raise ValueError(f"BigCodeBench split must be 'complete' or 'instruct', got {split!r}")
        self.split = split
        self.name = "bigcodebench" if split == "complete" else "bigcodebench-instruct"
        self.timeout = timeout
        self._path: Path | None = None
        self._lock = threading.Lock()
        self.limits = Limits(memory_mb=max(Limits().memory_mb, MEMORY_MB))

    def load_problems(self, data_dir: Path | None) -> list[Problem]:
        self._path = data_file(data_dir, self.relpath)
        problems = []
        for rec in read_jsonl(self._path):
            if self.split == "complete":
                instruction = f"{INSTRUCTION_PREFIX}\n```\n{rec['complete_prompt'].strip()}\n```\n"
            else:
                instruction = f"{INSTRUCTION_PREFIX}\n{rec['instruct_prompt'].strip()}\n"
            problems.append(Problem(
                task_id=rec["task_id"], prompt=rec["complete_prompt"], instruction=instruction,
                entry_point=rec["entry_point"], language="python",
                stop_sequences=("<|endoftext|>", "<|endofmask|>", "</s>", "\nif __name__", "\ndef main(", "\nprint("),
                extra={"code_prompt": rec["code_prompt"], "test": rec["test"],
                       "canonical_solution": rec["canonical_solution"], "libs": rec.get("libs")}))
        return problems

    def dataset_info(self) -> dict:
        if self._path is None:
            raise RuntimeError("call load_problems() first")
        return {**dataset_info("BigCodeBench", "v0.1.0", self._path), "split": self.split}

    def reference_program(self, problem: Problem) -> str:
        return problem.prompt + problem.extra["canonical_solution"]

    def calibrated(self, problem: Problem, solution: str) -> str:
        return problem.extra["code_prompt"] + "\n    pass\n" + solution

    def _run(self, problem: Problem, solution: str, sandbox, timeout_scale: float) -> Verdict:
        limit = self.timeout * timeout_scale
        program = self.calibrated(problem, solution) + "\n" + problem.extra["test"] + "\n"
        res = sandbox.run_python({"mode": "unittest", "program": program, "time_limit": limit}, wall_s=limit + 15,
                                 site_packages=True, limits=self.limits)
        if res.error:
            return Verdict("error", {"error": res.error})
        if not res.verified:
            return Verdict("timeout" if res.timed_out else "fail",
                           {"reason": res.reason, "exit_code": res.exit_code, "stderr": res.stderr[-500:]})
        return payload_verdict(res.payload_json(), {})

    def prepare(self, problems, sandbox, *, parallel: int, timeout_scale: float) -> dict:
        # The sandbox's view (hidden $HOME/data, private /tmp) can change which references pass: part of the key.
        key = f"{file_sha256(self._path)[:16]}-{environment_fingerprint()}-sbx{SANDBOX_VIEW_VERSION}-r{VERDICT_FORMAT}"
        path = cache_dir() / f"bigcodebench-reference-{key}.json"
        with self._lock:
            known = json.loads(path.read_text()) if path.exists() else {}
            # A timeout recorded under a smaller --timeout_scale says nothing about a longer limit: run it again.
            scales = known.setdefault(TIMEOUT_SCALES_KEY, {})
            todo = [p for p in problems if p.task_id not in known
                    or (known[p.task_id].startswith("timeout") and scales.get(p.task_id, 1.0) < timeout_scale)]
            # The full sweep takes tens of minutes: persist every SWEEP_CHUNK verdicts so an interrupted sweep resumes.
            # No barrier between chunks: one slow task (up to the 240 s limit) never idles the other workers.
            with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
                futures = [pool.submit(self._reference_verdict, p, sandbox, timeout_scale) for p in todo]
                for n_done, (problem, future) in enumerate(_in_completion_order(todo, futures), start=1):
                    known[problem.task_id] = future.result()
                    if known[problem.task_id].startswith("timeout"):
                        scales[problem.task_id] = timeout_scale
                    if n_done % SWEEP_CHUNK == 0 or n_done == len(todo):
                        _save(path, known)
        excluded = {p.task_id: known[p.task_id] for p in problems if known[p.task_id] != "pass"}
        sources = {p.task_id: (self.reference_program(p), p.extra["test"]) for p in problems if p.task_id in excluded}
        breakdown = exclusion_breakdown(excluded, len(problems), sources)
        return {"excluded": excluded, "reference_cache": str(path), "exclusions": breakdown,
                "exclusion_summary": summary_line(self.name, breakdown)}

    def _reference_verdict(self, problem: Problem, sandbox, timeout_scale: float) -> str:
        """``"pass"`` or ``"<status>: <evidence>"``; a failure not explained by the environment is rerun once."""
        program = self.reference_program(problem)
        verdict = _verdict_text(self._run(problem, program, sandbox, timeout_scale))
        if verdict == "pass" or classify_exclusion(verdict, program, problem.extra["test"])[0] != "reference_fails":
            return verdict
        # A reference that fails for no environmental reason may be timing- or order-dependent: one rerun tells.
        again = _verdict_text(self._run(problem, program, sandbox, timeout_scale))
        return f"flaky: {verdict}" if again == "pass" else verdict

    def check(self, problem, program, sandbox, state, *, timeout_scale: float) -> Verdict:
        return self._run(problem, program, sandbox, timeout_scale)

    def notes(self) -> list[str]:
        return [f"BigCodeBench v0.1.0 {self.split} split, local execution (calibrated solutions, whole unittest suite, "
                f"{self.timeout:.0f} s); tasks whose reference fails in this environment are excluded and listed. "
                "v0.1.0 differs from the official v0.1.4 in ~10 tasks (16, 37, 178, 211, 215, 241, 267, 760, 1005, "
                "1006)."]
