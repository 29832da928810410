"""Property tests on real code: every HumanEval canonical solution and MBPP reference solution,
plus hypothesis-generated responses (issue #2 'What it must show')."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeblock.structure.analysis import analyze_code, analyze_response
from codeblock.structure.languages import parse_code

BLOCK_TYPES = {"block"}


def load_jsonl(path):
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def real_programs(data_dir):
    programs = [row["prompt"] + row["canonical_solution"] for row in load_jsonl(data_dir / "humaneval" / "HumanEval.jsonl.gz")]
    programs += [row["code"] for row in load_jsonl(data_dir / "mbpp" / "mbpp.jsonl.gz")]
    assert len(programs) == 164 + 974
    return programs


def _contains_block(parsed, start, end):
    stack = [parsed.root]
    while stack:
        node = stack.pop()
        a, b = parsed.span(node)
        if b <= start or a >= end:
            continue
        # A block whose span equals the item's is the *enclosing* one-statement block, not a child.
        if node.type in BLOCK_TYPES and start <= a and b <= end and b > a and (a, b) != (start, end):
            return True
        stack.extend(node.children)
    return False


def check_items(text, analysis, *, deep=False):
    statement_items = [i for i in analysis.items if i.kind != "block"]
    for left, right in zip(statement_items, statement_items[1:]):
        assert left.end <= right.start, (left, right)
    for item in analysis.items:
        assert item.text_in(text) == text[item.start : item.end]
        unit = analysis.units[item.unit_id]
        assert unit.start <= item.start < item.end <= unit.end
        assert item.text_in(text) == item.text_in(text).strip()  # no leading/trailing whitespace
    if deep:
        for unit in analysis.units:
            if unit.opaque:
                continue
            parsed = parse_code(text[unit.start : unit.end], unit.language)
            for item in unit.items:
                if item.kind != "block":
                    assert not _contains_block(parsed, item.start - unit.start, item.end - unit.start), item
                if item.kind == "simple" and item.selectable:
                    alone = parse_code(_dedent(item.text_in(text)), "python")
                    assert not alone.root.has_error, item.text_in(text)
                if item.kind == "header" and item.selectable:
                    completed = _complete_header(item.text_in(text), item.node_type)
                    assert not parse_code(completed, "python").root.has_error, completed


def _dedent(text):
    lines = text.splitlines()
    first = lines[0]
    rest = lines[1:]
    import textwrap

    return first.lstrip() + ("\n" + textwrap.dedent("\n".join(rest)) if rest else "")


OPENERS = {
    "elif_clause": "if 1:\n pass\n", "else_clause": "if 1:\n pass\n", "except_clause": "try:\n pass\n",
    "except_group_clause": "try:\n pass\n", "finally_clause": "try:\n pass\n", "case_clause": "match 1:\n",
}


def _complete_header(header, node_type):
    # Continuation lines keep their own indentation: inside brackets or after '\\' Python ignores it.
    if node_type == "case_clause":
        return "match 1:\n " + header + "\n  pass\n"
    if node_type == "try_statement":
        return header + "\n pass\nexcept E:\n pass\n"
    return OPENERS.get(node_type, "") + header + "\n pass\n"


def test_real_solutions_items_are_disjoint_exact_and_block_free(real_programs):
    for program in real_programs:
        analysis = analyze_code(program, "python")
        check_items(program, analysis, deep=True)


def test_real_solutions_as_fenced_responses(real_programs):
    for program in real_programs[:200]:
        response = "Here is a solution:\n\n```python\n" + program + "\n```\n\nIt works."
        analysis = analyze_response(response)
        check_items(response, analysis)
        assert analysis.units and not analysis.units[0].opaque
        inner = analyze_code(program, "python")
        offset = response.index("```python\n") + len("```python\n")
        assert [(i.start - offset, i.end - offset) for i in analysis.items] == [(i.start, i.end) for i in inner.items]


def test_no_selectable_item_overlaps_error(real_programs):
    for program in real_programs[:300]:
        broken = program.replace("):", ")", 1)  # damage one header per program
        analysis = analyze_code(broken, "python")
        check_items(broken, analysis)
        for item in analysis.items:
            assert not (item.selectable and item.broken)


code_lines = st.sampled_from([
    "x = 1", "y = x + 2", "def f(a):", "    return a * 2", "for i in range(3):", "    x += i", "if x:",
    "    pass", "else:", "print(x)", "import os", "class K:", "    z = 1", "while x > 0:", "    x -= 1",
    ")(", "'unterminated", "lambda: (", "\t", "", "# comment", "é = 'ü'", "try:", "except E as e:",
])
fence_lines = st.sampled_from(["```", "```python", "```js", "~~~", "````", "```rust", "Some prose.", "- item `code`"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(code_lines, fence_lines), max_size=30), st.sampled_from(["\n", "\r\n"]))
def test_arbitrary_responses_never_crash_and_keep_offsets(lines, newline):
    text = newline.join(lines)
    analysis = analyze_response(text)
    check_items(text, analysis)
    segments = analysis.segments
    if segments:
        assert segments[0].start == 0 and segments[-1].end == len(text)
        assert all(a.end == b.start for a, b in zip(segments, segments[1:]))
