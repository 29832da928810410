"""Read instruction/response data in the common shapes and normalise it to `Example` records.

Accepted files (read by :mod:`codeblock.hygiene.row_reader`): ``.json`` (an array, or ``{"data": [...]}``),
``.jsonl``, ``.jsonl.gz`` / ``.json.gz``, ``.parquet`` and Hugging Face ``datasets`` folders written by ``save_to_disk``
(a ``DatasetDict`` uses its ``train`` split); in memory: a list of dicts or a ``datasets.Dataset``. Row shapes (auto-detected, field names configurable):

* chat: ``messages = [{role, content}, ...]``; the last assistant turn is the response, earlier turns are prompt;
* ``prompt`` / ``completion``;
* ``instruction`` (+ optional ``input``) / ``output`` or ``response``.

Bad rows are never dropped silently: each is counted under a reason (``missing_fields``, ``wrong_type``,
``empty_response``, ``non_utf8``, ``invalid_json``, ``no_assistant_turn``) and the first few are kept as examples.

    >>> ex, skips = normalize_rows([{"instruction": "Add.", "output": "x + 1"}, {"instruction": "?"}])
    >>> ex[0].response, dict(skips.counts)
    ('x + 1', {'missing_fields': 1})
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Container, Iterable, Iterator

PROMPT_KEYS = ("instruction", "prompt", "question", "query")
RESPONSE_KEYS = ("response", "output", "completion", "answer", "solution")
INPUT_KEYS = ("input", "context")


class DataError(ValueError):
    """The data source itself cannot be read (missing file, unknown format)."""


@dataclass
class Example:
    """One instruction/response pair; ``index`` is the row's position in the input (stable across runs)."""

    index: int
    prompt_messages: list[dict]  # chat turns before the response (role/content)
    response: str
    instruction: str  # flat prompt text (for plain templates, embeddings, IFD)
    extra: dict = field(default_factory=dict)  # other columns (quality ratings, ids), passed to pair selection


