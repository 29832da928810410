"""Character spans -> model token indices, by the "touches" rule of method.md §2.0. Pure (stdlib only).

A token t touches a character span [a, b) if some character of t inside [a, b) is not whitespace. Spans here are in
*response* coordinates and are shifted by the response offset r into the rendered text.

    >>> text = "Q: hi\\nA: x = 1"
    >>> idx = TokenIndex(text, [(0, 2), (2, 5), (5, 6), (6, 8), (8, 10), (10, 12), (12, 14)], response_start=6)
    >>> idx.response_tokens
    [3, 4, 5, 6]
    >>> idx.tok(3, 8)            # response chars 3..8 = "x = 1" -> tokens " x", " =", " 1"
    [4, 5, 6]
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Iterable, Sequence


def nonws_prefix(text: str) -> list[int]:
    """prefix[i] = number of non-whitespace characters in text[:i]."""
    out = [0] * (len(text) + 1)
    n = 0
    for i, ch in enumerate(text):
        if not ch.isspace():
            n += 1
        out[i + 1] = n
    return out


class TokenIndex:
    """Lookup of response tokens for one rendered, tokenized example.

    ``offsets`` are (start, end) character offsets of every token in the rendered text; ``special`` flags special
    tokens (never response tokens); the response occupies ``[response_start, response_end)`` of the text.
    """

    def __init__(
        self,
        text: str,
        offsets: Sequence[tuple[int, int]],
        response_start: int,
        response_end: int | None = None,
        special: Sequence[bool] | None = None,
    ) -> None:
        self.text = text
        self.offsets = [(int(s), int(e)) for s, e in offsets]
        self.r = int(response_start)
        self.r_end = len(text) if response_end is None else int(response_end)
        self._prefix = nonws_prefix(text)
        special = special or [False] * len(self.offsets)
        # Response tokens: non-special tokens starting inside the response (method.md §2.0).
        self.response_tokens = [
            t for t, (s, e) in enumerate(self.offsets) if not special[t] and e > s and self.r <= s < self.r_end
        ]
        self._starts = [self.offsets[t][0] for t in self.response_tokens]
        self._ends_max = []  # running max of token ends: offsets can repeat for multi-token characters
        m = -1
        for t in self.response_tokens:
            m = max(m, self.offsets[t][1])
            self._ends_max.append(m)

    @property
    def n_response(self) -> int:
        return len(self.response_tokens)

    def response_tokens_before(self, n_chars: int) -> list[int]:
        """Response tokens that start within the first ``n_chars`` characters of the response.

        IFD compares two renderings of one response; cutting both to the characters both kept makes their means
        cover the same tokens even when a long prompt truncates one of them.

        >>> TokenIndex("Q: hi\\nA: x = 1", [(0, 2), (2, 5), (5, 6), (6, 8), (8, 10), (10, 12), (12, 14)], 6).response_tokens_before(4)
        [3, 4]
        """
        return [t for t, start in zip(self.response_tokens, self._starts) if start - self.r < n_chars]

    def touches(self, t: int, a: int, b: int) -> bool:
        """Does token t touch rendered-text span [a, b) (non-whitespace overlap)?"""
        s, e = self.offsets[t]
        lo, hi = max(s, a), min(e, b)
        return hi > lo and self._prefix[hi] - self._prefix[lo] > 0

    def tok(self, a: int, b: int) -> list[int]:
        """Response-token indices touching response-coordinate span [a, b), in order."""
        A, B = a + self.r, b + self.r
        if B <= A:
            return []
        hi = bisect_left(self._starts, B)  # tokens starting before B
        lo = bisect_right(self._ends_max, A)  # first token whose (running max) end exceeds A
        return [self.response_tokens[k] for k in range(lo, hi) if self.touches(self.response_tokens[k], A, B)]

    def tok_spans(self, spans: Iterable[tuple[int, int]]) -> list[int]:
        out: set[int] = set()
        for a, b in spans:
            out.update(self.tok(a, b))
        return sorted(out)

    def token_text(self, t: int) -> str:
        s, e = self.offsets[t]
        return self.text[s:e]

    def inside(self, t: int, spans: Iterable[tuple[int, int]]) -> bool:
        """Are all non-whitespace characters of token t inside the union of response-coordinate spans?"""
        s, e = self.offsets[t]
        covered = 0
        for a, b in spans:
            lo, hi = max(s, a + self.r), min(e, b + self.r)
            if hi > lo:
                covered += self._prefix[hi] - self._prefix[lo]
        return covered == self._prefix[e] - self._prefix[s]


def runs(indices: Iterable[int]) -> list[tuple[int, int]]:
    """Group sorted token indices into maximal contiguous runs [start, end).

    >>> runs([1, 2, 3, 7, 9, 10])
    [(1, 4), (7, 8), (9, 11)]
    """
    out: list[tuple[int, int]] = []
    for t in sorted(set(indices)):
        if out and out[-1][1] == t:
            out[-1] = (out[-1][0], t + 1)
        else:
            out.append((t, t + 1))
    return out


def uncovered_nonws(text: str, offsets: Sequence[tuple[int, int]], tokens: Iterable[int], a: int, b: int) -> int:
    """Number of non-whitespace characters of text[a:b] not covered by the given tokens (0 = complete)."""
    covered = [False] * (b - a)
    for t in tokens:
        s, e = offsets[t]
        for i in range(max(s, a), min(e, b)):
            covered[i - a] = True
    return sum(1 for i in range(a, b) if not covered[i - a] and not text[i].isspace())
