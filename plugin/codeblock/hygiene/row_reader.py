"""The one reader of training rows: ``codeblock prepare`` and every hygiene command stream records through it.

Formats: ``.jsonl`` / ``.jsonl.gz`` (line by line), ``.parquet`` (record batches), Hugging Face ``datasets``
``save_to_disk`` folders (memory-mapped Arrow, read in chunks; a ``DatasetDict`` uses its ``train`` split), and
``.json`` / ``.json.gz`` (an array, or an object holding one list under ``data``/``rows``/``examples``; JSON cannot
be parsed incrementally with the standard library, so it is read whole: use JSONL for large sets).

Every record keeps its position: ``index`` counts records (non-blank lines, array items, table rows) from 0, so a
row's index is the same whichever consumer reads it. A line that is not UTF-8 or not JSON is yielded as a counted
skip (``reason`` ``non_utf8`` / ``invalid_json``), never dropped silently and never fatal. What a record must look
like (an object, which fields) is the consumer's business.

    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
    >>> _ = path.write_text(json.dumps({"a": 1}) + "\\n\\n{oops\\n")
    >>> [(r.index, r.row, r.reason) for r in iter_records(path)]
    [(0, {'a': 1}, None), (1, None, 'invalid_json')]

Pure: stdlib; ``pyarrow`` for Parquet and ``datasets`` for folders, both imported only when such a source is read.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

CHUNK_ROWS = 1024  # rows per Arrow batch read from Parquet / datasets folders
FORMATS = ".json, .jsonl, .jsonl.gz, .json.gz, .parquet or a datasets.save_to_disk folder"


class RowSourceError(ValueError):
    """The source as a whole cannot be read (missing, unknown format, a broken .json file)."""


@dataclass(frozen=True)
class Record:
    """One input record: ``row`` is the decoded value, or None with ``reason``/``detail`` when it was unreadable."""

    index: int
    row: Any
    reason: str | None = None
    detail: str = ""


def source_kind(path: str | os.PathLike) -> str:
    """``jsonl``, ``json``, ``parquet`` or ``datasets``; raises RowSourceError for anything else or a missing path."""
    path = Path(path)
    if not path.exists():
        raise RowSourceError(f"data not found: {path}")
    if path.is_dir():
        return "datasets"
    name = path.name.lower().removesuffix(".gz")
    for ext in ("jsonl", "json", "parquet"):
        if name.endswith("." + ext) and not (ext == "parquet" and path.name.lower().endswith(".gz")):
            return ext
    raise RowSourceError(f"{path}: unknown format; use {FORMATS}")


def iter_records(source: str | os.PathLike, *, limit: int | None = None) -> Iterator[Record]:
    """Stream the records of ``source`` (at most ``limit``, counting unreadable ones) in input order."""
    kind = source_kind(source)
    reader = {"jsonl": _jsonl, "json": _json, "parquet": _parquet, "datasets": _datasets}[kind]
    for n, record in enumerate(reader(Path(source))):
        if limit is not None and n >= limit:
            return
        yield record


def iter_dataset(ds, *, limit: int | None = None, chunk_rows: int = CHUNK_ROWS) -> Iterator[Record]:
    """Records of an in-memory/memory-mapped ``datasets.Dataset``, read ``chunk_rows`` at a time."""
    n = len(ds) if limit is None else min(limit, len(ds))
    for start in range(0, n, chunk_rows):
        batch = ds[start : min(n, start + chunk_rows)]  # column-major dict of lists
        names = list(batch)
        for k in range(len(batch[names[0]]) if names else 0):
            yield Record(start + k, {c: batch[c][k] for c in names})


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _jsonl(path: Path) -> Iterator[Record]:
    index = 0
    try:
        with _open_binary(path) as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield Record(index, None, "non_utf8", f"line {lineno}: {exc}")
                else:
                    try:
                        yield Record(index, json.loads(text))
                    except json.JSONDecodeError as exc:
                        yield Record(index, None, "invalid_json", f"line {lineno}: {exc}")
                index += 1
    except (gzip.BadGzipFile, EOFError, OSError) as exc:
        raise RowSourceError(f"{path}: cannot read ({type(exc).__name__}: {exc}); expected {FORMATS}") from None


def _json(path: Path) -> Iterator[Record]:
    try:
        with _open_binary(path) as fh:
            obj = json.loads(fh.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise RowSourceError(f"{path}: not valid JSON ({type(exc).__name__}{where}); use .jsonl to skip bad rows "
                             "one by one") from None
    except (gzip.BadGzipFile, EOFError, OSError) as exc:
        raise RowSourceError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, dict):
        lists = [obj[k] for k in ("data", "rows", "examples") if isinstance(obj.get(k), list)]
        if not lists:
            raise RowSourceError(f"{path}: JSON object without a 'data'/'rows'/'examples' list")
        obj = lists[0]
    if not isinstance(obj, list):
        raise RowSourceError(f"{path}: top-level JSON must be an array of objects (or {{'data': [...]}})")
    for index, row in enumerate(obj):
        yield Record(index, row)


def _parquet(path: Path) -> Iterator[Record]:
    try:
        import pyarrow.parquet as pq

        table = pq.ParquetFile(str(path))
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not readable Parquet
        raise RowSourceError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    index = 0
    for batch in table.iter_batches(batch_size=CHUNK_ROWS):
        for row in batch.to_pylist():
            yield Record(index, row)
            index += 1


def _datasets(path: Path) -> Iterator[Record]:
    try:
        from datasets import load_from_disk

        ds = load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - any failure means "not a saved dataset"
        raise RowSourceError(f"{path} is a folder but not a datasets.save_to_disk folder ({exc})") from None
    if isinstance(getattr(ds, "column_names", None), dict):  # a DatasetDict
        if "train" not in ds:
            raise RowSourceError(f"{path} holds splits {list(ds.keys())}; save the split you want, or name it 'train'")
        ds = ds["train"]
    yield from iter_dataset(ds)
