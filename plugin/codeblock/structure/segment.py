"""Split a markdown response into code units, markup (fence lines) and natural language.

CommonMark fences (method.md §2(b)): an opening line of ≥3 backticks or tildes, indented at
most 3 spaces, with an optional info string; it closes at a line of the same character with at
least that length followed only by whitespace; an unclosed fence runs to the end. Fence lines
are *markup* (never code, never NL). A response with no fence is one code unit of the default
language when it parses with no ERROR/MISSING node (``unfenced_policy="parse"``), else NL.

Offsets are exact ``str`` indices into the response, and the segments tile it.

>>> text = "Use this:\\n```py\\nx = 1\\n```\\nDone."
>>> [(s.kind, text[s.start:s.end]) for s in segment_response(text)]
[('nl', 'Use this:\\n'), ('markup', '```py\\n'), ('code', 'x = 1\\n'), ('markup', '```\\n'), ('nl', 'Done.')]
"""

from __future__ import annotations

import re

from codeblock.structure.datatypes import Segment
from codeblock.structure.languages import canonical_language, parses_cleanly

_OPEN = re.compile(r"^( {0,3})(`{3,}|~{3,})([^\n]*)$")


def _lines(text: str) -> list[tuple[int, int, str]]:
    """(start, end_with_newline, line_without_newline) for every line; CRLF keeps its '\\r' out."""
    lines, pos = [], 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        lines.append((pos, pos + len(raw), body))
        pos += len(raw)
    return lines


def find_fences(text: str) -> list[tuple[int, int, int, int, str]]:
    """Fenced blocks as (open_start, content_start, content_end, close_end, info).

    ``content_end == close_end`` when the fence is unclosed (it runs to the end of the text).
    """
    blocks = []
    lines = _lines(text)
    i = 0
    while i < len(lines):
        start, end, body = lines[i]
        match = _OPEN.match(body)
        if match is None:
            i += 1
            continue
        marker, info = match.group(2), match.group(3).strip()
        if marker[0] == "`" and "`" in info:  # CommonMark: backtick info strings contain no backtick
            i += 1
            continue
        close = re.compile(r"^ {0,3}" + re.escape(marker[0]) + "{" + str(len(marker)) + r",}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j][2]):
            j += 1
        if j < len(lines):
            blocks.append((start, end, lines[j][0], lines[j][1], info))
            i = j + 1
        else:
            blocks.append((start, end, len(text), len(text), info))
            i = len(lines)
    return blocks


def fence_language(info: str, default_language: str | None) -> str | None:
    """Canonical language of a fence from the first word of its info string (or the default)."""
    word = info.split()[0].strip("{}.") if info.split() else ""
    if not word:
        return canonical_language(default_language) if default_language else None
    return canonical_language(word)


def segment_response(
    text: str,
    *,
    default_language: str | None = "python",
    unfenced_policy: str = "parse",
) -> list[Segment]:
    """Tile ``text`` with ``code``, ``markup`` and ``nl`` segments (empty pieces omitted)."""
    if unfenced_policy not in ("parse", "nl"):
        raise ValueError(f"unknown unfenced_policy {unfenced_policy!r}; valid: parse, nl")
    fences = find_fences(text)
    if not fences:
        if (
            unfenced_policy == "parse"
            and default_language
            and canonical_language(default_language)
            and parses_cleanly(text, canonical_language(default_language))
        ):
            return [Segment("code", 0, len(text), canonical_language(default_language), "", False)]
        return [Segment("nl", 0, len(text))] if text else []
    segments: list[Segment] = []
    cursor = 0
    for open_start, content_start, content_end, close_end, info in fences:
        if open_start > cursor:
            segments.append(Segment("nl", cursor, open_start))
        segments.append(Segment("markup", open_start, content_start, info=info))
        language = fence_language(info, default_language)
        if content_end > content_start:
            segments.append(Segment("code", content_start, content_end, language, info, True))
        if close_end > content_end:
            segments.append(Segment("markup", content_end, close_end, info=info))
        cursor = close_end
    if cursor < len(text):
        segments.append(Segment("nl", cursor, len(text)))
    return segments
