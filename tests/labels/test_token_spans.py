"""The touches rule and response-token bookkeeping (method.md §2.0)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from codeblock.labels.token_spans import TokenIndex, runs, uncovered_nonws


def test_touch_rule_ignores_whitespace_overlap():
    text = "P:q\nx = 1\n  y"
    offsets = [(0, 2), (2, 4), (4, 5), (5, 7), (7, 9), (9, 12), (12, 13)]  # "P:", "q\n", "x", " =", " 1", "\n  ", "y"
    idx = TokenIndex(text, offsets, response_start=4)
    assert idx.response_tokens == [2, 3, 4, 5, 6]
    assert idx.tok(0, 1) == [2]  # "x"
    assert idx.tok(1, 2) == []  # only the space before "=": whitespace overlap does not touch
    assert idx.tok(1, 3) == [3]
    assert idx.tok(5, 8) == []  # "\n  " is whitespace only
    assert idx.tok(0, 9) == [2, 3, 4, 6]
    assert idx.inside(3, [(0, 9)]) and not idx.inside(3, [(0, 2)])


def test_special_and_prompt_tokens_are_not_response_tokens():
    text = "ab<e>"
    idx = TokenIndex(text, [(0, 1), (1, 2), (2, 5)], response_start=1, response_end=2, special=[False, False, True])
    assert idx.response_tokens == [1]


def test_runs_and_coverage():
    assert runs([3, 1, 2, 9]) == [(1, 4), (9, 10)]
    text = "ab cd"
    assert uncovered_nonws(text, [(0, 2), (2, 5)], [1], 0, 5) == 2
    assert uncovered_nonws(text, [(0, 2), (2, 5)], [0, 1], 0, 5) == 0


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ab \n\t", min_size=1, max_size=40), st.data())
def test_tok_matches_brute_force(text, data):
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(text) - 1), max_size=15)) if len(text) > 1 else []))
    bounds = [0] + cuts + [len(text)]
    offsets = list(zip(bounds[:-1], bounds[1:]))
    r = data.draw(st.integers(0, len(text)))
    idx = TokenIndex(text, offsets, response_start=r)
    a = data.draw(st.integers(0, max(0, len(text) - r)))
    b = data.draw(st.integers(a, max(a, len(text) - r)))
    brute = [t for t in idx.response_tokens if any(not text[i].isspace() for i in range(max(offsets[t][0], a + r), min(offsets[t][1], b + r)))]
    assert idx.tok(a, b) == brute


def test_a_token_starting_where_the_response_ends_is_not_a_response_token():
    from codeblock.labels.token_spans import TokenIndex

    text = "Q: hi\nA: x\nEND"
    idx = TokenIndex(text, [(0, 2), (2, 5), (5, 6), (6, 8), (8, 10), (10, 11), (11, 14)], response_start=6, response_end=10)
    assert idx.response_tokens == [3, 4]  # "\n" at 10 and "END" follow the response: never supervised
