"""Decontamination: planted benchmark solutions are caught (verbatim, renamed, reformatted); unrelated code is not."""

from __future__ import annotations

import ast
import builtins
import json
import random
import warnings

import pytest
from support.hyg_helpers import read_gz, read_jsonl, write_jsonl

from codeblock.cli import main
from codeblock.hygiene.decontaminate import DecontamConfig, Matcher, decontaminate_rows
from codeblock.hygiene.normalize import function_fingerprints


class _Rename(ast.NodeTransformer):
    """Rename every non-builtin identifier (function, args, locals) to an unrelated name; drop docstrings."""

    def __init__(self):
        self.map: dict[str, str] = {}

    def _n(self, name):
        if name in dir(builtins) or name in ("self",):
            return name
        return self.map.setdefault(name, f"zz_{len(self.map)}_renamed")

    def visit_FunctionDef(self, node):
        node.name = self._n(node.name)
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            node.body = node.body[1:] or [ast.Pass()]
        self.generic_visit(node)
        return node

    def visit_arg(self, node):
        node.arg = self._n(node.arg)
        return node

    def visit_Name(self, node):
        node.id = self._n(node.id)
        return node


def renamed(source: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # benchmark sources have odd escapes ("\\A" in regexes)
        tree = ast.parse(source)
    tree.body = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.Import, ast.ImportFrom))]
    return ast.unparse(_Rename().visit(tree))


def reformatted(source: str) -> str:
    # 4-space indents become 2, operators and commas get extra spaces, quotes flip: tokens stay the same.
    out = []
    for line in source.splitlines():
        stripped = line.lstrip(" ")
        indent = (len(line) - len(stripped)) // 2
        out.append(" " * indent + stripped.replace(",", " ,  ").replace("(", "( ").replace("'", '"'))
    return "\n".join(out) + "\n"


def _row(response: str, instruction: str = "Solve the task.") -> dict:
    return {"instruction": instruction, "input": "", "response": response}


def _pick(records, n, seed=0):
    return random.Random(seed).sample(records, n)


def test_verbatim_plants_of_every_benchmark_are_caught(bench_index, data_dir):
    he = _pick(read_gz(data_dir / "humaneval/HumanEval.jsonl.gz"), 4)
    hep = _pick(read_gz(data_dir / "humanevalplus/HumanEvalPlus-v0.1.10.jsonl.gz"), 2, seed=1)
    mbpp = _pick(read_gz(data_dir / "mbpp/mbpp.jsonl.gz"), 4)
    mbppp = _pick(read_gz(data_dir / "mbppplus/MbppPlus-v0.2.0.jsonl.gz"), 2, seed=2)
    bcb = _pick(read_gz(data_dir / "bigcodebench/BigCodeBench-v0.1.0.jsonl.gz"), 4)
    mpe = _pick(read_gz(data_dir / "multipl-e/humaneval-js-reworded.jsonl.gz"), 2)
    planted = (
        [(_row(r["prompt"] + r["canonical_solution"]), r["task_id"]) for r in he + hep]
        + [(_row(r["code"], r["text"]), str(r["task_id"])) for r in mbpp]
        + [(_row(r["canonical_solution"]), r["task_id"]) for r in mbppp]
        + [(_row(r["complete_prompt"] + r["canonical_solution"]), r["task_id"]) for r in bcb]
        + [(_row(r["prompt"] + "  return 0;\n}\n" + r["tests"]), f"js/{r['name']}") for r in mpe]
        # tests only (MBPP asserts), no solution
        + [(_row("\n".join(r["test_list"])), str(r["task_id"])) for r in mbpp[:2]]
    )
    matcher = Matcher(bench_index)
    for row, task_id in planted:
        hits = matcher.scan_row(row, ["instruction", "response"])
        assert task_id in {m["task_id"] for m in hits}, f"planted {task_id} not caught"


