"""method.md §5(b), (c), (e) oracles for Python: exact items, core leaves, edges, reach, bridge."""

from __future__ import annotations

import pytest

from codeblock.structure.analysis import StructureConfig, analyze_code

FIXTURE = '''import os
from typing import List

def f(xs: List[int], k=3) -> int:
    """doc"""
    total = 0  # comment
    for i, x in enumerate(xs):
        if x > k:
            total += x
        elif x == 0:
            continue
        else:
            total -= 1
    while total > 100:
        total //= 2
    try:
        y = [a*a for a in xs if a]
    except ValueError as e:
        raise
    finally:
        pass
    with open("f") as fh:
        data = fh.read()
    print(total)
    return total + len(y)

@decorator
class A(B):
    z: int = 3
    def m(self):
        self.z = lambda q: q + 1
'''

EXPECTED_ITEMS = [
    "import os", "from typing import List",
    "def f(xs: List[int], k=3) -> int:", '"""doc"""', "total = 0",
    "for i, x in enumerate(xs):", "if x > k:", "total += x",
    "elif x == 0:", "continue", "else:", "total -= 1",
    "while total > 100:", "total //= 2",
    "try:", "y = [a*a for a in xs if a]", "except ValueError as e:", "raise", "finally:", "pass",
    'with open("f") as fh:', "data = fh.read()",
    "print(total)", "return total + len(y)",
    "@decorator", "class A(B):", "z: int = 3", "def m(self):", "self.z = lambda q: q + 1",
]

E1 = "def f(a, b):\n    x = a + 1\n    y = b * 2\n    z = x + y\n    return z\n"
E2 = "a = 1\nb = a + 1\nc = 2\nd = c * 3\ne = b + d\nprint(e)\n"
E3 = "def g(xs):\n    total = 0\n    for x in xs:\n        total = total + x\n    return total\n"
E4 = (
    "def sq(v):\n    return v * v\n\ndef main(n):\n    acc = 0\n    i = 0\n    while i < n:\n"
    "        acc = acc + sq(i)\n        i = i + 1\n    if acc > 10:\n        acc = 10\n    return acc\n"
)
E5 = "x = 1\nx = 2\ny = x + 1\n"


def texts(analysis):
    return [analysis.text[i.start : i.end] for i in analysis.items]


def core(analysis, index):
    item = analysis.items[index]
    return [analysis.text[a:b] for a, b in item.core_spans]


def test_fixture_partitions_into_the_29_spec_items():
    analysis = analyze_code(FIXTURE, "python")
    assert texts(analysis) == EXPECTED_ITEMS
    kinds = {analysis.text[i.start : i.end]: i.kind for i in analysis.items}
    assert kinds['"""doc"""'] == "docstring"
    assert kinds["@decorator"] == "decorator"
    assert kinds["def f(xs: List[int], k=3) -> int:"] == "header"


def test_headers_end_exactly_at_colon():
    analysis = analyze_code("if x:  # trailing comment\n    y = 1\n", "python")
    assert texts(analysis) == ["if x:", "y = 1"]


@pytest.mark.parametrize("text,reason", [
    ('"""doc"""', "docstring"), ("pass", "boilerplate"), ("import os", "boilerplate"),
    ("else:", "no_core_tokens"), ("try:", "no_core_tokens"), ("finally:", "no_core_tokens"),
])
def test_unselectable_items_record_their_reason(text, reason):
    analysis = analyze_code(FIXTURE, "python")
    item = next(i for i in analysis.items if analysis.text[i.start : i.end] == text)
    assert not item.selectable and item.reason == reason


def test_core_leaves_match_spec_examples():
    analysis = analyze_code(FIXTURE, "python")
    by_text = {analysis.text[i.start : i.end]: idx for idx, i in enumerate(analysis.items)}
    assert core(analysis, by_text["def f(xs: List[int], k=3) -> int:"]) == ["f", "xs", "List", "int", "k", "3", "int"]
    assert core(analysis, by_text["total += x"]) == ["total", "+=", "x"]
    assert core(analysis, by_text["z: int = 3"]) == ["z", "int", "3"]
    comp = core(analysis, by_text["y = [a*a for a in xs if a]"])
    assert "in" in comp and not {"=", "[", "]", "for", "if"} & set(comp)
    for text in ("else:", "try:", "finally:", "pass", '"""doc"""'):
        assert core(analysis, by_text[text]) == []


def test_core_leaf_rules_for_keywords_and_operators():
    analysis = analyze_code("y = a if c else b\nz = f(k=1)\nw = not x and y is not None\n", "python")
    assert core(analysis, 0) == ["y", "a", "if", "c", "else", "b"]
    assert core(analysis, 1) == ["z", "f", "k", "1"]  # keyword-argument '=' is not core
    assert core(analysis, 2) == ["w", "not", "x", "and", "y", "is", "not", "None"]


