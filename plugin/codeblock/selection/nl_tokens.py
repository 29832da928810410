"""Informative natural-language tokens (method.md §2(g)). Pure apart from scikit-learn's shipped stop-word list.

Candidates are response tokens whose non-whitespace characters all lie in NL regions (outside code units and fence
lines; inline backtick code counts as NL), that contain an alphanumeric character, that are not stop words
(sklearn ``ENGLISH_STOP_WORDS`` after lowercasing and stripping surrounding punctuation) and that are not markdown
syntax (``#``, ``*``, ``-``, ``>``, ``|``, backticks, or an ordered-list marker such as ``1.`` at the start of a line).
They are taken in (-g_t, e, t) order while the total stays within B_nl and each example within its cap.

    >>> is_informative(" the", at_line_start=False), is_informative(" parser", at_line_start=False)
    (False, True)
    >>> is_informative("1.", at_line_start=True), is_informative("1.", at_line_start=False)
    (False, True)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

_MD_ONLY = re.compile(r"[#*\->|`_~=+:]+")
_LIST_MARKER = re.compile(r"\d+[.)]")
_EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def is_informative(token_text: str, *, at_line_start: bool) -> bool:
    stripped = token_text.strip()
    if not any(ch.isalnum() for ch in stripped):
        return False
    if _MD_ONLY.fullmatch(stripped):
        return False
    if at_line_start and _LIST_MARKER.fullmatch(stripped):
        return False
    word = _EDGE_PUNCT.sub("", stripped.lower())
    return bool(word) and word not in stop_words()


def _at_line_start(text: str, pos: int) -> bool:
    """Is everything between the previous newline and ``pos`` whitespace?"""
    line_start = text.rfind("\n", 0, pos) + 1
    return not text[line_start:pos].strip()


@dataclass(frozen=True)
class NLUnit:
    """A token (or, with nl_unit=word, a whole word) that may be supervised."""

    example: int
    tokens: tuple[int, ...]
    score: float

    @property
    def key(self) -> tuple:
        return (-round(self.score, 9), self.example, self.tokens[0])


def nl_candidates(index, nl_spans: list[tuple[int, int]]) -> list[int]:
    """Response-token indices of ``index`` (a TokenIndex) that are informative NL tokens."""
    if not nl_spans:
        return []
    out = []
    for t in index.response_tokens:
        s, e = index.offsets[t]
        piece = index.text[s:e]
        if not piece.strip() or not index.inside(t, nl_spans):
            continue
        first = s + (len(piece) - len(piece.lstrip()))
        if is_informative(piece, at_line_start=_at_line_start(index.text, first)):
            out.append(t)
    return out


def make_units(example: int, index, candidates: list[int], scores, unit: str = "token") -> list[NLUnit]:
    """Score candidates by g_t (``scores[t]``); ``unit=word`` groups adjacent candidate tokens of one word."""
    finite = [t for t in candidates if t < len(scores) and math.isfinite(float(scores[t]))]
    if unit == "token":
        return [NLUnit(example, (t,), float(scores[t])) for t in finite]
    words: list[list[int]] = []
    for t in finite:
        prev = words[-1][-1] if words else None
        joins = (
            prev is not None
            and prev == t - 1
            and index.offsets[prev][1] == index.offsets[t][0]
            and not index.token_text(t)[:1].isspace()
        )
        if joins:
            words[-1].append(t)
        else:
            words.append([t])
    return [NLUnit(example, tuple(w), sum(float(scores[t]) for t in w) / len(w)) for w in words]


def select_nl(units: list[NLUnit], budget_nl: int, caps: dict[int, int], used_per_example: dict[int, int]) -> dict[int, list[int]]:
    """Greedy (-score, e, t) selection: a unit fits if the NL total stays <= budget_nl and its example <= cap."""
    taken: dict[int, list[int]] = {}
    used = 0
    per = dict(used_per_example)
    for u in sorted(units, key=lambda u: u.key):
        cost = len(u.tokens)
        if used + cost > budget_nl:
            if cost == 1:
                break  # nothing smaller remains
            continue
        if per.get(u.example, 0) + cost > caps.get(u.example, 0):
            continue
        taken.setdefault(u.example, []).extend(u.tokens)
        per[u.example] = per.get(u.example, 0) + cost
        used += cost
    return {e: sorted(ts) for e, ts in taken.items()}
