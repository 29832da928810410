"""Differential testing as ``evalplus`` 0.3.1 does it, with the verdict decided outside the sandbox.

Scoring rules reproduced (see research/data.md §3.2):

* expected outputs come from running ``prompt + canonical_solution`` on every input (``record`` mode of the runner),
  cached per dataset sha256 and Python version under :func:`codeblock_eval.benchmarks.data_files.cache_dir`, with per-input
  reference times (wall clock, like evalplus; machine-dependent, so re-calibrate on a new machine by deleting the cache);
* per-input limit ``max(min_time_limit=1.0, 4.0 x reference time) x timeout_scale``; per-phase budget
  ``min(60, sum(limits)) + 1``; base and plus are separate phases (separate processes in evalplus);
* comparison: exact ``==``; else, if ``atol`` (forced to 1e-6 once a float / list-of-floats expected output is seen,
  sticky for the rest of the phase exactly as evalplus' local variable) is non-zero: same type, same length for
  sequences, ``np.allclose(out, exp, rtol=1e-7, atol=atol)``;
* MBPP special oracles (Mbpp/164 always true, 295 ``out == 0`` too, 581 and 558 alternative references, set equality
  for 8 tasks, "not None" for 3 tasks) and the HumanEval/32 ``find_zero`` oracle ``|poly(xs, out)| <= atol``.

Deliberate deviation: **HumanEval/32**. evalplus 0.3.1 marks every solution (even the canonical one) failed because its
``find_zero`` branch ``continue``s before recording the input as passed; upstream fixed this in commit 6eb1e19
(2024-11-01), after the last PyPI release. We credit /32 when the oracle holds for every input, as the fixed upstream
does, and the summary notes it. Agreement tests compare with evalplus everywhere else.

Outputs that are not plain data (generators, numpy arrays, custom objects) serialise as "unrepresentable" and equal
nothing, so e.g. an object whose ``__eq__`` always returns True cannot pass (evalplus would accept it).
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codeblock_eval.benchmarks.base import BASE_STOPS, Benchmark, Problem, Verdict, python_instruction
from codeblock_eval.benchmarks.data_files import cache_dir, data_file, dataset_info, file_sha256, read_jsonl
from codeblock_eval.benchmarks.evalplus_compare import (MBPP_NOT_NONE, MBPP_SET_EQ, compare_phase,
                                                       mbpp_deserialize)
from codeblock_eval.execution.plaindata import check_plain, decode_text, encode
from codeblock_eval.execution.sandbox_host import temp_prefix

MIN_TIME_LIMIT = 1.0
GT_TIME_LIMIT_FACTOR = 4.0
TIMEOUT_PER_TASK = 60.0
GT_CACHE_VERSION = 2
HUMANEVAL_SPECIAL = ("find_zero",)
MBPP_SPECIAL = ("are_equivalent", "sum_div", "surface_Area", "digit_distance_nums")

# --------------------------------------------------------------------------------------------------------------
# the benchmark family
# --------------------------------------------------------------------------------------------------------------
class EvalPlusBenchmark(Benchmark):
    """HumanEval+ / MBPP(+) scored by differential testing against the canonical solution."""

    kind = "humaneval"  # evalplus dataset name: "humaneval" | "mbpp"
    trust = "out_of_process"
    relpath = ""
    version = ""
    dataset_name = ""
    phases: tuple[str, ...] = ("base", "plus")
    stops: tuple[str, ...] = ()

    def __init__(self, *, min_time_limit: float = MIN_TIME_LIMIT, gt_time_limit_factor: float = GT_TIME_LIMIT_FACTOR,
                 relpath: str | None = None):
        self.min_time_limit = min_time_limit
        self.gt_time_limit_factor = gt_time_limit_factor
        if relpath:
            self.relpath = relpath
        self._path: Path | None = None
        self._gt_lock = threading.Lock()

    def load_problems(self, data_dir: Path | None) -> list[Problem]:
        self._path = data_file(data_dir, self.relpath)
        problems = []
        for rec in read_jsonl(self._path):
            base_in, plus_in = rec["base_input"], rec.get("plus_input", [])
            if self.kind == "mbpp":
                base_in = mbpp_deserialize(rec["task_id"], base_in)
                plus_in = mbpp_deserialize(rec["task_id"], plus_in)
            prompt = rec["prompt"].strip() + "\n"
            problems.append(Problem(
                task_id=rec["task_id"], prompt=prompt, instruction=python_instruction(rec["prompt"]),
                entry_point=rec["entry_point"], language="python", stop_sequences=BASE_STOPS + self.stops,
                extra={"inputs": {"base": base_in, "plus": plus_in}, "atol": float(rec.get("atol") or 0),
                       "canonical_solution": rec["canonical_solution"], "raw_prompt": rec["prompt"]}))
        return problems

    def dataset_info(self) -> dict:
        if self._path is None:
            raise RuntimeError("call load_problems() first")
        return dataset_info(self.dataset_name, self.version, self._path)

    def reference_program(self, problem: Problem) -> str:
        return problem.extra["raw_prompt"] + problem.extra["canonical_solution"]

    def program_for(self, problem: Problem, sample: dict) -> str:
        if sample.get("solution") is None and isinstance(sample.get("completion"), str):
            return problem.extra["raw_prompt"] + sample["completion"]  # evalplus uses the raw prompt
        return super().program_for(problem, sample)

    # -- ground truth ----------------------------------------------------------------------------------------
    def _gt_cache_path(self) -> Path:
        sha = file_sha256(self._path)[:16]
        py = f"{sys.version_info.major}{sys.version_info.minor}"
        return cache_dir() / f"gt-{self.kind}-{sha}-py{py}-v{GT_CACHE_VERSION}.json.gz"

    def _record(self, problem: Problem, sandbox, inputs_path: Path) -> dict:
        job = {"mode": "record", "program": self.reference_program(problem), "entry_point": problem.entry_point,
               "inputs_path": str(inputs_path)}
        res = sandbox.run_python(job, wall_s=900, site_packages=False)
        if not res.verified:
            raise RuntimeError(f"ground truth for {problem.task_id} failed (exit {res.exit_code}, timeout "
                               f"{res.timed_out}): {res.stderr[-800:]}")
        return res.payload_json()["phases"]

    def prepare(self, problems, sandbox, *, parallel: int, timeout_scale: float) -> dict:
        workdir = Path(tempfile.mkdtemp(prefix=temp_prefix("cb-inputs")))
        os.chmod(workdir, 0o755)  # the sandbox uid reads the input files
        inputs_paths, record_paths = {}, {}
        for i, p in enumerate(problems):
            # Ground truth always records both phases (one cache serves mbpp and mbpp+); samples read only theirs.
            for suffix, names, paths in (("rec", ("base", "plus"), record_paths), ("chk", self.phases, inputs_paths)):
                path = workdir / f"{i}.{suffix}.json"
                data = {ph: p.extra["inputs"][ph] for ph in names}
                path.write_text(json.dumps(encode(data), separators=(",", ":")), encoding="utf-8")
                os.chmod(path, 0o644)
                paths[p.task_id] = path
        cache_path = self._gt_cache_path()
        with self._gt_lock:
            cached = {}
            if cache_path.exists():
                with gzip.open(cache_path, "rt", encoding="utf-8") as f:
                    cached = json.load(f)
            missing = [p for p in problems if p.task_id not in cached]
            if missing:
                with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
                    for p, phases in zip(missing, pool.map(lambda q: self._record(q, sandbox, record_paths[q.task_id]),
                                                           missing)):
                        cached[p.task_id] = phases
                tmp = cache_path.with_suffix(f".tmp{os.getpid()}")
                with gzip.GzipFile(tmp, "wb", mtime=0) as f:
                    f.write(json.dumps(cached, sort_keys=True, separators=(",", ":")).encode())
                os.replace(tmp, cache_path)
        gt = {}
        for p in problems:
            phases = {}
            special = p.entry_point in (HUMANEVAL_SPECIAL if self.kind == "humaneval" else
                                        MBPP_SPECIAL + MBPP_SET_EQ + MBPP_NOT_NONE)
            for ph, rec in cached[p.task_id].items():
                digests = [o[0] for o in rec["outputs"]]
                # Values are needed where evalplus compares beyond `==`: tolerances, special oracles.
                full = special or p.extra["atol"] != 0 or any(o[2] for o in rec["outputs"])
                values = None
                if full:
                    values = decode_text(json.dumps([o[1] for o in rec["outputs"]]))
                    if self.kind == "mbpp" and p.entry_point in MBPP_NOT_NONE:
                        values = [o is not None for o in values]
                phases[ph] = {"digests": digests, "expected": values, "full": full, "times": rec["times"]}
            gt[p.task_id] = phases
        return {"inputs_dir": workdir, "inputs_paths": inputs_paths, "gt": gt, "excluded": {},
                "gt_cache": str(cache_path)}

    # -- checking ----------------------------------------------------------------------------------------------
    def check(self, problem, program, sandbox, state, *, timeout_scale: float) -> Verdict:
        gt = state["gt"][problem.task_id]
        phases, total = [], 0.0
        for ph in self.phases:
            limits = [max(self.min_time_limit, self.gt_time_limit_factor * t) * timeout_scale
                      for t in gt[ph]["times"]]
            budget = min(TIMEOUT_PER_TASK * timeout_scale, sum(limits)) + 1
            phases.append({"name": ph, "time_limits": limits, "budget": budget, "full": gt[ph]["full"]})
            total += budget
        exec_limit = phases[0]["budget"]
        job = {"mode": "calls", "program": program, "entry_point": problem.entry_point,
               "inputs_path": str(state["inputs_paths"][problem.task_id]), "phases": phases,
               "exec_limit": exec_limit}
        res = sandbox.run_python(job, wall_s=exec_limit + total + 3, site_packages=False)
        details: dict = {"wall_s": round(res.wall_s, 3)}
        if res.error:
            return Verdict("error", {**details, "error": res.error})
        if not res.verified:
            status = "timeout" if res.timed_out else "fail"
            return Verdict(status, {**details, "reason": res.reason, "exit_code": res.exit_code,
                                    "stderr": res.stderr[-500:]})
        payload = res.payload_json()
        problem_with = calls_payload_problem(payload, self.phases, gt)
        if problem_with:
            return Verdict("fail", {**details, "reason": f"malformed payload: {problem_with}"})
        if payload["exec"] != "ok":
            return Verdict("timeout" if payload["exec"] == "timeout" else "fail",
                           {**details, "reason": f"exec {payload['exec']}", "error": str(payload.get("error"))[:300]})
        statuses = {}
        for ph in self.phases:
            got = payload["phases"].get(ph)
            if got is None:
                statuses[ph] = "not_run"
                continue
            if got["status"] != "ok":
                statuses[ph] = "timeout" if got["status"] == "timeout" else "fail"
                details[f"{ph}_fail_index"] = got["n_done"]
                if got["status"] == "exception":
                    details[f"{ph}_error"] = str(got.get("error"))[:300]
                continue
            try:
                if gt[ph]["full"]:
                    outputs = decode_text(json.dumps(got["outputs"]))
                    if not check_plain(outputs):
                        raise ValueError("outputs are not plain data")
                    bad = compare_phase(self.kind, problem.entry_point, outputs, gt[ph]["expected"],
                                        problem.extra["inputs"][ph], problem.extra["atol"], gt[ph]["digests"])
                else:
                    outputs = got["outputs"]
                    bad = next((i for i, (a, b) in enumerate(zip(outputs, gt[ph]["digests"])) if a != b), None)
            except (ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:
                return Verdict("fail", {**details, "reason": f"malformed payload: {type(exc).__name__}: "
                                                             f"{str(exc)[:200]}"})
            if bad is None and len(outputs) != len(gt[ph]["digests"]):
                bad = len(outputs)
            statuses[ph] = "pass" if bad is None else "fail"
            if bad is not None:
                details[f"{ph}_fail_index"] = bad
        for ph in self.phases:
            details[f"{ph}_status"] = statuses[ph]
        worst = [statuses[ph] for ph in self.phases if statuses[ph] != "pass"]
        status = "pass" if not worst else ("timeout" if worst[0] == "timeout" else "fail")
        return Verdict(status, details)

    def cleanup(self, state: dict) -> None:
        import shutil

        shutil.rmtree(state.get("inputs_dir", ""), ignore_errors=True)


def calls_payload_problem(payload, phases, gt) -> str | None:
    """What is wrong with a ``calls`` payload's shape (None if nothing): a forged or torn payload must become this
    sample's FAIL, never an exception that stops the run."""
    if not isinstance(payload, dict) or payload.get("exec") not in ("ok", "timeout", "error"):
        return "no valid 'exec' field"
    if payload["exec"] != "ok":
        return None
    got = payload.get("phases")
    if not isinstance(got, dict) or any(ph not in phases for ph in got):
        return "bad 'phases'"
    for ph, rec in got.items():
        if not isinstance(rec, dict) or rec.get("status") not in ("ok", "timeout", "exception"):
            return f"bad phase {ph!r}"
        if type(rec.get("n_done")) is not int or not isinstance(rec.get("outputs"), list):
            return f"bad phase {ph!r}"
        if len(rec["outputs"]) > len(gt[ph]["digests"]):
            return f"more outputs than inputs in phase {ph!r}"
        if not gt[ph]["full"] and not all(type(o) is str for o in rec["outputs"]):
            return f"non-digest outputs in phase {ph!r}"
    return None
