"""``--samples`` mode usability (issue 13 item 5): one-line warnings with counts, an empty file says so, a
non-string completion names its type, and ``--resume`` reuses the verdicts of an earlier run."""

from __future__ import annotations

import json

from codeblock_eval.cli import main

ROWS = [
    {"task_id": "HumanEval/0", "completion": "    return True\n"},
    {"task_id": "HumanEval/999", "completion": "x"},
    {"task_id": "HumanEval/2", "completion": "    return number % 1.0\n"},
]


def _write(path, rows, torn: str = ""):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + torn)
    return path


def _run(samples, out, data_dir, *extra):
    return main(["--samples", str(samples), "--benchmarks", "humaneval", "--output", str(out),
                 "--allow_code_execution", "--data_dir", str(data_dir), *extra])


def test_warnings_and_resume(tmp_path, data_dir, capsys):
    samples = _write(tmp_path / "s.jsonl", ROWS, torn='{"task_id": "HumanEval/3", "comp')
    assert _run(samples, tmp_path / "out", data_dir) == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "outside the benchmark" in x)
    assert "1 samples for tasks outside the benchmark" in line and "1 torn last line dropped" in line
    first = json.loads((tmp_path / "out" / "results.json").read_text())["benchmarks"]["humaneval"]
    assert first["n_samples"] == 2 and first["trust"] == "out_of_process"
    assert _run(samples, tmp_path / "out", data_dir, "--resume") == 0
    again = json.loads((tmp_path / "out" / "results.json").read_text())["benchmarks"]["humaneval"]
    assert any("resumed: 2 verdicts" in n for n in again["notes"])
    assert again["n_pass"] == first["n_pass"] == 1


def test_empty_file_and_non_string_completion(tmp_path, data_dir, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert _run(empty, tmp_path / "o1", data_dir) == 2
    assert "the samples file is empty" in capsys.readouterr().err
    bad = _write(tmp_path / "bad.jsonl", [{"task_id": "HumanEval/0", "completion": 5}])
    assert _run(bad, tmp_path / "o2", data_dir) == 2
    assert "'completion' is of type int" in capsys.readouterr().err