def test_renamed_and_reformatted_solutions_are_caught(bench_index, data_dir):
    tasks = [r for r in read_gz(data_dir / "humaneval/HumanEval.jsonl.gz")
             if function_fingerprints(r["prompt"] + r["canonical_solution"])]
    mbpp = [r for r in read_gz(data_dir / "mbpp/mbpp.jsonl.gz") if function_fingerprints(r["code"])]
    assert len(tasks) > 30 and len(mbpp) > 100  # the AST detector has material to work with
    cases = [(r["prompt"] + r["canonical_solution"], r["task_id"]) for r in _pick(tasks, 8)]
    cases += [(r["code"], str(r["task_id"])) for r in _pick(mbpp, 8)]
    matcher = Matcher(bench_index)
    for source, task_id in cases:
        variant = renamed(source)
        assert "zz_0_renamed" in variant
        hits = matcher.scan_row(_row(variant), ["response"])
        found = {m["task_id"]: m["reason"] for m in hits}
        assert found.get(task_id) == "function_ast", f"renamed {task_id}: {found}"
        hits = matcher.scan_row(_row(reformatted(source)), ["response"])
        assert task_id in {m["task_id"] for m in hits}, f"reformatted {task_id} not caught"


UNRELATED = [
    'class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n        self.items.append(x)\n'
    '\n    def pop(self):\n        return self.items.pop()\n\n\nif __name__ == "__main__":\n    s = Stack()\n    s.push(1)\n',
    'import unittest\n\n\nclass TestCases(unittest.TestCase):\n    def setUp(self):\n        self.data = [1, 2]\n\n'
    '    def test_case_1(self):\n        self.assertEqual(len(self.data), 2)\n\n\nif __name__ == "__main__":\n'
    '    unittest.main()\n',
    'import pandas as pd\nimport matplotlib.pyplot as plt\n\ndf = pd.read_csv("sales.csv")\n'
    'df.groupby("region")["revenue"].sum().plot(kind="bar")\nplt.show()\n',
    "function debounce(fn, ms) {\n  let t;\n  return (...args) => {\n    clearTimeout(t);\n"
    "    t = setTimeout(() => fn(...args), ms);\n  };\n}\n",
    "SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id HAVING COUNT(*) > 5;",
]


def test_boilerplate_and_unrelated_code_is_not_flagged(bench_index):
    kept, report, stats = decontaminate_rows([_row(c) for c in UNRELATED], bench_index, ["instruction", "response"],
                                             progress=False)
    assert report == [] and len(kept) == len(UNRELATED)


def test_false_positive_rate_on_gpteacher_is_small(bench_index, data_dir):
    rows = read_gz(data_dir / "gpteacher-codegen/codegen-instruct.jsonl.gz")
    kept, report, stats = decontaminate_rows(rows, bench_index, ["instruction", "input", "response"], progress=False)
    # Hand inspection (see the report): 8 of 4,535 rows flagged with default thresholds; 4 are generic bubble
    # sorts matching MBPP/101's bubble-sort body (false positives), 4 are the same problem as a benchmark task.
    # Guard: at most 0.5% of rows flagged, and no flagged row comes from plain boilerplate.
    assert stats["n_contaminated"] <= 0.005 * len(rows), stats
    assert stats["n_contaminated"] >= 1  # GPTeacher does contain MBPP/HumanEval problems (e.g. gcd, MBPP 395)


def test_thresholds_are_configurable(bench_index, data_dir):
    r = read_gz(data_dir / "humaneval/HumanEval.jsonl.gz")[12]
    row = _row(r["prompt"] + r["canonical_solution"])
    assert Matcher(bench_index).scan_row(row, ["response"])
    strict = DecontamConfig(min_fraction=1.01, long_hits=10_000, functions=False, short_prompts=False)
    assert Matcher(bench_index, strict).scan_row(row, ["response"]) == []


def test_cli_writes_outputs_counts_skips_and_reuses_cache(tmp_path, data_dir, index_cache, bench_index, capsys):
    he = read_gz(data_dir / "humaneval/HumanEval.jsonl.gz")
    rows = [_row(UNRELATED[0]), "{not json", _row(he[5]["prompt"] + he[5]["canonical_solution"]),
            {"instruction": 3, "response": "x"}, _row(UNRELATED[2])]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    out = tmp_path / "out"
    rc = main(["decontaminate", "--data", str(data), "--out", str(out), "--benchmarks", "all",
               "--data_dir", str(data_dir), "--cache_dir", str(index_cache)])
    assert rc == 0
    report = read_jsonl(out / "report.jsonl")
    flagged = [r for r in report if "benchmark" in r]
    assert [(r["row"], r["task_id"]) for r in flagged] == [(2, "HumanEval/5")]
    assert {r["row"]: r["reason"] for r in report if "benchmark" not in r} == {1: "bad_json", 3: "bad_type:instruction"}
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["n_input"], stats["n_skipped"], stats["n_contaminated"], stats["n_written"]) == (5, 2, 1, 2)
    assert len(read_jsonl(out / "data.jsonl")) == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extra"]["index_built_now"] is False  # the session index was cached with the same key
    assert set(manifest["outputs"]) == {"data.jsonl", "report.jsonl", "stats.json"}
    assert main(["verify", str(out)]) == 0


