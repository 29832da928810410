"""Benchmark: structure-stage throughput vs a bare tree-sitter parse of the same inputs.

For the 164 HumanEval canonical solutions and the 974 MBPP reference solutions, measures in one
run (interleaved repeats, best of N to damp noise on a shared CPU):

* bare parse: ``tree_sitter.Parser.parse`` of each program's UTF-8 bytes;
* structure stage: ``analyze_code`` (parse + items + core leaves + def/use + reach/bridge) and
  ``analyze_response`` on the program wrapped in a fenced markdown reply.

Prints programs/second and the time ratio to the bare parse (target: <= 2x).

    python eval/perf/bench_structure.py [--data_dir DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import tree_sitter
import tree_sitter_python
from rich.console import Console
from rich.table import Table

from codeblock.structure.analysis import analyze_code, analyze_response


def load_programs(data_dir: Path) -> dict[str, list[str]]:
    def rows(path):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]

    humaneval = [r["prompt"] + r["canonical_solution"] for r in rows(data_dir / "humaneval" / "HumanEval.jsonl.gz")]
    mbpp = [r["code"] for r in rows(data_dir / "mbpp" / "mbpp.jsonl.gz")]
    return {"HumanEval (164)": humaneval, "MBPP (974)": mbpp}


def time_once(fn, inputs) -> float:
    start = time.perf_counter()
    for item in inputs:
        fn(item)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=os.environ.get("CODEBLOCK_DATA_DIR", str(Path(__file__).resolve().parents[2].parent / "shared" / "data")))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    if not (data_dir / "humaneval" / "HumanEval.jsonl.gz").exists():
        print(f"bench_structure: no data at {data_dir}; pass --data_dir", file=sys.stderr)
        return 2
    ts_parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))

    def bare(program):
        ts_parser.parse(program.encode("utf-8"))

    def structure(program):
        analyze_code(program, "python")

    def response(program):
        analyze_response("Here you go:\n\n```python\n" + program + "\n```\n")

    table = Table(title="Structure stage vs bare tree-sitter parse (best of %d)" % args.repeats)
    for column in ("inputs", "bare parse/s", "analyze_code/s", "ratio", "analyze_response/s", "ratio"):
        table.add_column(column, justify="right")
    worst = 0.0
    for name, programs in load_programs(data_dir).items():
        best = {"bare": float("inf"), "code": float("inf"), "resp": float("inf")}
        for _ in range(args.repeats):  # interleave so drift hits all three alike
            best["bare"] = min(best["bare"], time_once(bare, programs))
            best["code"] = min(best["code"], time_once(structure, programs))
            best["resp"] = min(best["resp"], time_once(response, programs))
        n = len(programs)
        ratio_code, ratio_resp = best["code"] / best["bare"], best["resp"] / best["bare"]
        worst = max(worst, ratio_code, ratio_resp)
        table.add_row(name, f"{n / best['bare']:.0f}", f"{n / best['code']:.0f}", f"{ratio_code:.2f}x",
                      f"{n / best['resp']:.0f}", f"{ratio_resp:.2f}x")
    Console().print(table)
    print(f"worst ratio: {worst:.2f}x (target <= 2x): {'OK' if worst <= 2 else 'ABOVE TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
