"""Run manifests: what went in, what came out, with which code. Used by every artifact writer.

``write_manifest(dir, ...)`` hashes every file under ``dir`` (except ``manifest.json``) and records the
config, seeds, input hashes, library versions (``importlib.metadata``; nothing heavy is imported),
the project's git commit and adapter checksums. ``codeblock verify DIR`` recomputes the hashes.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.txt").write_text("x")
    >>> _ = write_manifest(d, config={"k": 1}, seeds={"seed": 0}, inputs={})
    >>> verify_manifest(d)
    []
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
# Distributions whose versions decide what an artifact contains. Missing ones are recorded as null.
TRACKED_LIBRARIES = (
    "codeblock-sft", "torch", "transformers", "trl", "tokenizers", "peft", "accelerate", "datasets",
    "axolotl", "safetensors", "numpy", "tree-sitter", "tree-sitter-python", "bitsandbytes", "evalplus",
)
ADAPTER_FILE_NAMES = ("adapter_model.safetensors", "adapter_model.bin", "adapter_config.json")
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def hash_tree(directory: Path, exclude: tuple[str, ...] = (MANIFEST_NAME,)) -> dict[str, dict]:
    """{relative posix path: {"sha256", "bytes"}} for every regular file below ``directory``."""
    out: dict[str, dict] = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if rel in exclude or not path.is_file() or path.is_symlink():
            continue
        out[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return out


def _hash_input(path: str | os.PathLike) -> dict:
    p = Path(path)
    rec: dict[str, Any] = {"path": str(p.resolve()) if p.exists() else str(p)}
    if p.is_file():
        rec.update(sha256=sha256_file(p), bytes=p.stat().st_size)
    elif p.is_dir():
        files = hash_tree(p, exclude=())
        rec["files"] = files
        rec["sha256"] = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    else:
        rec["sha256"] = None
        rec["missing"] = True
    return rec


def library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str | None]:
    """Installed versions via importlib.metadata (never imports the libraries themselves)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(start: str | os.PathLike | None = None) -> str:
    """``git rev-parse HEAD`` of the project checkout, or "unknown" (no git, no commits, not a repo)."""
    cwd = Path(start) if start else Path(__file__).resolve().parent
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = res.stdout.strip()
    return sha if res.returncode == 0 and len(sha) >= 40 else "unknown"


def _adapter_checksums(directory: Path, outputs: dict[str, dict], adapters: dict[str, str] | None) -> dict:
    found = {rel: rec["sha256"] for rel, rec in outputs.items() if Path(rel).name in ADAPTER_FILE_NAMES}
    for name, path in (adapters or {}).items():
        found[name] = _hash_input(path).get("sha256")
    return found


def write_manifest(directory: str | os.PathLike, *, config: dict, seeds: dict, inputs: dict[str, str | os.PathLike],
                   extra: dict | None = None, tokenizer_revision: str | None = None,
                   base_model_revision: str | None = None, adapters: dict[str, str] | None = None) -> Path:
    """Write ``<directory>/manifest.json`` and return its path. Call it after all outputs are written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hashed_inputs = {name: _hash_input(path) for name, path in sorted(inputs.items())}
    outputs = hash_tree(directory)
    identity = json.dumps({"config": config, "seeds": seeds,
                           "inputs": {k: v.get("sha256") for k, v in hashed_inputs.items()}},
                          sort_keys=True, default=str)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        # Same config + seeds + inputs => same run id, so reruns are recognisable as the same experiment.
        "run_id": hashlib.sha256(identity.encode()).hexdigest()[:16],
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv[:1] and [Path(sys.argv[0]).name, *sys.argv[1:]],
        "config": config,
        "seeds": seeds,
        "inputs": hashed_inputs,
        "outputs": outputs,
        "tokenizer_revision": tokenizer_revision,
        "base_model_revision": base_model_revision,
        "adapters": _adapter_checksums(directory, outputs, adapters),
        "libraries": library_versions(),
        "python": sys.version.split()[0],
        "git_commit": git_commit(),
        "extra": extra or {},
    }
    path = directory / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def verify_manifest(directory: str | os.PathLike, check_inputs: bool = False) -> list[dict]:
    """Mismatches between the manifest and the files now on disk ([] = clean).

    Each mismatch: {"path", "kind": modified|missing|unexpected|input_modified|input_missing, "expected", "actual"}.
    """
    directory = Path(directory)
    mpath = directory / MANIFEST_NAME
    if not mpath.is_file():
        raise FileNotFoundError(f"no {MANIFEST_NAME} in {directory}")
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    expected: dict[str, dict] = manifest.get("outputs", {})
    actual = hash_tree(directory)
    problems: list[dict] = []
    for rel in sorted(set(expected) | set(actual)):
        exp, act = expected.get(rel), actual.get(rel)
        if exp is None:
            problems.append({"path": rel, "kind": "unexpected", "expected": None, "actual": act["sha256"]})
        elif act is None:
            problems.append({"path": rel, "kind": "missing", "expected": exp["sha256"], "actual": None})
        elif exp["sha256"] != act["sha256"]:
            problems.append({"path": rel, "kind": "modified", "expected": exp["sha256"], "actual": act["sha256"]})
    if check_inputs:
        for name, rec in manifest.get("inputs", {}).items():
            if rec.get("sha256") is None:
                continue
            now = _hash_input(rec["path"])
            if now.get("missing"):
                problems.append({"path": f"input:{name}", "kind": "input_missing", "expected": rec["sha256"], "actual": None})
            elif now["sha256"] != rec["sha256"]:
                problems.append({"path": f"input:{name}", "kind": "input_modified", "expected": rec["sha256"],
                                 "actual": now["sha256"]})
    return problems


# ---------------------------------------------------------------- CLI: codeblock verify DIR
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="artifact directory holding manifest.json")
    parser.add_argument("--check_inputs", "--check-inputs", action="store_true",
                        help="also re-hash the input files recorded in the manifest (they must still exist)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False)
    try:
        problems = verify_manifest(args.dir, check_inputs=args.check_inputs)
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        print(f"codeblock verify: {exc}", file=sys.stderr)
        return 2
    if not problems:
        n = len(json.loads((Path(args.dir) / MANIFEST_NAME).read_text(encoding="utf-8")).get("outputs", {}))
        console.print(f"[green]OK[/green] {n} files match {Path(args.dir) / MANIFEST_NAME}")
        return 0
    table = Table(title=f"{len(problems)} mismatch(es) in {args.dir}")
    for col in ("path", "kind", "expected sha256", "actual sha256"):
        table.add_column(col)
    for p in problems:
        table.add_row(p["path"], p["kind"], (p["expected"] or "-")[:16], (p["actual"] or "-")[:16])
    console.print(table)
    return 1