@dataclass
class SkipLog:
    counts: Counter = field(default_factory=Counter)
    samples: list[dict] = field(default_factory=list)  # first few skips: {index, reason, detail}

    def add(self, index: int, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        if len(self.samples) < 20:
            self.samples.append({"index": index, "reason": reason, "detail": detail[:200]})

    def merge(self, other: "SkipLog") -> None:
        self.counts.update(other.counts)
        self.samples.extend(other.samples[: max(0, 20 - len(self.samples))])


# ---------------------------------------------------------------------------- reading
def sha256_of_path(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (relative names + bytes, sorted), streaming."""
    path = Path(path)
    if path.is_file():
        from codeblock.hygiene.manifest import sha256_file  # the one file hash (manifests, experiment data)

        return sha256_file(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def sha256_of_rows(rows: Iterable[Any]) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()


def load_rows(source: Any, *, limit: int | None = None) -> tuple[list[Any], SkipLog, str]:
    """Return (raw rows, skips found while reading, sha256 of the source). Unreadable lines become skips.

    Files and folders are streamed by :mod:`codeblock.hygiene.row_reader` (the one reader, shared with the hygiene
    commands); an unreadable record keeps its place as a placeholder so row indices stay aligned with the input.
    """
    from codeblock.hygiene.row_reader import RowSourceError, iter_dataset, iter_records

    skips = SkipLog()
    if isinstance(source, (list, tuple)):
        rows = list(source)[:limit] if limit else list(source)
        return rows, skips, sha256_of_rows(rows)
    if _is_hf_dataset(source):
        rows = [r.row for r in iter_dataset(source, limit=limit or None)]
        return rows, skips, sha256_of_rows(rows)
    try:
        records = iter_records(source, limit=limit or None)
        rows = []
        for rec in records:
            if rec.reason is not None:
                skips.add(rec.index, rec.reason, rec.detail)
                rows.append(_SKIPPED)
            else:
                rows.append(rec.row)
    except RowSourceError as exc:
        raise DataError(str(exc)) from None
    return rows, skips, sha256_of_path(source)


_SKIPPED = object()  # placeholder keeping row indices aligned with input lines


def _is_hf_dataset(obj: Any) -> bool:
    return type(obj).__name__ in ("Dataset", "IterableDataset") and hasattr(obj, "column_names")


# ---------------------------------------------------------------------------- normalising
def normalize_rows(rows: list[Any], config=None) -> tuple[list[Example], SkipLog]:
    """Map raw rows to Examples; bad rows are counted in the SkipLog, never silently lost."""
    skips = SkipLog()
    return list(iter_examples(enumerate(rows), config, skips)), skips


def iter_examples(pairs: Iterable[tuple[int, Any]], config=None, skips: SkipLog | None = None,
                  wanted: Container[int] | None = None) -> Iterator[Example]:
    """Examples of ``(index, raw row)`` pairs, streaming; bad rows go to ``skips``. ``wanted``: only these indices
    (a later pass of ``prepare`` over rows already normalised once; nothing is logged twice)."""
    for index, row in pairs:
        if row is _SKIPPED or (wanted is not None and index not in wanted):
            continue
        try:
            yield _to_example(index, row, config)
        except _Skip as skip:
            if skips is not None:
                skips.add(index, skip.reason, skip.detail)


class RowStream:
    """``(index, raw row)`` pairs of a file or folder, re-readable: ``prepare`` reads its input once per pass instead
    of holding it. Unreadable records are ``_SKIPPED`` placeholders (their index stays taken); the first complete
    pass records them in ``skips`` and counts the records in ``n_rows``. ``overlay`` (hygiene): index -> replacement
    row (a redacted copy, or ``_SKIPPED`` for a dropped row).
    """

    def __init__(self, path, *, limit: int | None = None, overlay: dict | None = None):
        self.path, self.limit, self.overlay = path, limit, overlay if overlay is not None else {}
        self.skips = SkipLog()
        self.n_rows: int | None = None  # set when a pass ends
        self._logged = 0  # records below this index are in ``skips`` already (passes may stop early)

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        from codeblock.hygiene.row_reader import RowSourceError, iter_records

        n = 0
        try:
            for rec in iter_records(self.path, limit=self.limit or None):
                n += 1
                if rec.reason is not None and rec.index >= self._logged:
                    self.skips.add(rec.index, rec.reason, rec.detail)
                self._logged = max(self._logged, rec.index + 1)
                yield rec.index, (_SKIPPED if rec.reason is not None else self.overlay.get(rec.index, rec.row))
        except RowSourceError as exc:
            raise DataError(str(exc)) from None
        self.n_rows = n


class _Skip(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def _text(row: dict, key: str, *, required: bool) -> str | None:
    if key not in row or row[key] is None:
        if required:
            raise _Skip("missing_fields", f"no {key!r} field (has {sorted(row)[:8]})")
        return None
    value = row[key]
    if not isinstance(value, str):
        raise _Skip("wrong_type", f"{key!r} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates from "\udXXX" escapes
        raise _Skip("non_utf8", f"{key!r}: {exc}") from None
    return value


def _first_key(row: dict, configured: str | None, candidates: tuple[str, ...]) -> str | None:
    if configured:
        return configured
    return next((k for k in candidates if k in row), None)


def _to_example(index: int, row: Any, config) -> Example:
    if not isinstance(row, dict):
        raise _Skip("wrong_type", f"row must be an object, got {type(row).__name__}")
    messages_key = getattr(config, "messages_field", "messages") if config is not None else "messages"
    prompt_cfg = getattr(config, "prompt_field", None) if config is not None else None
    response_cfg = getattr(config, "response_field", None) if config is not None else None
    input_cfg = getattr(config, "input_field", None) if config is not None else None
    if messages_key in row and not (prompt_cfg or response_cfg):
        return _chat_example(index, row, messages_key)
    pkey = _first_key(row, prompt_cfg, PROMPT_KEYS)
    rkey = _first_key(row, response_cfg, RESPONSE_KEYS)
    if pkey is None or rkey is None:
        missing = "prompt (instruction/prompt)" if pkey is None else "response (response/output/completion)"
        raise _Skip("missing_fields", f"no {missing} field; columns: {sorted(row)[:8]}; set prompt_field/response_field")
    prompt = _text(row, pkey, required=True)
    response = _text(row, rkey, required=True)
    ikey = _first_key(row, input_cfg, INPUT_KEYS)
    extra_input = _text(row, ikey, required=False) if ikey and ikey in row else None
    if not response.strip():
        raise _Skip("empty_response", "response is empty or whitespace")
    instruction = prompt + (f"\n\n{extra_input}" if extra_input and extra_input.strip() else "")
    used = {pkey, rkey, ikey}
    extra = {k: v for k, v in row.items() if k not in used}
    return Example(index, [{"role": "user", "content": instruction}], response, instruction, extra)


def _chat_example(index: int, row: dict, key: str) -> Example:
    messages = row[key]
    if not isinstance(messages, list) or not messages:
        raise _Skip("wrong_type", f"{key!r} must be a non-empty list of {{role, content}}")
    clean = []
    for m in messages:
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise _Skip("missing_fields", f"each {key!r} entry needs role and content")
        if not isinstance(m["role"], str) or not isinstance(m["content"], str):
            raise _Skip("wrong_type", "message role/content must be strings")
        try:
            m["content"].encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _Skip("non_utf8", str(exc)) from None
        clean.append({"role": m["role"], "content": m["content"]})
    if clean[-1]["role"] != "assistant":
        raise _Skip("no_assistant_turn", "the last message must be the assistant response")
    response = clean[-1]["content"]
    if not response.strip():
        raise _Skip("empty_response", "assistant response is empty or whitespace")
    prompt = clean[:-1]
    instruction = "\n\n".join(m["content"] for m in prompt if m["role"] == "user")
    extra = {k: v for k, v in row.items() if k != key}
    return Example(index, prompt, response, instruction, extra)
