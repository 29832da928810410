"""MultiPL-E: hand-written correct completions pass, wrong ones fail, in C++, Java, JavaScript and Rust.

MultiPL-E has no canonical solutions; these completions were written for this test (3 tasks per language).
"""

from __future__ import annotations

import pytest

from codeblock_eval.benchmarks.multipl_e import MultiPLE, add_proof, truncate_at_stops

GOOD = {
    "cpp": {
        "HumanEval_0_has_close_elements": "    for (size_t i = 0; i < numbers.size(); i++)\n"
        "        for (size_t j = i + 1; j < numbers.size(); j++)\n"
        "            if (std::abs(numbers[i] - numbers[j]) < threshold) return true;\n    return false;\n}\n",
        "HumanEval_23_strlen": "    return string.size();\n}\n",
        "HumanEval_53_add": "    return x + y;\n}\n",
    },
    "java": {
        "HumanEval_0_has_close_elements": "        for (int i = 0; i < numbers.size(); i++)\n"
        "            for (int j = i + 1; j < numbers.size(); j++)\n"
        "                if (Math.abs(numbers.get(i) - numbers.get(j)) < threshold) return true;\n"
        "        return false;\n    }\n",
        "HumanEval_23_strlen": "        return string.length();\n    }\n",
        "HumanEval_53_add": "        return x + y;\n    }\n",
    },
    "js": {
        "HumanEval_0_has_close_elements": "  for (let i = 0; i < numbers.length; i++)\n"
        "    for (let j = i + 1; j < numbers.length; j++)\n"
        "      if (Math.abs(numbers[i] - numbers[j]) < threshold) return true;\n  return false;\n}\n",
        "HumanEval_23_strlen": "  return string.length;\n}\n",
        "HumanEval_53_add": "  return x + y;\n}\n",
    },
    "rs": {
        "HumanEval_0_has_close_elements": "    for i in 0..numbers.len() {\n        for j in (i + 1)..numbers.len() {\n"
        "            if (numbers[i] - numbers[j]).abs() < threshold { return true; }\n        }\n    }\n"
        "    false\n}\n",
        "HumanEval_23_strlen": "    string.len() as isize\n}\n",
        "HumanEval_53_add": "    x + y\n}\n",
    },
}
WRONG = {
    "cpp": {"HumanEval_53_add": "    return x - y;\n}\n", "HumanEval_23_strlen": "    return string.size( ;\n}\n"},
    "java": {"HumanEval_53_add": "        return x * y;\n    }\n", "HumanEval_23_strlen": "        System.exit(0); return 0;\n    }\n"},
    "js": {"HumanEval_53_add": "  return x - y;\n}\n", "HumanEval_23_strlen": "  process.exit(0);\n}\n"},
    "rs": {"HumanEval_53_add": "    x - y\n}\n", "HumanEval_23_strlen": "    std::process::exit(0)\n}\n"},
}


def test_truncate_and_proof_insertion():
    assert truncate_at_stops("  return 1;\n}\nint main", ["\n}"]) == "  return 1;"
    program = add_proof("cpp", "int f() {\n}\nint main() {\n    assert(1);\n}\n")
    assert program.startswith("#include <unistd.h>") and program.rstrip().endswith("}")
    assert program.index("read(3") > program.index("assert(1)")


@pytest.mark.parametrize("lang", ["cpp", "java", "js", "rs"])
def test_handwritten_solutions(lang, data_dir, sandbox, tmp_path, leftovers):
    from codeblock_eval.execution.evaluate import evaluate_samples

    bench = MultiPLE(lang)
    problems = [p for p in bench.load_problems(data_dir) if p.task_id in GOOD[lang]]
    assert len(problems) == 3
    samples = [{"task_id": t, "completion": c} for t, c in GOOD[lang].items()]
    samples += [{"task_id": t, "completion": c} for t, c in WRONG[lang].items()]
    # Chat style: the reply restates the whole function (it is then the full program, not a continuation).
    add = next(p for p in problems if p.task_id == "HumanEval_53_add")
    whole = add.prompt + GOOD[lang]["HumanEval_53_add"]
    samples.append({"task_id": "HumanEval_53_add", "completion": whole, "solution": whole})
    summary = evaluate_samples(bench, problems, samples, out_dir=tmp_path, allow_code_execution=True,
                               sandbox=sandbox, progress=False, parallel=2)
    assert summary["n_samples"] == 6 and summary["n_error"] == 0, summary
    assert summary["n_pass"] == 4, (tmp_path / "eval_results.jsonl").read_text()
    assert not leftovers()
