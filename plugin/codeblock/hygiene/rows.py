"""Reading, addressing and writing instruction/response rows for the hygiene stages.

Input: whatever :mod:`codeblock.hygiene.row_reader` reads (the one reader, shared with ``codeblock prepare``):
``.json``, ``.jsonl(.gz)``, ``.parquet``, ``datasets`` folders. A bad JSON line, a line that is not UTF-8 or a
record that is not an object is a *counted skip* (see :class:`LoadResult`), never a crash and never silent.

Text fields are addressed by *paths*: ``"instruction"`` or ``"messages[2].content"``.

    >>> fields = detect_fields([{"instruction": "Add.", "input": "", "output": "x + y"}])
    >>> fields
    ['instruction', 'input', 'output']
    >>> [p for p, _ in iter_text_fields({"messages": [{"role": "user", "content": "hi"}]}, ["messages"])]
    ['messages[0].content']
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from codeblock.hygiene.row_reader import RowSourceError, iter_records

# Known schemas, most specific first. Prompt-side fields come before response-side ones.
KNOWN_FIELDS: tuple[str, ...] = (
    "messages", "conversations", "instruction", "input", "output", "response", "prompt", "completion",
    "question", "answer", "query", "text", "code", "solution",
)
# Chat lists: a list of {"role"/"from", "content"/"value"} dicts.
CHAT_FIELDS = ("messages", "conversations")
_CHAT_TEXT_KEYS = ("content", "value")
_PATH_RE = re.compile(r"^(?P<field>[^\[\]]+)\[(?P<idx>\d+)\]\.(?P<key>\w+)$")


class HygieneInputError(ValueError):
    """Unusable input (missing file, empty data, unknown field): the CLI turns it into exit code 2."""


@dataclass
class LoadResult:
    rows: list[dict]
    # Position of each kept row in the input (0-based record/line index, counting skipped ones).
    index: list[int]
    skips: list[dict] = field(default_factory=list)  # {"row": i, "reason": "..."}

    @property
    def skip_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(s["reason"] for s in self.skips).items()))


# The reader's reason names, as the hygiene reports have always spelled them.
_REASONS = {"invalid_json": "bad_json"}


def load_rows(path: str | os.PathLike) -> LoadResult:
    """Load rows through :mod:`codeblock.hygiene.row_reader`; bad records become counted skips."""
    rows: list[dict] = []
    index: list[int] = []
    skips: list[dict] = []
    try:
        for rec in iter_records(path):
            if rec.reason is not None:
                skips.append({"row": rec.index, "reason": _REASONS.get(rec.reason, rec.reason)})
            elif not isinstance(rec.row, dict):
                skips.append({"row": rec.index, "reason": f"not_an_object:{type(rec.row).__name__}"})
            else:
                rows.append(rec.row)
                index.append(rec.index)
    except RowSourceError as exc:
        raise HygieneInputError(str(exc)) from None
    return LoadResult(rows=rows, index=index, skips=skips)


def detect_fields(rows: list[dict], sample: int = 200) -> list[str]:
    """Known text fields present (as str, or a chat list) in the first ``sample`` rows, in KNOWN_FIELDS order."""
    seen: set[str] = set()
    for row in rows[:sample]:
        for name in KNOWN_FIELDS:
            value = row.get(name)
            if isinstance(value, str) or (name in CHAT_FIELDS and isinstance(value, list)):
                seen.add(name)
    if any(c in seen for c in CHAT_FIELDS):
        seen -= {"text"}  # some chat dumps carry a rendered copy; scanning both would double-count
    return [name for name in KNOWN_FIELDS if name in seen]


def parse_fields(spec: str | None, rows: list[dict]) -> list[str]:
    """``--fields a,b`` or auto-detection; raises HygieneInputError when nothing is scannable."""
    if spec:
        fields = [f.strip() for f in spec.split(",") if f.strip()]
    else:
        fields = detect_fields(rows)
    if not fields:
        keys = sorted({k for r in rows[:50] for k in r})[:20]
        raise HygieneInputError(f"no text fields found (saw keys {keys}); pass --fields name1,name2")
    return fields


def check_row_types(row: dict, fields: list[str]) -> str | None:
    """Return a skip reason when a configured field has the wrong type (None/missing are fine)."""
    for name in fields:
        value = row.get(name)
        if value is None:
            continue
        if name in CHAT_FIELDS:
            if not isinstance(value, list):
                return f"bad_type:{name}"
            for msg in value:
                if not isinstance(msg, dict):
                    return f"bad_type:{name}"
                text = next((msg[k] for k in _CHAT_TEXT_KEYS if k in msg), None)
                if text is not None and not isinstance(text, str):
                    return f"bad_type:{name}"
        elif not isinstance(value, str):
            return f"bad_type:{name}"
    return None


def iter_text_fields(row: dict, fields: list[str]) -> list[tuple[str, str]]:
    """(path, text) for every non-empty text in ``fields`` of ``row`` (chat lists expand per message)."""
    out: list[tuple[str, str]] = []
    for name in fields:
        value = row.get(name)
        if isinstance(value, str):
            if value:
                out.append((name, value))
        elif isinstance(value, list) and name in CHAT_FIELDS:
            for i, msg in enumerate(value):
                if isinstance(msg, dict):
                    for key in _CHAT_TEXT_KEYS:
                        if isinstance(msg.get(key), str) and msg[key]:
                            out.append((f"{name}[{i}].{key}", msg[key]))
                            break
    return out


def set_text_field(row: dict, path: str, text: str) -> None:
    """Write ``text`` at ``path`` (inverse of :func:`iter_text_fields`)."""
    m = _PATH_RE.match(path)
    if m:
        row[m["field"]][int(m["idx"])][m["key"]] = text
    else:
        row[path] = text


def row_text(row: dict, fields: list[str]) -> str:
    return "\n".join(t for _, t in iter_text_fields(row, fields))


def dumps_row(row: dict) -> str:
    # Key order as read and no ASCII escaping: output bytes depend only on the input rows.
    return json.dumps(row, ensure_ascii=False)


def write_jsonl(path: Path, records: Iterable[dict]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(dumps_row(rec) + "\n")
            n += 1
    return n


def write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
