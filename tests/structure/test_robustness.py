"""Bad and odd input never crashes and gives sensible output (issue #2 'Bad input')."""

from __future__ import annotations

import random

import pytest

from codeblock.structure.analysis import analysis_to_json, analyze_code, analyze_response


def check_invariants(analysis):
    items = analysis.items
    for item in items:
        assert 0 <= item.start < item.end <= len(analysis.text)
        for a, b in item.core_spans:
            assert item.start <= a < b <= item.end
            assert analysis.text[a:b].strip()
    statement_items = [i for i in items if i.kind != "block"]
    for left, right in zip(statement_items, statement_items[1:]):
        assert left.end <= right.start
    analysis_to_json(analysis)  # serialisable


@pytest.mark.parametrize("text", ["", " ", "\n\n", "\t", "```", "```python", "```python\n", "~~~\n~~~"])
def test_empty_and_degenerate(text):
    check_invariants(analyze_response(text))
    check_invariants(analyze_code(text, "python"))


def test_binary_junk():
    rng = random.Random(0)
    junk = bytes(rng.randrange(256) for _ in range(5000)).decode("utf-8", errors="replace")
    for analysis in (analyze_response(junk), analyze_code(junk, "python")):
        check_invariants(analysis)


def test_broken_code_yields_broken_items_not_errors():
    src = "def f(x):\n    y = (x +\n    return y\nz = 1\n"
    analysis = analyze_code(src, "python")
    check_invariants(analysis)
    assert any(i.broken for i in analysis.items) or analysis.units[0].opaque
    for item in analysis.items:
        if item.broken:
            assert not item.selectable and item.reason == "broken" and not item.is_node


def test_ten_thousand_lines():
    src = "".join(f"v{i} = v{i - 1} + {i}\n" if i else "v0 = 0\n" for i in range(10_000))
    analysis = analyze_code(src, "python")
    assert len(analysis.items) == 10_000
    unit = analysis.units[0]
    assert unit.reach == {i: 0.0 for i in range(10_000)}  # > 2000 nodes: structure signals skipped
    check_invariants(analysis)


def test_deeply_nested_code():
    depth = 60
    src = "".join("    " * d + f"if x{d}:\n" for d in range(depth)) + "    " * depth + "y = 1\n"
    analysis = analyze_code(src, "python")
    assert len(analysis.items) == depth + 1
    check_invariants(analysis)
    nested = "x = " + "(" * 300 + "1" + ")" * 300 + "\n"
    check_invariants(analyze_code(nested, "python"))


def test_tabs_crlf_and_non_ascii_identifiers():
    src = "def grüße(naïve):\r\n\tπ = naïve * 2\r\n\treturn π\r\n"
    analysis = analyze_code(src, "python")
    assert [src[i.start : i.end] for i in analysis.items] == ["def grüße(naïve):", "π = naïve * 2", "return π"]
    assert set(analysis.edges) == {(0, 1), (1, 2)}
    assert [src[a:b] for a, b in analysis.items[1].core_spans] == ["π", "naïve", "*", "2"]
    check_invariants(analysis)


def test_emoji_in_strings_keep_char_offsets():
    src = 's = "😀😀"\nt = s + "é"\n'
    analysis = analyze_code(src, "python")
    assert [src[i.start : i.end] for i in analysis.items] == ['s = "😀😀"', 't = s + "é"']
    assert [src[a:b] for a, b in analysis.items[0].core_spans] == ["s", "😀😀"]


def test_lone_surrogates_from_json_do_not_crash():
    src = 'x = "\ud800"\ny = x\n'
    analysis = analyze_code(src, "python")
    assert [src[i.start : i.end] for i in analysis.items] == ['x = "\ud800"', "y = x"]
    check_invariants(analyze_response("\udcff text\n```python\nx = 1\n```\n"))
