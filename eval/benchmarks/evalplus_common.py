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
import math
import os
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codeblock_eval.benchmarks.base import BASE_STOPS, Benchmark, Problem, Verdict, python_instruction
from codeblock_eval.benchmarks.data_files import cache_dir, data_file, dataset_info, file_sha256, read_jsonl
from codeblock_eval.execution.plaindata import decode_text, encode
from codeblock_eval.execution.sandbox_host import temp_prefix

MIN_TIME_LIMIT = 1.0
GT_TIME_LIMIT_FACTOR = 4.0
TIMEOUT_PER_TASK = 60.0
GT_CACHE_VERSION = 2
HUMANEVAL_SPECIAL = ("find_zero",)
MBPP_SPECIAL = ("are_equivalent", "sum_div", "surface_Area", "digit_distance_nums")

MBPP_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")
MBPP_SET_EQ = ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly", "larg_nnum",
               "intersection_array", "find_dissimilar", "Diff")


# --------------------------------------------------------------------------------------------------------------
# MBPP+ input deserialisation: the JSONL stores tuples/sets/complex as JSON; these task ids get them back.
# --------------------------------------------------------------------------------------------------------------
def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


_LISTS_TO_TUPLES = {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740,
                    744, 809}
_NESTED_TO_TUPLES = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_FIRST_ITEMS_TO_TUPLES = {75, 413, 444, 753}
_SECOND_TO_TUPLE = {106, 750}
_FIRST_TO_TUPLE = {250, 405, 446, 617, 720, 763, 808}
_DOUBLE_NESTED = {259, 401, 445}
_ALL_TUPLES = {580, 615, 791}


def mbpp_deserialize(task_id: str, inputs: list) -> list:
    n = int(task_id.split("/")[-1])
    if n in _LISTS_TO_TUPLES:
        return [[tuple(a) for a in inp] for inp in inputs]
    if n in _NESTED_TO_TUPLES:
        return [[[tuple(b) for b in a] for a in inp] for inp in inputs]
    if n in _FIRST_ITEMS_TO_TUPLES:
        return [[[tuple(b) for b in inp[0]], inp[1]] for inp in inputs]
    if n in _SECOND_TO_TUPLE:
        return [[inp[0], tuple(inp[1])] for inp in inputs]
    if n == 115:  # a list of sets; an empty JSON list becomes {} (an empty dict), as upstream does
        return [[[set(a) if isinstance(a, list) and a else {} for a in inp[0]]] for inp in inputs]
    if n == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if n in _FIRST_TO_TUPLE:
        return [[tuple(inp[0]), inp[1]] for inp in inputs]
    if n in _DOUBLE_NESTED:
        return [[tuple(tuple(b) for b in a) for a in inp] for inp in inputs]
    if n == 278:
        return [[tuple(tuple(a) if isinstance(a, list) else a for a in inp[0])] for inp in inputs]
    if n == 307:
        return [[tuple(inp[0]), inp[1], inp[2]] for inp in inputs]
    if n == 722:
        return [[{k: tuple(v) for k, v in inp[0].items()}, *inp[1:]] for inp in inputs]
    if n == 252:
        return [[complex(inp[0])] for inp in inputs]
    if n in _ALL_TUPLES:
        return [_tuples(inp) for inp in inputs]
    return inputs


# --------------------------------------------------------------------------------------------------------------
# oracles
# --------------------------------------------------------------------------------------------------------------
def _poly(xs, x):
    return sum(c * math.pow(x, i) for i, c in enumerate(xs))


def _surface_area_alt(base_edge, height):
    # Mbpp/581 alternative reading: "height" is the pyramid's perpendicular height.
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 2 * base_edge * slant)


def _digit_distance_alt(a, b):
    # Mbpp/558 alternative reading: pad the shorter number with leading zeros.
    sa, sb = str(a), str(b)
    width = max(len(sa), len(sb))
    return sum(abs(int(x) - int(y)) for x, y in zip(sa.zfill(width), sb.zfill(width)))


