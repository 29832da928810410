"""Property tests for the non-Python item walker over real code (MultiPL-E HumanEval prompts + tests,
small C programs) and junk input (method.md §5(b) "Properties, for every fixture in every language")."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeblock.structure.clike.items import analyze_unit
from codeblock.structure.clike.tables import SPECS
from codeblock.structure.dataflow import build_edges
from codeblock.structure.languages import SNIPPET_WRAPPERS, _parse_once, error_ranges, overlaps_any, parse_code

MULTIPLE = {"javascript": "js", "typescript": "ts", "java": "java", "cpp": "cpp", "go": "go", "rust": "rs"}
SAMPLE = 40

C_PROGRAMS = [
    "#include <stdio.h>\n#include <string.h>\n\nstatic int count(const char *s, char c) {\n  int n = 0;\n"
    "  for (size_t i = 0; i < strlen(s); i++) {\n    if (s[i] == c) n++;\n  }\n  return n;\n}\n\n"
    "int main(void) {\n  printf(\"%d\\n\", count(\"banana\", 'a'));\n  return 0;\n}\n",
    "typedef struct Node { int v; struct Node *next; } Node;\n\nint sum(Node *head) {\n  int s = 0;\n"
    "  while (head != NULL) {\n    s += head->v;\n    head = head->next;\n  }\n  return s;\n}\n",
    "#define MAX(a, b) ((a) > (b) ? (a) : (b))\nenum Color { RED, GREEN = 2 };\nunion U { int i; float f; };\n"
    "int f(int x) {\n  switch (x) {\n    case RED: return 1;\n    case GREEN: { x++; break; }\n    default: x = MAX(x, 3);\n  }\n"
    "  do { x--; } while (x > 10);\nend:\n  return x;\n}\n",
    "#ifdef DEBUG\nint dbg = 1;\n#else\nint dbg = 0;\n#endif\nint g(int *a, int n) {\n  int best = a[0];\n"
    "  for (int i = 1; i < n; ++i)\n    if (a[i] > best)\n      best = a[i];\n    else\n      continue;\n  return best;\n}\n",
]


def load_programs(data_dir, language):
    path = data_dir / "multipl-e" / f"humaneval-{MULTIPLE[language]}-reworded.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    step = max(1, len(rows) // SAMPLE)
    return [row["prompt"] + row["tests"] for row in rows[::step][:SAMPLE]]


# Minimal enclosures that make an item parse on its own; an item passes if ANY parses with no ERROR.
def _templates(language):
    js = [("", ""), ("class _K {\n", "\n}"), ("switch (x) {\n", "\n}"), ("if (1) {}\n", ""), ("try {}\n", ""),
          ("", " while (0);")]
    java_method = [("class _W {\nvoid _m() {\n" + p, s + "\n}}") for p, s in
                   [("", ""), ("switch (x) {\n", "\n}"), ("if (true) {}\n", ""), ("try {}\n", ""), ("", " while (true);"),
                    ("int y = switch (x) {\n", "\n};")]]
    c_fn = [("void _w() {\n" + p, s + "\n}") for p, s in
            [("", ""), ("switch (x) {\n", "\n}"), ("if (1) {}\n", ""), ("try {}\n", ""), ("", " while (0);")]]
    return {
        "javascript": js,
        "typescript": js + [("interface _I {\n", "\n}"), ("enum _E {\n", "\n}")],
        "java": [("", ""), ("class _K {\n", "\n}"), ("enum _E {\n", "\n}")] + java_method,
        "c": [("", ""), ("", ";"), ("struct _S {\n", "\n};"), ("enum _E {\n", "\n};")] + c_fn,
        "cpp": [("", ""), ("", ";"), ("class _K {\n", "\n};"), ("", " void _f() {}")] + c_fn,
        "go": [("package p\n", ""), ("package p\nfunc _() {\n", "\n}"), ("package p\nfunc _() {\nswitch {\n", "\n}\n}"),
               ("package p\nfunc _() {\nif true {} ", "\n}"), ("package p\nfunc _() {\nselect {\n", "\n}\n}")],
        "rust": [("", ""), ("fn _w() {\n", "\n}"), ("fn _w() {\nmatch x {\n", "\n}\n}"), ("fn _w() {\nif true {} ", "\n}"),
                 ("struct _S {\n", "\n}"), ("enum _E {\n", "\n}"), ("", " fn _f() {}"), ("impl _S {\n", "\n}")],
    }[language]


def parses_somehow(text, language):
    for prefix, suffix in _templates(language):
        if not parse_code(prefix + text + suffix, language, allow_wrap=False).root.has_error:
            return True
    return False


def check_unit(code, language, *, deep=True):
    parsed = parse_code(code, language)
    items, flows = analyze_unit(parsed, unit_id=0, offset=5, first_item_id=3)
    spec = SPECS[language]
    assert [i.id for i in items] == list(range(3, 3 + len(items)))
    shifted = " " * 5 + code
    previous = 5
    for item in items:
        text = shifted[item.start:item.end]
        assert item.start >= previous, "items overlap or are unsorted"
        previous = item.end
        assert 5 <= item.start < item.end <= 5 + len(code)
        assert text == text.strip()
        for a, b in item.core_spans:
            assert item.start <= a < b <= item.end and shifted[a:b].strip()
        if item.selectable:
            assert item.core_spans and not item.broken and not item.boilerplate
    errors = error_ranges(parsed.root)
    blocks = []
    stack = [parsed.root]
    while stack:
        node = stack.pop()
        if node.type in spec.blocks and parsed.inside_original(node.start_byte, node.end_byte):
            blocks.append(parsed.span(node))
        stack.extend(node.children)
    for item in items:
        start, end = item.start - 5, item.end - 5
        # A block with exactly the item's span is its enclosing one-statement container (Go statement_list).
        assert not any(start <= a and b <= end and b > a and (a, b) != (start, end) for a, b in blocks), \
            f"item contains a block: {code[start:end]!r}"
        if item.selectable:
            data_start = len(parsed.source[:start].encode()) + parsed.prefix_bytes
            data_end = len(parsed.source[:end].encode()) + parsed.prefix_bytes
            assert not overlaps_any(data_start, data_end, errors)
    nodes = {i.id: i for i in items if i.is_node}
    assert [f.index for f in flows] == sorted(nodes)
    for flow in flows:
        item = nodes[flow.index]
        assert flow.scope == (".".join(item.scope) if item.scope else "<module>")
        assert flow.pos == item.start
    for a, b in build_edges(flows):
        assert a in nodes and b in nodes and a != b
    if deep and not parsed.root.has_error:
        for item in items:
            text = code[item.start - 5:item.end - 5]
            if item.kind == "header":
                assert parses_somehow(text + " {}", language), f"header does not parse: {text!r}"
            elif item.kind == "simple" and item.node_type in spec.simple:
                assert parses_somehow(text, language), f"simple statement does not parse: {text!r}"
    return items


@pytest.mark.parametrize("language", sorted(MULTIPLE))
def test_multipl_e_properties(data_dir, language):
    programs = load_programs(data_dir, language)
    assert len(programs) == SAMPLE
    total = 0
    for code in programs:
        total += len(check_unit(code, language))
    assert total > 5 * SAMPLE


def test_c_programs_properties():
    for code in C_PROGRAMS:
        items = check_unit(code, "c")
        assert items and not any(i.broken for i in items)


@pytest.mark.parametrize("language", ["go", "java", "c", "cpp", "rust"])
def test_snippet_wrapper_is_discarded(language):
    body = {"go": "x := 1\ny := x + 2", "java": "int x = 1;\nint y = x + 2;", "c": "int x = 1;\nint y = x + 2;",
            "cpp": "int x = 1;\nint y = x + 2;", "rust": "let x = 1;\nlet y = x + 2;"}[language]
    prefix, suffix = SNIPPET_WRAPPERS[language]
    parsed = _parse_once(body, language, prefix, suffix)  # the retry's parse, forced
    items, flows = analyze_unit(parsed, unit_id=0, offset=10, first_item_id=0)
    assert [body[i.start - 10:i.end - 10] for i in items] == body.split("\n")
    assert all(i.scope == () for i in items)  # the wrapper function is no scope
    assert build_edges(flows) == [(0, 1)]


def test_snippet_retry_natural_go():
    code = "goto L"
    parsed = parse_code(code, "go")
    assert parsed.wrapped
    items, _ = analyze_unit(parsed, unit_id=0, offset=0, first_item_id=0)
    assert [code[i.start:i.end] for i in items] == ["goto L"]


@pytest.mark.parametrize("language,code", [
    ("javascript", "function f() {\n  let x = 1;\n  return x +;\n}\nlet ok = 2;\n"),
    ("java", "class A { void m() { int x = ; foo(); } }"),
    ("c", "int f() { int x = 1 return x; }\nint y = 2;\n"),
    ("go", "package p\nfunc f() {\n\tx := \n\ty := 2\n}\n"),
    ("rust", "fn f() { let x = ; let y = 2; }\nfn g() -> i32 { 1 }\n"),
])
def test_broken_items(language, code):
    parsed = parse_code(code, language)
    items, _ = analyze_unit(parsed, unit_id=0, offset=0, first_item_id=0)
    broken = [i for i in items if i.broken]
    assert broken, [code[i.start:i.end] for i in items]
    assert all(not i.selectable and i.reason == "broken" and not i.is_node for i in broken)
    assert any(not i.broken for i in items)
    check_unit(code, language, deep=False)


def test_crlf_tabs_and_non_ascii():
    code = "function f(größe) {\r\n\tlet ñ = größe + 1; // ünïcode\r\n\treturn ñ * 2;\r\n}\r\n"
    items, flows = analyze_unit(parse_code(code, "javascript"), unit_id=0, offset=7, first_item_id=0)
    shifted = "x" * 7 + code
    assert [shifted[i.start:i.end] for i in items] == ["function f(größe)", "let ñ = größe + 1;", "return ñ * 2;"]
    assert [shifted[a:b] for a, b in items[1].core_spans] == ["ñ", "größe", "+", "1"]
    assert build_edges(flows) == [(0, 1), (1, 2)]
    rust = "fn f() {\r\n\tlet s = \"héllo\";\r\n\tprintln!(\"{}\", s);\r\n}"
    items, _ = analyze_unit(parse_code(rust, "rust"), unit_id=0, offset=0, first_item_id=0)
    assert [rust[i.start:i.end] for i in items] == ["fn f()", 'let s = "héllo";', 'println!("{}", s);']
    assert [rust[a:b] for a, b in items[1].core_spans] == ["s", "héllo"]


@pytest.mark.parametrize("language", sorted(SPECS))
def test_junk_never_crashes(language):
    deep = "{" * 3000 + "x" + "}" * 3000
    long = "\n".join(f"x{i} = x{i - 1} + {i};" for i in range(1, 10000))
    for code in ["", " ", "\x00\x01\xff", "{{{{ unclosed", "}}}}", "\"unterminated", deep, long, "é" * 50,
                 "if (x) {\n" * 300]:
        parsed = parse_code(code, language)
        items, flows = analyze_unit(parsed, unit_id=0, offset=0, first_item_id=0)
        previous = 0
        for item in items:
            assert previous <= item.start < item.end <= len(code)
            previous = item.end
        build_edges(flows)


@pytest.mark.parametrize("language", ["javascript", "java", "go", "rust", "c", "cpp", "typescript"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.sampled_from([
    "x", "y", " = ", "1", "+", ";", "\n", "{", "}", "(", ")", "if ", "for ", "while ", "return ", "fn ", "function ",
    "int ", "let ", ":=", "=>", "\"s\"", "// c\n", "é", "\t", "\r\n", "class ", "func ", "match ", "[", "]", ",",
]), max_size=40))
def test_fuzz_invariants(language, pieces):
    code = "".join(pieces)
    check_unit(code, language, deep=False)


def test_block_granularity_candidates():
    code = "function f(a) {\n  if (a) { a++; }\n  return a;\n}"
    items, _ = analyze_unit(parse_code(code, "javascript"), unit_id=0, offset=0, first_item_id=0, granularity="block")
    blocks = [i for i in items if i.kind == "block"]
    assert [code[i.start:i.end] for i in blocks] == [code, "if (a) { a++; }"]
    assert all(not i.is_node for i in blocks)
    inner = blocks[1]
    assert [code[a:b] for a, b in inner.core_spans] == ["a", "a", "++"]
    assert [i.id for i in items] == list(range(len(items)))


def test_exclude_main_body():
    code = "int f(int x) { return x + 1; }\nint main() {\n  int y = f(2);\n  return y;\n}"
    items, _ = analyze_unit(parse_code(code, "c"), unit_id=0, offset=0, first_item_id=0, exclude_main_body=True)
    flags = {code[i.start:i.end]: i.boilerplate for i in items}
    assert flags == {"int f(int x)": False, "return x + 1;": False, "int main()": True, "int y = f(2);": True,
                     "return y;": True}
