"""The published experiment's committed steps stay finished under the current code.

Step fingerprints hold configs, data hashes and upstream fingerprints, not code versions; a change that alters one of
them (a new knob in ``CodeBlockConfig.to_dict()``, a renamed eval setting) would silently make the next working period
redo hours of committed work (the shared IFD step alone is ~75-110 CPU minutes). This test reads the committed
``results/qwen0.5b-cpu-headline/`` (a copy of its git-tracked files) with ``--dry_run`` and fails when a step whose
marker is committed would run again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from codeblock.config import FINGERPRINT_NEUTRAL, CodeBlockConfig

EXPERIMENT = "qwen0.5b-cpu-headline"


def test_neutral_knobs_leave_fingerprints_alone():
    base = CodeBlockConfig().to_dict()
    neutral = CodeBlockConfig(**FINGERPRINT_NEUTRAL).fingerprint_dict()
    assert neutral == {k: v for k, v in base.items() if k not in FINGERPRINT_NEUTRAL}
    # Any other value is part of the fingerprint: a different hygiene or batching setting redoes the step.
    for key, value in {"decontaminate": "all", "scan_secrets": "redact", "scoring_batching": "row"}.items():
        assert CodeBlockConfig(**{**FINGERPRINT_NEUTRAL, key: value}).fingerprint_dict()[key] == value


def test_committed_headline_steps_stay_done(repo_root, data_dir, tmp_path):
    published = repo_root / "results" / EXPERIMENT
    tracked = subprocess.run(["git", "ls-files", "--", f"results/{EXPERIMENT}"], cwd=repo_root, check=True,
                             capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout of the repository (no tracked results)")
    for name in tracked:  # only what git keeps: the state a fresh clone has
        target = tmp_path / EXPERIMENT / name.split(f"results/{EXPERIMENT}/", 1)[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo_root / name, target)
    committed = {json.loads(p.read_text())["step"] for p in (tmp_path / EXPERIMENT).rglob(".step.json")}
    assert {"data", "eval base"} <= committed, committed
    res = subprocess.run([sys.executable, "-m", "codeblock.cli", "experiment",
                          str(repo_root / "recipes" / "experiments" / f"{EXPERIMENT.replace('-', '_')}.yaml"),
                          "--output", str(tmp_path / EXPERIMENT), "--data_dir", str(data_dir), "--dry_run"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    plan = dict(line.strip().split(None, 1)[::-1] for line in res.stdout.splitlines()
                if line.strip().startswith(("done ", "run ", "rebuild ")))
    # "rebuild" (ignored outputs such as an adapter regenerated for a later step) is fine; "run" means redone work.
    redone = sorted(step for step in committed if plan.get(step) == "run")
    assert not redone, f"committed steps would run again: {redone}\n{res.stdout}"
    # Token Cleaning's reference is planned only inside the prepare step that needs it: once that arm is finished it
    # is not in the plan at all. Any other committed step must be planned.
    unplanned = sorted(step for step in committed if step not in plan and not step.startswith("reference "))
    assert not unplanned, f"committed steps missing from the plan: {unplanned}\n{res.stdout}"
    assert published.exists()