def test_comment_inside_item_is_never_core():
    src = "x = (1 +  # note\n     2)\n"
    analysis = analyze_code(src, "python")
    assert core(analysis, 0) == ["x", "1", "+", "2"]


def reach_bridge(analysis):
    unit = analysis.units[0]
    return [unit.reach[i] for i in sorted(unit.reach)], [unit.bridge[i] for i in sorted(unit.bridge)]


def test_e1_edges_reach_bridge():
    analysis = analyze_code(E1, "python")
    assert set(analysis.edges) == {(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)}
    reach, bridge = reach_bridge(analysis)
    assert reach == pytest.approx([1, 0.5, 0.5, 0.25, 0])
    assert bridge == pytest.approx([0, 1 / 3, 1 / 3, 1, 0])


def test_e2_edges_reach_bridge_and_articulation():
    analysis = analyze_code(E2, "python")
    assert set(analysis.edges) == {(0, 1), (1, 4), (2, 3), (3, 4), (4, 5)}
    reach, bridge = reach_bridge(analysis)
    assert [r * 5 for r in reach] == pytest.approx([3, 2, 3, 2, 1, 0])
    assert bridge == pytest.approx([0, 0.5, 0, 0.5, 1, 0])  # bc = [0, .1, 0, .1, .2, 0], max-normalised
    articulation = analyze_code(E2, "python", StructureConfig(bridge_mode="articulation"))
    assert articulation.units[0].bridge[4] == pytest.approx(0.8)
    assert analysis.items[5].boilerplate and analysis.items[5].is_node


def test_e3_loop_carried_and_zero_trip_edges():
    analysis = analyze_code(E3, "python")
    assert set(analysis.edges) == {(0, 2), (1, 3), (1, 4), (2, 3), (3, 4)}
    unit = analysis.units[0]
    assert unit.bridge[2] == pytest.approx(unit.bridge[3])  # bc[2] = bc[3] = 2/12


def test_e4_while_loop_and_return_edges():
    analysis = analyze_code(E4, "python")
    expected = {(0, 1), (0, 6), (1, 6), (2, 5), (3, 6), (3, 8), (3, 10), (4, 5), (4, 6), (4, 7),
                (6, 8), (6, 10), (7, 5), (7, 6), (9, 10)}
    assert set(analysis.edges) == expected
    unit = analysis.units[0]
    assert unit.reach[4] * 10 == pytest.approx(5) and unit.reach[7] * 10 == pytest.approx(4)
    no_returns = analyze_code(E4, "python", StructureConfig(return_edges=False))
    assert set(no_returns.edges) == expected - {(1, 6)}


def test_e5_killed_definition():
    assert analyze_code(E5, "python").edges == [(1, 2)]


def test_metric_properties_on_all_oracles():
    for src in (E1, E2, E3, E4, E5, FIXTURE):
        analysis = analyze_code(src, "python")
        assert all(a != b for a, b in analysis.edges)
        unit = analysis.units[0]
        assert all(0 <= v <= 1 for v in list(unit.reach.values()) + list(unit.bridge.values()))


def test_single_node_unit_has_zero_signals():
    unit = analyze_code("x = 1\n", "python").units[0]
    assert unit.reach == {0: 0.0} and unit.bridge == {0: 0.0}


def test_scopes_self_keys_and_mutations():
    src = (
        "class C:\n    def __init__(self):\n        self.items = []\n    def add(self, x):\n"
        "        self.items.append(x)\n    def get(self):\n        return self.items\n"
        "def use():\n    xs = []\n    xs.append(1)\n    return xs\n"
    )
    analysis = analyze_code(src, "python")
    t = texts(analysis)
    edge_texts = {(t[a], t[b]) for a, b in analysis.edges}
    assert ("self.items = []", "return self.items") in edge_texts  # class-wide, flow-insensitive
    assert ("self.items.append(x)", "return self.items") in edge_texts  # mutating call
    assert ("xs.append(1)", "return xs") in edge_texts
    assert ("xs = []", "xs.append(1)") in edge_texts


def test_main_guard_and_module_print_are_boilerplate():
    src = 'def f():\n    print(1)\n\nprint(f())\nif __name__ == "__main__":\n    f()\n'
    analysis = analyze_code(src, "python")
    flags = {analysis.text[i.start : i.end]: i.boilerplate for i in analysis.items}
    assert flags == {"def f():": False, "print(1)": False, "print(f())": True,
                     'if __name__ == "__main__":': True, "f()": True}


def test_block_granularity_adds_whole_statement_candidates():
    analysis = analyze_code(E3, "python", StructureConfig(granularity="block"))
    blocks = [i for i in analysis.items if i.kind == "block"]
    assert [analysis.text[b.start : b.end] for b in blocks][1] == "for x in xs:\n        total = total + x"
    assert all(not b.is_node for b in blocks)
