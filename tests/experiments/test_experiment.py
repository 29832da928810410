"""The experiment runner: config validation, the training mix, and a real smoke run of every arm type.

The smoke run is the headline experiment in miniature (recipes/experiments/smoke_tiny.yaml with a tiny random Llama):
real `codeblock prepare`, `codeblock train` and `codeblock-eval` subprocesses, so the runner cannot rot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from codeblock.config import ConfigError
from codeblock.experiments.config import ExperimentConfig

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes" / "experiments"


def _minimal(**changes):
    data = {"name": "t", "base_model": "m", "data": {"path": "x.jsonl"}, "benchmarks": ["humaneval"],
            "arms": [{"name": "full", "supervision": "full"}, {"name": "codeblock"}]}
    data.update(changes)
    return data


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_experiment_recipes_validate(path):
    cfg = ExperimentConfig.from_yaml(path)
    assert cfg.baseline_arm in [a.name for a in cfg.arms]
    lines = path.read_text().splitlines()[:6]
    assert any("Launch" in line for line in lines) and any("memory" in line or "VRAM" in line for line in lines)
    for arm in cfg.arms:  # every arm's CodeBlock knobs build a valid config
        assert cfg.codeblock_config(arm, seed=cfg.seeds[0]).seed == cfg.seeds[0]


@pytest.mark.parametrize("changes, message", [
    ({"arms": [{"name": "a"}, {"name": "a"}]}, "unique"),
    ({"arms": [{"name": "x", "supervision": "nonsense"}]}, "supervision"),
    ({"arms": [{"name": "x", "codeblock": {"budget_ratoi": 0.1}}]}, "budget_ratio"),
    ({"arms": [{"name": "x", "codeblock": {"budget_ratio": "abc"}}]}, "arm x: codeblock: budget_ratio must be a number"),
    ({"arms": [{"name": "x", "training": {"output_dir": "y"}}]}, "set by the runner"),
    ({"trainig": {}}, "training"),
    ({"eval": {"limt": 3}}, "unknown keys"),
    ({"data": {"path": "x", "sources": ["mbpp-train"]}}, "exactly one"),
    ({"baseline_arm": "nope"}, "not an arm"),
    ({"arms": [{"name": "a/b"}]}, "folder names"),
])
def test_experiment_config_errors_are_actionable(changes, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_dict(_minimal(**changes))


def test_full_arm_defaults_to_dense_loss_and_is_the_baseline():
    cfg = ExperimentConfig.from_dict(_minimal())
    full, codeblock = cfg.arms
    assert (full.sparse_loss, codeblock.sparse_loss) == (False, True)
    assert cfg.baseline_arm == "full"


def test_training_mix_excludes_test_ids_and_contamination(data_dir, tmp_path):
    from codeblock.experiments.data import build_training_mix, mbppplus_ids

    manifest = build_training_mix(data_dir, ["mbpp-train"], tmp_path / "train.jsonl", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    ids = {int(r["source_id"].split("/")[1]) for r in rows}
    assert ids and min(ids) >= 601 and max(ids) <= 974  # never the test split 11-510
    assert not ids & mbppplus_ids(data_dir)  # MBPP+ draws 108 tasks from ids >= 601: none may be trained on
    info = manifest["sources"]["mbpp-train"]
    assert info["n_split"] == 374 and info["excluded_mbppplus_ids"] == 108
    assert manifest["n_rows"] == len(rows) == info["n_rows"] - manifest["decontamination"]["n_contaminated"]
    assert rows[0]["response"].startswith("```python\n") and "Your code should pass these tests" in rows[0]["instruction"]


def _committed_copy(repo: Path, clone: Path) -> list[str]:
    """What ``git add`` keeps of ``repo`` under the project's real .gitignore, copied to ``clone``: a fresh clone."""
    import shutil

    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    files = subprocess.run([*git, "ls-files"], check=True, capture_output=True, text=True).stdout.split()
    for f in files:
        (clone / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(repo / f, clone / f)
    return files


@pytest.mark.slow
def test_smoke_experiment_runs_every_arm_and_resumes_from_a_fresh_clone(tiny_model_dir, data_dir, tmp_path):
    raw = yaml.safe_load((RECIPES / "smoke_tiny.yaml").read_text())
    raw["base_model"] = str(tiny_model_dir)
    raw["codeblock"].update(pair_selector="ifd", pair_keep_ratio=0.6)  # the shared IFD step and its score packs
    cfg_path = tmp_path / "smoke.yaml"
    cfg_path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "repo" / "results" / "smoke"
    env = {**os.environ, "CODEBLOCK_DATA_DIR": str(data_dir), "CODEBLOCK_CACHE_DIR": str(tmp_path / "cache"),
           "TQDM_DISABLE": "1"}

    def cli(*args, folder=out):
        return subprocess.run([sys.executable, "-m", "codeblock.cli", "experiment", str(cfg_path), "--out", str(folder),
                               *args], env=env, capture_output=True, text=True, timeout=1200)

    def plan(folder=out):
        res = cli("--dry-run", folder=folder)
        assert res.returncode == 0, res.stderr[-3000:]
        return {line.split(None, 1)[1]: line.split()[0] for line in res.stdout.splitlines() if line.strip()}

    res = cli()
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    labels = [r["label"] for r in summary["runs"]]
    assert labels[0] == "full-s1" and set(labels) == {"base", "full-s1", "codeblock-s1", "random_tokens-s1",
                                                      "token_cleaning-s1"}
    report = (out / "report.md").read_text()
    assert all(label in report for label in labels) and "McNemar" in report and (out / "report.png").stat().st_size
    assert "Against the untrained model" in report and summary["compare_vs_base"]["benchmarks"]
    facts = {r["label"]: r["facts"] for r in summary["runs"]}
    assert facts["base"] == {}
    for label in (x for x in labels if x != "base"):
        assert facts[label]["global_step"] == 2 and facts[label]["train_wall_s"] > 0 and facts[label]["peak_memory_mb"] > 0
        results = json.loads((out / "eval" / label / "results.json").read_text())
        assert results["adapter"] and {b["n_tasks"] for b in results["benchmarks"].values()} == {5}
    assert facts["full-s1"]["supervised_fraction"] == 1.0
    assert 0 < facts["codeblock-s1"]["supervised_fraction"] < 1.0
    assert 0 < facts["token_cleaning-s1"]["supervised_fraction"] < 1.0
    assert (out / "reference" / "s1" / "merged" / "config.json").is_file()  # Token Cleaning's reference model
    # One shared IFD step: per-row scores committed, every arm kept exactly its pairs, and the passes are packed.
    pair_rows = [json.loads(x) for x in (out / "pairs" / "s1" / "prepared" / "pair_scores.jsonl").read_text().splitlines()]
    kept = sorted(r["example_index"] for r in pair_rows if r["kept"])
    for arm in ("full", "codeblock", "token_cleaning"):
        sel = (out / "arms" / f"{arm}-s1" / "prepared" / "selection.jsonl").read_text().splitlines()
        assert sorted(json.loads(x)["index"] for x in sel) == kept
        assert '"text"' not in sel[0]  # committed selections carry spans and scores, not the training text
    assert list((out / "scores").glob("*.logp.gz"))
    assert str(tmp_path) not in "".join(p.read_text() for p in out.rglob(".step.json"))

    # Nothing changed: every step is skipped.
    assert set(plan().values()) == {"done"}
    # One arm's knob changed: only that arm's prepare/train/eval rerun.
    raw["arms"][3]["codeblock"] = {"budget_ratio": 0.2}
    cfg_path.write_text(yaml.safe_dump(raw))
    assert sorted(k for k, v in plan().items() if v == "run") == [
        "eval random_tokens-s1", "prepare random_tokens-s1", "train random_tokens-s1"]
    raw["arms"][3].pop("codeblock")
    cfg_path.write_text(yaml.safe_dump(raw))

    # A fresh clone elsewhere (only what git keeps: no adapters, merged models, token rows, caches or data copies)
    # counts every committed step as done ...
    clone = tmp_path / "clone" / "results" / "smoke"
    files = _committed_copy(tmp_path / "repo", tmp_path / "clone")
    assert not [f for f in files if f.endswith((".safetensors", ".sqlite", "train.jsonl"))], files
    assert sum((tmp_path / "clone" / f).stat().st_size for f in files) < 5_000_000
    assert set(plan(clone).values()) == {"done"}
    # ... and an evaluation cut mid-way (marker gone, last sample line torn) resumes there: the adapter it needs is
    # retrained from the score packs (no model pass repeated), reproduces the committed weights, and only the
    # missing samples are generated.
    ev = clone / "eval" / "codeblock-s1"
    (ev / ".step.json").unlink()
    samples = ev / "humaneval" / "samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines[:2]) + lines[2][:10])
    (ev / "results.json").unlink()
    cut = plan(clone)
    assert sorted(k for k, v in cut.items() if v == "run") == ["eval codeblock-s1"]
    assert sorted(k for k, v in cut.items() if v == "rebuild") == ["prepare codeblock-s1", "train codeblock-s1"]
    res = cli(folder=clone)
    assert res.returncode == 0, res.stderr[-3000:]
    prep_stats = json.loads((clone / "arms" / "codeblock-s1" / "prepared" / "stats.json").read_text())
    assert prep_stats["scoring"]["forward_rows"] == 0 and prep_stats["scoring"]["cached_rows"] > 0
    marker = json.loads((clone / "arms" / "codeblock-s1" / "adapter" / ".step.json").read_text())
    assert marker["reproduced"] is True
    stats = json.loads((ev / "results.json").read_text())["generation"]["families"]["humaneval"]["stats"]
    assert stats["n_generated"] == 3 and stats["n_skipped_existing"] == 2
    assert set(plan(clone).values()) == {"done"}


def test_missing_training_source_is_one_line_not_a_traceback(tmp_path):
    cfg = RECIPES / "qwen0.5b_cpu_headline.yaml"
    env = {k: v for k, v in os.environ.items() if k != "CODEBLOCK_DATA_DIR"}
    res = subprocess.run([sys.executable, "-m", "codeblock.cli", "experiment", str(cfg), "--out", str(tmp_path / "x"),
                          "--data_dir", str(tmp_path / "no-mirror"), "--arms", "codeblock"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "gpteacher-python" in res.stderr and "CODEBLOCK_DATA_DIR" in res.stderr


def test_a_new_scoring_revision_rescores_committed_samples_instead_of_generating_them_again(tmp_path):
    """A harness fix (``codeblock_eval.SCORING_REVISION``) reruns finished evaluations on their kept samples; new
    generation inputs still discard them. The eval subprocess is replaced by `true`: the decision is the runner's."""
    from codeblock.experiments.runner import MARKER, Runner

    runner = Runner(ExperimentConfig.from_dict(_minimal()), tmp_path / "exp", python="/bin/true")
    folder, upstream = tmp_path / "exp" / "eval" / "full-s1", "upstream-fp"
    samples = folder / "humaneval" / "samples.jsonl"
    samples.parent.mkdir(parents=True)
    samples.write_text('{"task_id": "HumanEval/0"}\n')
    # A marker written before scoring revisions existed: its fingerprint is the samples' fingerprint.
    (folder / MARKER).write_text(json.dumps({"fingerprint": runner.samples_fp(upstream)}))
    runner.evaluate("full-s1", None, upstream)
    marker = json.loads((folder / MARKER).read_text())
    assert marker["fingerprint"] == runner.eval_fp(upstream) != runner.samples_fp(upstream)
    assert marker["samples_fingerprint"] == runner.samples_fp(upstream) and samples.is_file()
    assert runner.plan[-1] == {"step": "eval full-s1", "status": "run"}
    runner.evaluate("full-s1", None, upstream)  # scored by this revision: nothing to do
    assert runner.plan[-1] == {"step": "eval full-s1", "status": "done"}
    runner.evaluate("full-s1", None, "other-upstream")  # another adapter: its samples are not these
    assert not samples.exists()


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_each_recipes_launch_line_parses_as_written(path):
    """The `# Launch:` line of every recipe (also the README's command) is accepted by `codeblock experiment`."""
    import shlex

    from codeblock.cli import build_parser

    launch = next(line.split("Launch:", 1)[1] for line in path.read_text().splitlines() if "Launch:" in line)
    argv = shlex.split(launch.split("(", 1)[0])
    assert argv[:2] == ["codeblock", "experiment"], launch
    parser, _ = build_parser("experiment")
    args = parser.parse_args(argv[2:] + ["--dry_run"])
    assert args.out and args.dry_run and Path(args.config) == path.relative_to(ROOT)


def test_the_report_is_rewritten_after_each_evaluation_so_a_cut_run_commits_its_finished_arms(tmp_path, monkeypatch):
    """A run spread over several working periods commits report.md/summary.json covering every arm evaluated so far,
    not a stale report from an earlier run. Steps are replaced by copies of the published evaluations (real
    results.json and eval_results.jsonl through the real report); the third arm's step fails like a cut period."""
    import shutil

    from codeblock.experiments.runner import ExperimentError, Runner

    published = ROOT / "results" / "qwen0.5b-cpu-headline" / "eval"
    cfg = ExperimentConfig.from_yaml(RECIPES / "qwen0.5b_cpu_headline.yaml")
    out = tmp_path / "exp"
    runner = Runner(cfg, out)

    def finished(label: str) -> Path:
        folder = out / "eval" / label
        shutil.copytree(published / label, folder, ignore=shutil.ignore_patterns("samples.jsonl"))
        return folder

    def arm(spec, seed, *args):
        if spec.name != "full":
            raise ExperimentError(f"train {spec.name}-s{seed}: cut")
        return finished(f"{spec.name}-s{seed}")

    monkeypatch.setattr(runner, "data", lambda: (tmp_path / "train.jsonl", "data-fp"))
    monkeypatch.setattr(runner, "pairs", lambda *args: tmp_path / "pairs")
    monkeypatch.setattr(runner, "reference_fp", lambda *args: "ref-fp")
    monkeypatch.setattr(runner, "evaluate", lambda label, *args: finished(label))
    monkeypatch.setattr(runner, "arm", arm)
    with pytest.raises(ExperimentError, match="cut"):
        runner.run()
    summary = json.loads((out / "summary.json").read_text())
    assert [r["label"] for r in summary["runs"]] == ["full-s42", "base"]
    assert str(tmp_path) not in (out / "summary.json").read_text()  # the same bytes wherever the folder lies
    assert summary["compare_vs_base"]["benchmarks"]["mbpp"]
    assert "McNemar" in (out / "report.md").read_text()
