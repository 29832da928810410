"""Response segmentation: CommonMark fences, aliases, markup, unfenced responses (method.md §5(b))."""

from __future__ import annotations

from codeblock.structure.analysis import StructureConfig, analyze_response
from codeblock.structure.segment import segment_response


def pieces(text, **kw):
    return [(s.kind, text[s.start : s.end], s.language) for s in segment_response(text, **kw)]


def assert_tiles(text, segments):
    assert [s.start for s in segments][0] == 0 if segments else text == ""
    for left, right in zip(segments, segments[1:]):
        assert left.end == right.start
    if segments:
        assert segments[-1].end == len(text)


def test_py_alias_and_markup_lines():
    text = "Intro\n```py\nx = 1\n```\nOutro"
    assert pieces(text) == [
        ("nl", "Intro\n", None), ("markup", "```py\n", None), ("code", "x = 1\n", "python"),
        ("markup", "```\n", None), ("nl", "Outro", None),
    ]


def test_unclosed_fence_runs_to_end():
    text = "See:\n```js\nlet a = 1;\nlet b = a;"
    segments = segment_response(text)
    assert segments[-1].kind == "code" and text[segments[-1].start :] == "let a = 1;\nlet b = a;"
    assert segments[-1].language == "javascript"


def test_tilde_fence_and_longer_backtick_fence():
    text = "~~~rust\nfn main() {}\n~~~\n````python\n```\nnot a close\n````\n"
    kinds = pieces(text)
    assert kinds[1] == ("code", "fn main() {}\n", "rust")
    assert kinds[4] == ("code", "```\nnot a close\n", "python")  # 4-backtick fence holds a 3-backtick line


def test_inline_backticks_are_nl_and_fence_lines_are_never_code_or_nl():
    text = "Call `f(x)` like so:\n```python\nf(1)\n```\n"
    segments = segment_response(text)
    assert segments[0].kind == "nl" and "`f(x)`" in text[segments[0].start : segments[0].end]
    for s in segments:
        if s.kind in ("code", "nl"):
            assert "```" not in text[s.start : s.end]
    assert_tiles(text, segments)


def test_untagged_fence_uses_default_language_and_unknown_tag_is_opaque():
    text = "```\nx = 1\n```\n```brainfuck\n+++\n```\n"
    analysis = analyze_response(text)
    assert [u.language for u in analysis.units] == ["python", None]
    assert analysis.units[1].opaque and "language" in analysis.units[1].reason
    assert analysis.units[1].items == []


def test_unfenced_response_parses_as_default_language_or_becomes_nl():
    code = "def add(a, b):\n    return a + b\n"
    assert pieces(code) == [("code", code, "python")]
    prose = "You can add two numbers with the plus operator, which is simple."
    assert [p[0] for p in pieces(prose)] == ["nl"]
    assert [p[0] for p in pieces(code, unfenced_policy="nl")] == ["nl"]


def test_crlf_fences_and_offsets():
    text = "Hi\r\n```python\r\nx = 1\r\ny = x\r\n```\r\nbye"
    analysis = analyze_response(text)
    assert [text[i.start : i.end] for i in analysis.items] == ["x = 1", "y = x"]
    assert analysis.edges == [(0, 1)]


def test_multiple_units_are_separate_graphs_with_global_item_ids():
    text = "```python\na = 1\nb = a\n```\nand\n```python\nc = 2\nd = c\n```\n"
    analysis = analyze_response(text)
    assert [i.id for i in analysis.items] == [0, 1, 2, 3]
    assert analysis.edges == [(0, 1), (2, 3)]


def test_opaque_when_too_many_error_bytes():
    text = "```python\n)))(((\n::: ??? def\n```\n"
    unit = analyze_response(text).units[0]
    assert unit.opaque and "ERROR" in unit.reason


def test_structure_config_validates():
    import pytest

    with pytest.raises(ValueError, match="bridge_mode"):
        StructureConfig(bridge_mode="pagerank")
