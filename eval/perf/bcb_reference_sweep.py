"""Run every BigCodeBench reference solution once in our sandbox and report which fail in this environment.

    nice -n 10 .venv/bin/python eval/perf/bcb_reference_sweep.py --parallel 3 --out runs/bcb_sweep_full.json
    # re-check the earlier exclusions and 150 other tasks drawn with seed 0:
    nice -n 10 .venv/bin/python eval/perf/bcb_reference_sweep.py --tasks runs/bcb_sweep_full.json --sample 150

This is the ground-truth check of the bigcodebench benchmark: tasks whose reference fails here are excluded from
scoring and listed in every results.json, each with its cause (library not installed, needs network, needs data
downloads, external program missing, timeout, flaky, reference fails for another reason; see
``codeblock_eval.benchmarks.bcb_exclusions``). It prints one summary line and writes counts per cause, the missing
libraries and every excluded task's cause, detail and recorded failure to ``--out``. Install ``.[bigcodebench]``
first for the task libraries. The verdicts are cached (keyed by dataset hash, Python version and installed distributions) and saved
every 20 tasks, so an interrupted sweep resumes, and later evaluations reuse them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "plugin"))


def select_tasks(problems: list, tasks: str, sample: int, seed: int) -> list:
    """The named tasks plus ``sample`` others drawn with ``seed``, in dataset order.

    >>> from types import SimpleNamespace as P
    >>> [p.task_id for p in select_tasks([P(task_id=f"BigCodeBench/{i}") for i in range(5)], "3,1", 0, 0)]
    ['BigCodeBench/1', 'BigCodeBench/3']
    """
    import random
    import re

    if not re.fullmatch(r"[\d,\s]+", tasks):  # a path (a long number list is no file name to stat)
        named = set(json.loads(Path(tasks).read_text(encoding="utf-8"))["excluded"])
    else:
        named = {f"BigCodeBench/{t.strip()}" for t in tasks.split(",") if t.strip()}
    known = {p.task_id for p in problems}
    if named - known:
        raise SystemExit(f"--tasks: unknown task(s) {sorted(named - known)[:5]}")
    others = sorted(known - named, key=lambda t: int(t.rsplit("/", 1)[1]))
    chosen = named | set(random.Random(seed).sample(others, min(sample, len(others))))
    return [p for p in problems if p.task_id in chosen]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", default=None, help="data mirror (default: $CODEBLOCK_DATA_DIR)")
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    p.add_argument("--start", type=int, default=0, help="skip the first N tasks (sweep a slice)")
    p.add_argument("--tasks", default=None,
                   help="only these tasks: comma-separated numbers (35,1101) or the excluded tasks of an earlier "
                        "--out file (runs/bcb_sweep_full.json)")
    p.add_argument("--sample", type=int, default=0,
                   help="with --tasks: also this many other tasks, drawn with --seed (regressions among the passing)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout_scale", type=float, default=1.0)
    p.add_argument("--out", default=None, help="write the summary JSON here")
    args = p.parse_args(argv)

    from codeblock_eval.benchmarks.bigcodebench import environment_fingerprint
    from codeblock_eval.benchmarks.registry import get_benchmark
    from codeblock_eval.execution.sandbox import Sandbox

    bench = get_benchmark("bigcodebench")
    problems = bench.load_problems(Path(args.data_dir) if args.data_dir else None)[args.start:][: args.limit]
    if args.tasks:
        problems = select_tasks(problems, args.tasks, args.sample, args.seed)
    t0 = time.perf_counter()
    state = bench.prepare(problems, Sandbox(getattr(bench, "limits", None)),
                          parallel=args.parallel, timeout_scale=args.timeout_scale)
    wall = time.perf_counter() - t0
    breakdown = state["exclusions"]
    summary = {"n_tasks": len(problems), "n_reference_pass": len(problems) - breakdown["n_excluded"],
               "n_excluded": breakdown["n_excluded"],
               "excluded_percent": round(100.0 * breakdown["n_excluded"] / max(len(problems), 1), 2),
               "excluded_by_cause": breakdown["by_cause"], "missing_libraries": breakdown["missing_libraries"],
               "wall_s": round(wall, 1), "reference_cache": state["reference_cache"],
               "environment_fingerprint": environment_fingerprint(), "parallel": args.parallel,
               "excluded": {t: {**c, "verdict": state["excluded"][t]} for t, c in breakdown["tasks"].items()}}
    print(json.dumps({k: v for k, v in summary.items() if k != "excluded"}, indent=2))
    print(state["exclusion_summary"])
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