def test_cli_usage_errors_exit_2(tmp_path, data_dir, capsys):
    assert main(["decontaminate", "--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"),
                 "--data_dir", str(data_dir)]) == 2
    assert "not found" in capsys.readouterr().err
    data = write_jsonl(tmp_path / "d.jsonl", [_row("x = 1")])
    assert main(["decontaminate", "--data", str(data), "--out", str(tmp_path / "o"), "--benchmarks", "nope",
                 "--data_dir", str(data_dir)]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


@pytest.mark.parametrize("source", ["def f(:\n  pass", "no code here", "def g():\n    return 1\n" * 3])
def test_fingerprints_never_crash(source):
    assert isinstance(function_fingerprints(source, min_nodes=1), list)


def test_short_benchmark_prompt_in_an_instruction_is_caught(bench_index, data_dir):
    from codeblock.hygiene.normalize import text_tokens

    short = [r for r in read_gz(data_dir / "mbpp/mbpp.jsonl.gz") if 8 <= len(text_tokens(r["text"])) < 13][:5]
    assert short
    only_exact = DecontamConfig(min_fraction=1.01, long_hits=10**9, functions=False, short_prompts=True)
    for r in short:
        row = {"instruction": "Please help. " + r["text"].upper() + " Thanks!", "response": "..."}
        hits = Matcher(bench_index, only_exact).scan_row(row, ["instruction", "response"])
        assert (str(r["task_id"]), "prompt_exact") in {(m["task_id"], m["reason"]) for m in hits}
        assert Matcher(bench_index, DecontamConfig(short_prompts=False, min_fraction=1.01, long_hits=10**9,
                                                   functions=False)).scan_row(row, ["instruction"]) == []


def test_report_only_keeps_every_row(tmp_path, data_dir, index_cache, bench_index):
    he = read_gz(data_dir / "humaneval/HumanEval.jsonl.gz")[7]
    data = write_jsonl(tmp_path / "t.jsonl", [_row(he["prompt"] + he["canonical_solution"]), _row(UNRELATED[3])])
    out = tmp_path / "o"
    assert main(["decontaminate", "--data", str(data), "--out", str(out), "--report_only",
                 "--data_dir", str(data_dir), "--cache_dir", str(index_cache)]) == 0
    assert len(read_jsonl(out / "data.jsonl")) == 2
    assert [(r["row"], r["task_id"]) for r in read_jsonl(out / "report.jsonl")] == [(0, "HumanEval/7")]


def test_min_fraction_default_decides_partial_copies(bench_index, data_dir):
    """A long row (unrelated code around it) holding 80% of a benchmark solution is flagged by the n-gram rule at the
    default min_fraction (0.6 of the shorter field's n-grams); 40% is not. Raising or lowering the default makes
    this test fail."""
    # the solution field alone (the prompt is indexed as a field of its own)
    tasks = sorted(read_gz(data_dir / "humaneval/HumanEval.jsonl.gz"), key=lambda r: -len(r["canonical_solution"]))
    source = tasks[0]["canonical_solution"]
    only_ngrams = DecontamConfig(functions=False, short_prompts=False, long_hits=10**6)
    assert DecontamConfig().min_fraction == only_ngrams.min_fraction
    lines = source.splitlines(keepends=True)

    def flagged(share: float) -> bool:
        padding = "\n".join(UNRELATED[:3]) * 4  # longer than the benchmark field: coverage counts against it
        row = _row(padding + "\n" + "".join(lines[: round(share * len(lines))]) + "\n" + padding)
        return tasks[0]["task_id"] in {m["task_id"] for m in Matcher(bench_index, only_ngrams).scan_row(row, ["response"])}

    assert flagged(0.8) and not flagged(0.4)