def _is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(v, float) for v in x)
    return False


def compare_phase(kind: str, entry_point: str, outputs: list, expected: list, inputs: list, atol: float,
                  exp_digests: list | None = None) -> int | None:
    """Index of the first output that fails the evalplus comparison, or None if all match.

    An expected value too large to keep (``None`` with a digest) is compared by digest (exact equality)."""
    import numpy as np

    from codeblock_eval.execution.plaindata import digest

    for i, (out, exp) in enumerate(zip(outputs, expected)):
        if exp is None and exp_digests is not None and exp_digests[i] is not None and entry_point != "find_zero":
            if digest(out) != exp_digests[i]:
                return i
            continue
        try:
            if kind == "humaneval" and entry_point == "find_zero":
                if not abs(_poly(*inputs[i], out)) <= atol:
                    return i
                continue
            exact = out == exp
            if kind == "mbpp":
                if entry_point == "are_equivalent":
                    exact = True
                elif entry_point == "sum_div":
                    exact = exact or out == 0
                elif entry_point == "surface_Area":
                    exact = exact or abs(out - _surface_area_alt(*inputs[i])) <= atol
                elif entry_point == "digit_distance_nums":
                    exact = exact or out == _digit_distance_alt(*inputs[i])
                elif entry_point in MBPP_SET_EQ:
                    exact = set(out) == set(exp)
                elif entry_point in MBPP_NOT_NONE:
                    exact = out == exp if isinstance(out, bool) else exp == (out is not None)
            if atol == 0 and _is_floats(exp):
                atol = 1e-6  # sticky for the rest of the phase, as in evalplus
            if not exact and atol != 0:
                if type(out) is not type(exp):
                    return i
                if isinstance(exp, (list, tuple)) and len(out) != len(exp):
                    return i
                if not np.allclose(out, exp, rtol=1e-07, atol=atol):
                    return i
            elif not exact:
                return i
        except Exception:  # noqa: BLE001 - any comparison error (unhashable, bad types) is a failed input
            return i
    return None


# --------------------------------------------------------------------------------------------------------------
# the benchmark family
# --------------------------------------------------------------------------------------------------------------
class EvalPlusBenchmark(Benchmark):
    """HumanEval+ / MBPP(+) scored by differential testing against the canonical solution."""

    kind = "humaneval"  # evalplus dataset name: "humaneval" | "mbpp"
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
        if sample.get("solution") is None and sample.get("completion") is not None:
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
            return Verdict(status, {**details, "reason": "no completion proof", "exit_code": res.exit_code,
                                    "stderr": res.stderr[-500:]})
        payload = res.payload_json()
        if payload["exec"] != "ok":
            return Verdict("timeout" if payload["exec"] == "timeout" else "fail",
                           {**details, "reason": f"exec {payload['exec']}", "error": payload.get("error")})
        statuses = {}
        for ph in self.phases:
            got = payload["phases"].get(ph)
            if got is None:
                statuses[ph] = "not_run"
                continue
            if got["status"] == "timeout":
                statuses[ph] = "timeout"
                details[f"{ph}_fail_index"] = got["n_done"]
                continue
            if got["status"] == "exception":
                statuses[ph] = "fail"
                details[f"{ph}_fail_index"] = got["n_done"]
                details[f"{ph}_error"] = got["error"]
                continue
            if gt[ph]["full"]:
                outputs = decode_text(json.dumps(got["outputs"]))
                bad = compare_phase(self.kind, problem.entry_point, outputs, gt[ph]["expected"],
                                    problem.extra["inputs"][ph], problem.extra["atol"], gt[ph]["digests"])
            else:
                outputs = got["outputs"]
                bad = next((i for i, (a, b) in enumerate(zip(outputs, gt[ph]["digests"])) if a != b), None)
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
