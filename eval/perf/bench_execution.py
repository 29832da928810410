"""Execution benchmark: our executor vs ``evalplus.evaluate`` (0.3.1) on the same samples, in one run.

Prints samples/s for both and the ratio (ours / evalplus; target >= 1.0x), and the per-sample verdict agreement.
Both sides run their own ground truth first (evalplus: its ``<hash>.pkl``; ours: the gt cache); that is not timed.

    python eval/perf/bench_execution.py --dataset humaneval --tasks 0 --parallel 2          # all 164 tasks, full plus set
    python eval/perf/bench_execution.py --dataset mbpp --every 3 --variants canonical,none,raise,int_off_by_one
    python eval/perf/bench_execution.py --ground-truth humaneval+    # every reference passes on the full data

The helpers (variant builder, evalplus runner) live in :mod:`codeblock_eval.execution.agreement`, shared with
tests/evaluation/execution/test_agreement.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from codeblock_eval.execution.agreement import compare_with_evalplus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=["humaneval", "mbpp"], default="humaneval")
    parser.add_argument("--every", type=int, default=1, help="use every N-th task (deterministic subset)")
    parser.add_argument("--variants", default="canonical,none,raise,int_off_by_one,reversed,float_tiny,float_big")
    parser.add_argument("--loop_every", type=int, default=0, help="add a hanging sample for every N-th task")
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data_dir", default=os.environ.get("CODEBLOCK_DATA_DIR"))
    parser.add_argument("--ground-truth", dest="ground_truth", default=None,
                        help="instead: check every reference of this benchmark passes (full data)")
    parser.add_argument("--tasks", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from codeblock_eval.benchmarks.data_files import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    if args.ground_truth:
        from codeblock_eval.benchmarks.registry import get_benchmark
        from codeblock_eval.execution.evaluate import evaluate_samples

        bench = get_benchmark(args.ground_truth)
        problems = bench.load_problems(data_dir)
        samples = [{"task_id": p.task_id, "solution": bench.reference_program(p)} for p in problems]
        with tempfile.TemporaryDirectory() as tmp:
            s = evaluate_samples(bench, problems, samples, out_dir=Path(tmp), parallel=args.parallel,
                                 allow_code_execution=True)
            failed = [json.loads(x)["task_id"] for x in (Path(tmp) / "eval_results.jsonl").read_text().splitlines()
                      if not json.loads(x)["passed"]]
        print(f"{args.ground_truth}: {s['n_pass']}/{s['n_samples']} references pass; failing: {failed}")
        return 0 if not failed else 1
    name = "humaneval+" if args.dataset == "humaneval" else "mbpp+"
    from codeblock_eval.benchmarks.registry import get_benchmark

    ids = [p.task_id for p in get_benchmark(name).load_problems(data_dir)][:: args.every]
    with tempfile.TemporaryDirectory() as tmp:
        res = compare_with_evalplus(name, data_dir, ids, args.variants.split(","), parallel=args.parallel,
                                    workdir=Path(tmp), loop_every=args.loop_every)
    n = res["n_samples"]
    ours_rate, theirs_rate = n / res["ours_s"], n / res["evalplus_s"]
    print(f"{name}: {n} samples over {res['n_tasks']} tasks, parallel={args.parallel}")
    print(f"  evalplus 0.3.1 : {res['evalplus_s']:8.1f} s  {theirs_rate:7.2f} samples/s")
    print(f"  codeblock_eval : {res['ours_s']:8.1f} s  {ours_rate:7.2f} samples/s")
    print(f"  ratio (ours / evalplus): {ours_rate / theirs_rate:.2f}x")
    print(f"  verdict agreement: {n - len(res['disagreements']) - len(res['known_upstream_bug'])}/{n} "
          f"(+{len(res['known_upstream_bug'])} HumanEval/32 samples: evalplus 0.3.1 bug)")
    for d in res["disagreements"][:20]:
        print("  DISAGREE", d)
    return 0 if not res["disagreements"] else 1


if __name__ == "__main__":
    sys.exit(main())
