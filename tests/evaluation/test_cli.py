"""CLI contract: both entry points, exit code 2 with one line for bad arguments, the code-execution gate before any
generation, shared generations for humaneval/humaneval+, --samples with completion/solution rows, results.json."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from codeblock_eval.cli import main
from support.tiny_lm import tiny_lm_dir  # noqa: F401  (fixture)


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err  # exactly one line
    assert err.startswith("codeblock-eval: error: ")
    return err


@pytest.mark.parametrize(
    "argv,needle",
    [
        ([], "exactly one of"),
        (["--model", "m", "--samples", "s.jsonl", "--benchmarks", "humaneval", "--output", "o"], "exactly one of"),
        (["--model", "m", "--benchmarks", "humaneval"], "--output is required"),
        (["--model", "m", "--output", "o", "--allow_code_execution"], "--benchmarks is required"),
        (["--model", "m", "--benchmarks", "humaneval", "--output", "o"], "--allow_code_execution"),
        (["--model", "m", "--benchmarks", "humaneval", "--output", "o", "--allow_code_execution", "--limit", "0"], "--limit must be >= 1"),
        (["--model", "m", "--benchmarks", "x", "--output", "o", "--allow_code_execution", "--n_samples", "3"], "needs --temperature"),
        (["--model", "m", "--benchmarks", "x", "--output", "o", "--allow_code_execution", "--backend", "tgi"], "invalid choice"),
        (["--model", "m", "--benchmarks", "x", "--output", "o", "--allow_code_execution", "--limit", "many"], "invalid int value"),
        (["--model", "m", "--benchmarks", "x", "--output", "o", "--allow_code_execution", "--adapter", "/nonexistent"], "not a PEFT adapter"),
        (["--samples", "/nonexistent.jsonl", "--benchmarks", "humaneval", "--output", "o", "--allow_code_execution"], "does not exist"),
        (["--compare", "/nonexistent", "--output", "r.md"], "has no results.json"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, needle, capsys):
    assert main(argv) == 2
    assert needle in _err_line(capsys)


def test_code_execution_gate_is_checked_before_generation(tiny_lm_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--model", str(tiny_lm_dir), "--benchmarks", "humaneval", "--output", str(out), "--limit", "1"]) == 2
    assert "--allow_code_execution" in _err_line(capsys)
    assert not out.exists()  # nothing generated, nothing written


def test_unknown_benchmark_lists_valid_names(tmp_path, capsys):
    from codeblock_eval.benchmarks.registry import list_benchmarks

    assert main(["--model", "m", "--benchmarks", "humaneval,nope", "--output", str(tmp_path), "--allow_code_execution"]) == 2
    err = _err_line(capsys)
    assert "nope" in err and "humaneval" in err
    assert "humaneval+" in list_benchmarks()


def test_missing_data_is_exit_2(tmp_path, capsys):
    argv = ["--model", "m", "--benchmarks", "mbpp+", "--output", str(tmp_path / "o"), "--allow_code_execution",
            "--data_dir", str(tmp_path)]
    assert main(argv) == 2
    assert "mbpp+" in _err_line(capsys) and not (tmp_path / "o").exists()


def test_unknown_model_is_exit_2(tmp_path, data_dir, capsys):
    argv = ["--model", "no-such-model", "--benchmarks", "humaneval", "--output", str(tmp_path / "o"),
            "--allow_code_execution", "--data_dir", str(data_dir), "--limit", "1"]
    assert main(argv) == 2
    assert "unknown model" in _err_line(capsys)


def _canonical_rows(data_dir: Path, n: int):
    with gzip.open(data_dir / "humaneval" / "HumanEval.jsonl.gz", "rt") as handle:
        tasks = [json.loads(line) for line, _ in zip(handle, range(n))]
    return tasks


def test_samples_mode_completion_and_solution_rows(tmp_path, data_dir, capsys):
    tasks = _canonical_rows(data_dir, 4)
    samples = tmp_path / "samples.jsonl"
    rows = [{"task_id": t["task_id"], "completion": t["canonical_solution"]} for t in tasks[:2]]
    rows += [{"task_id": t["task_id"], "solution": t["prompt"] + "    return None\n"} for t in tasks[2:]]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ext"
    argv = ["--samples", str(samples), "--benchmarks", "humaneval", "--output", str(out), "--allow_code_execution",
            "--data_dir", str(data_dir), "--limit", "4", "--parallel", "2"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    entry = results["benchmarks"]["humaneval"]
    assert results["schema_version"] == 1 and entry["n_tasks"] == 4 and entry["n_samples"] == 4
    assert entry["pass@1"] == pytest.approx(0.5)
    assert entry["dataset"]["sha256"] and entry["dataset"]["version"]
    for key in ("python", "torch", "transformers", "codeblock"):
        assert results["versions"][key]
    lines = [json.loads(line) for line in (out / "humaneval" / "eval_results.jsonl").read_text().splitlines()]
    assert {(r["task_id"], r["passed"], r["status"]) for r in lines} == {
        (tasks[0]["task_id"], True, "pass"), (tasks[1]["task_id"], True, "pass"),
        (tasks[2]["task_id"], False, "fail"), (tasks[3]["task_id"], False, "fail"),
    }
    assert "humaneval" in capsys.readouterr().out  # the rich table


def test_model_mode_shares_generation_and_writes_results(tiny_lm_dir, tmp_path, data_dir, capsys):
    out = tmp_path / "run"
    argv = ["--model", str(tiny_lm_dir), "--benchmarks", "humaneval,humaneval+", "--output", str(out),
            "--allow_code_execution", "--data_dir", str(data_dir), "--limit", "3", "--threads", "1",
            "--batch_size", "2", "--max_new_tokens", "8"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["benchmarks"]) == {"humaneval", "humaneval+"}
    assert results["model"] == str(tiny_lm_dir) and results["adapter"] is None
    assert results["generation"]["settings"]["max_new_tokens"] == 8
    families = results["generation"]["families"]
    assert families["humaneval"]["generated_tasks"] == 3
    assert families["humaneval+"] == {"generated_tasks": 0, "shared_tasks": {"humaneval": 3}}
    assert not (out / "humaneval+" / "samples.jsonl").exists()  # generated once, evaluated twice
    samples = (out / "humaneval" / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 3
    for bench in ("humaneval", "humaneval+"):
        lines = (out / bench / "eval_results.jsonl").read_text().splitlines()
        assert len(lines) == 3 and all({"task_id", "passed", "status"} <= set(json.loads(x)) for x in lines)
        assert results["benchmarks"][bench]["n_tasks"] == 3
    # Same output dir again without --resume: refused before loading the model.
    capsys.readouterr()
    assert main(argv) == 2
    assert "--resume" in _err_line(capsys)
    # With --resume nothing is regenerated; other settings are refused.
    assert main(argv + ["--resume"]) == 0
    assert (out / "humaneval" / "samples.jsonl").read_text().splitlines() == samples
    capsys.readouterr()
    assert main(argv[:-4] + ["--max_new_tokens", "9", "--resume"]) == 2
    assert "settings hash" in _err_line(capsys)


def test_humaneval_115_is_generated_separately_for_humaneval_plus(data_dir):
    """HumanEval+ re-indented one docstring: that task must not reuse the HumanEval generation; all others do."""
    from codeblock_eval.benchmarks.registry import get_benchmark
    from codeblock_eval.cli import plan_generation

    loaded = [(get_benchmark(name), get_benchmark(name).load_problems(data_dir)) for name in ("humaneval", "humaneval+")]
    plan = plan_generation(loaded)
    assert len(plan["humaneval"]["own"]) == 164
    assert [p.task_id for p in plan["humaneval+"]["own"]] == ["HumanEval/115"]
    assert sum(src == "humaneval" for src in plan["humaneval+"]["source"].values()) == 163


@pytest.mark.parametrize("entry", ["script", "console"])
def test_both_entry_points(entry, repo_root, tmp_path):
    if entry == "script":
        cmd = [sys.executable, str(repo_root / "eval" / "run_benchmarks.py")]
    else:
        exe = Path(sys.executable).with_name("codeblock-eval")
        if not exe.exists():
            pytest.skip("codeblock-eval console script not installed in this environment")
        cmd = [str(exe)]
    helped = subprocess.run(cmd + ["--help"], capture_output=True, text=True, cwd=repo_root)
    assert helped.returncode == 0 and "--allow_code_execution" in helped.stdout
    listed = subprocess.run(cmd + ["--list_benchmarks"], capture_output=True, text=True, cwd=repo_root)
    assert listed.returncode == 0 and "humaneval+" in listed.stdout.split()
    bad = subprocess.run(cmd + ["--model", "m", "--benchmarks", "humaneval", "--output", str(tmp_path)],
                         capture_output=True, text=True, cwd=repo_root)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--allow_code_execution" in bad.stderr


def test_script_works_without_installed_package(repo_root, tmp_path):
    """`python eval/run_benchmarks.py` from a bare checkout: the package is registered from eval/ itself."""
    code = (
        "import sys, runpy; sys.path[:] = [p for p in sys.path if 'site-packages' in p or 'lib/python' in p];"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in getattr(f, '__module__', '').lower()];"
        "import importlib.util; assert importlib.util.find_spec('codeblock_eval') is None;"
        f"sys.argv = ['run_benchmarks.py', '--help']; runpy.run_path({str(repo_root / 'eval' / 'run_benchmarks.py')!r}, run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "--allow_code_execution" in proc.stdout
