"""Where benchmark data comes from: ``--data_dir`` > ``$CODEBLOCK_DATA_DIR`` > a clear error.

Downloading the official sources is impossible offline (no Hugging Face / GitHub releases here), so there is no
download fallback: pass ``--data_dir`` pointing at a mirror laid out like ``shared/data`` (see its README).

    >>> resolve_data_dir("/nonexistent")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    DataNotFoundError: --data_dir /nonexistent does not exist
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

ENV_VAR = "CODEBLOCK_DATA_DIR"
CACHE_ENV_VAR = "CODEBLOCK_CACHE_DIR"


class DataNotFoundError(FileNotFoundError):
    """Benchmark data is missing; the message says which flag or variable to set."""


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    if data_dir:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(f"--data_dir {path} does not exist")
        return path
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(f"{ENV_VAR}={path} does not exist; fix it or pass --data_dir DIR")
        return path
    raise DataNotFoundError(
        f"no benchmark data: pass --data_dir DIR or set {ENV_VAR}=DIR (a copy of shared/data); downloading the "
        "official source is not possible offline")


def data_file(data_dir: str | Path | None, relpath: str) -> Path:
    base = resolve_data_dir(data_dir)
    path = base / relpath
    if not path.is_file():
        raise DataNotFoundError(f"{path} not found under data dir {base} (expected layout: shared/data/README.md)")
    return path


_sha_cache: dict[tuple[str, float, int], str] = {}


def file_sha256(path: str | Path) -> str:
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime, st.st_size)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def dataset_info(name: str, version: str, path: str | Path) -> dict:
    return {"name": name, "version": version, "path": str(path), "sha256": file_sha256(path)}


def cache_dir() -> Path:
    """Harness cache (ground-truth outputs/timings, reference-failure lists): ``$CODEBLOCK_CACHE_DIR`` or XDG."""
    env = os.environ.get(CACHE_ENV_VAR)
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "codeblock" / "eval"
    base.mkdir(parents=True, exist_ok=True)
    return base
