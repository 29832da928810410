"""BigCodeBench: a handful of tasks only (full reference sweep is expensive; the cache makes later runs cheap).

References pass (stdlib-only tasks), broken solutions fail, and a task whose reference needs a library missing here
(tensorflow, which no extra of ours installs) is excluded, listed and counted, with the decision cached keyed by
dataset hash + environment.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from codeblock_eval.benchmarks.registry import get_benchmark
from codeblock_eval.execution.evaluate import evaluate_samples

TASKS = ["BigCodeBench/1", "BigCodeBench/2", "BigCodeBench/4", "BigCodeBench/289"]


@pytest.mark.parametrize("name", ["bigcodebench", "bigcodebench-instruct"])
def test_references_pass_broken_fail_and_failing_references_excluded(name, data_dir, sandbox, tmp_path,
                                                                     eval_cache):
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("tensorflow installed: BigCodeBench/289 would not be excluded")
    bench = get_benchmark(name)
    problems = [p for p in bench.load_problems(data_dir) if p.task_id in TASKS]
    assert problems[0].instruction.startswith("Please provide a self-contained Python script")
    samples = [{"task_id": p.task_id, "solution": bench.reference_program(p)} for p in problems]
    samples += [{"task_id": p.task_id, "solution": f"def {p.entry_point}(*args, **kwargs):\n    return None\n"}
                for p in problems]
    summary = evaluate_samples(bench, problems, samples, out_dir=tmp_path, allow_code_execution=True,
                               sandbox=sandbox, progress=False, parallel=2)
    assert summary["excluded_tasks"] == ["BigCodeBench/289"]
    assert summary["n_tasks"] == 3 and summary["pass@1"] == pytest.approx(0.5)
    rows = [json.loads(line) for line in (tmp_path / "eval_results.jsonl").read_text().splitlines()]
    assert {r["status"] for r in rows if r["task_id"] == "BigCodeBench/289"} == {"excluded"}
    cache = list(eval_cache.glob("bigcodebench-reference-*.json"))
    assert len(cache) == 1 and json.loads(cache[0].read_text())["BigCodeBench/1"] == "pass"
