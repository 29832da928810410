"""``results.json`` (schema version 1) and the terminal summary table.

One file per run directory::

    {"schema_version": 1,
     "benchmarks": {"humaneval": {"pass@1": 0.43, "n_tasks": 164, "n_samples": 164, "timeouts": 0,
                                  "status_counts": {...}, "dataset": {"name", "version", "path", "sha256"},
                                  "samples_file": "humaneval/samples.jsonl", "eval_results": "humaneval/eval_results.jsonl", ...}},
     "model": "...", "adapter": null, "generation": {...settings, "settings_hash", per-family stats...},
     "versions": {"python", "torch", "transformers", "codeblock", ...}, "date": "...Z", "command": "..."}

Benchmarks evaluated by later invocations into the same directory are merged in, as long as model and adapter
match. Pure module: no torch/transformers import (versions are read from package metadata).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
EVAL_RESULTS_FILE = "eval_results.jsonl"
_VERSIONED_PACKAGES = ("torch", "transformers", "tokenizers", "peft", "accelerate", "numpy", "vllm", "tree-sitter")


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_sha() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def collect_versions() -> dict[str, Any]:
    """Library versions, interpreter and git commit, recorded next to every result."""
    versions: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "codeblock": _dist_version("codeblock-sft"),
        "git_sha": _git_sha(),
    }
    for name in _VERSIONED_PACKAGES:
        version = _dist_version(name)
        if version is not None:
            versions[name] = version
    return versions


def status_counts(eval_results_path: str | Path) -> dict[str, int]:
    """Counts of ``status`` (pass/fail/timeout/error) in one ``eval_results.jsonl``."""
    path = Path(eval_results_path)
    counts: Counter[str] = Counter()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                counts[str(json.loads(line).get("status", "unknown"))] += 1
    return dict(sorted(counts.items()))


def benchmark_entry(
    summary: dict[str, Any], dataset: dict[str, Any], out_dir: Path, run_dir: Path, **extra: Any
) -> dict[str, Any]:
    """Merge the executor's summary with dataset identity and the counts every report needs."""
    eval_path = out_dir / EVAL_RESULTS_FILE
    counts = status_counts(eval_path)
    entry = dict(summary)
    entry.setdefault("timeouts", counts.get("timeout", 0))
    entry["status_counts"] = counts
    entry["dataset"] = dataset
    entry["eval_results"] = os.path.relpath(eval_path, run_dir)
    entry.update(extra)
    return entry


def load_results(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (is {run_dir} a codeblock-eval output directory?)")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    return data


def write_results(
    run_dir: str | Path,
    benchmarks: dict[str, dict[str, Any]],
    *,
    model: str | None,
    adapter: str | None,
    generation: dict[str, Any] | None,
    command: str | None = None,
) -> dict[str, Any]:
    """Write ``run_dir/results.json`` atomically, merging benchmarks from an earlier call for the same model."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    merged: dict[str, dict[str, Any]] = {}
    previous_generation: dict[str, Any] = {}
    path = run_dir / RESULTS_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        if old.get("model") == model and old.get("adapter") == adapter:
            merged.update(old.get("benchmarks", {}))
            previous_generation = old.get("generation") or {}
    merged.update(benchmarks)
    payload = {
        "schema_version": SCHEMA_VERSION,
        "benchmarks": dict(sorted(merged.items())),
        "model": model,
        "adapter": adapter,
        "generation": generation if generation is not None else previous_generation,
        "versions": collect_versions(),
        "date": utc_now(),
        "command": command if command is not None else " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return payload


def render_table(payload: dict[str, Any], console: Any = None) -> None:
    """Rich table of one run: pass@1, tasks, samples, timeouts and errors per benchmark."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    title = payload.get("model") or "samples"
    if payload.get("adapter"):
        title += f" + {payload['adapter']}"
    table = Table(title=f"codeblock-eval: {title}")
    for column in ("benchmark", "pass@1", "tasks", "samples", "timeouts", "errors", "dataset"):
        table.add_column(column, justify="left" if column in ("benchmark", "dataset") else "right")
    for name, entry in payload["benchmarks"].items():
        counts = entry.get("status_counts", {})
        dataset = entry.get("dataset") or {}
        table.add_row(
            name,
            f"{100 * float(entry.get('pass@1', 0.0)):.1f}%",
            str(entry.get("n_tasks", "")),
            str(entry.get("n_samples", "")),
            str(entry.get("timeouts", counts.get("timeout", 0))),
            str(counts.get("error", 0)),
            f"{dataset.get('version', '?')} ({str(dataset.get('sha256', ''))[:8]})",
        )
    console.print(table)
