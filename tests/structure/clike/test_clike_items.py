"""Items, core leaves and def/use edges for the non-Python languages (method.md §4, §5(b),(c),(e))."""

from __future__ import annotations

import pytest

from codeblock.structure.clike.items import analyze_unit
from codeblock.structure.dataflow import build_edges
from codeblock.structure.languages import parse_code

FIXTURES = {
    "javascript": """\
import fs from "fs";
// comment
const h = async (u) => { await g(u); };
function f(a, b = 2) {
  let x = a + 1; // trailing
  if (x > 2) { x--; } else if (b) x++; else { return x; }
  for (let i = 0; i < 3; i++) x += i;
  for (const k of [1, 2]) { console.log(k); }
  do { x--; } while (x > 0);
  try { g(); } catch (e) { throw e; } finally { }
  switch (x) { case 1: b = 2; break; default: b = 3; }
  return `v=${x}`;
}
class A extends B { y = 1; m() { return this.y; } }
""",
    "typescript": """\
interface I { a: number; }
type T = string | number;
enum E { A = 1, B }
export function g(a: number, b?: string): boolean {
  const r = (a as number) > 0;
  return r;
}
class C { private x: number = 1; get(): number { return this.x; } }
""",
    "java": """\
import java.util.*;
class Problem {
  int count = 0;
  public static int f(int a) {
    int s = 0;
    for (int i = 0; i < a; i++) { s += i; }
    if (s > 10) { s = 10; } else s--;
    for (int v : List.of(1, 2)) s += v;
    System.out.println(s);
    return s;
  }
}
""",
    "c": """\
#include <stdio.h>
#define N 10
struct P { int x; };
int sum(int *xs, int n) {
  int s = 0;
  for (int i = 0; i < n; i++) {
    s += xs[i];
  }
  while (s > N) s -= N;
  switch (n) { case 0: return 0; default: break; }
  printf("%d\\n", s);
  return s;
}
""",
    "cpp": """\
#include <vector>
using namespace std;
template <typename T>
T mx(T a, T b) { return a > b ? a : b; }
class A {
 public:
  int x = 0;
  void m(vector<int>& v) { for (auto& e : v) { x += e; } }
};
int main() {
  auto f = [](int q) { return q + 1; };
  std::cout << f(1) << std::endl;
}
""",
    "go": """\
package main

import "fmt"

type P struct{ x int }

func (p *P) Add(d int) int {
	p.x += d
	return p.x
}

func main() {
	s := 0
	for i := 0; i < 3; i++ {
		s += i
	}
	for _, v := range []int{1, 2} {
		s += v
	}
	if s > 3 {
		s = 3
	} else {
		s--
	}
	switch s {
	case 1:
		s = 2
	default:
	}
	fmt.Println(s)
}
""",
    "rust": """\
use std::collections::HashMap;
struct P { x: i32 }
impl P {
    fn get(&self) -> i32 { self.x }
}
fn f(a: i32) -> i32 {
    let mut s = 0;
    for i in 0..a { s += i; }
    let t = match s { 0 => 1, _ => { s * 2 } };
    while s > 10 { s -= 1; }
    println!("{}", s);
    if s > t { s } else { t }
}
""",
}

EXPECTED_ITEMS = {
    "javascript": [
        'import fs from "fs";', "const h = async (u) =>", "await g(u);", "function f(a, b = 2)", "let x = a + 1;",
        "if (x > 2)", "x--;", "else", "if (b)", "x++;", "else", "return x;", "for (let i = 0; i < 3; i++)", "x += i;",
        "for (const k of [1, 2])", "console.log(k);", "do", "x--;", "while (x > 0);", "try", "g();", "catch (e)",
        "throw e;", "finally", "switch (x)", "case 1:", "b = 2;", "break;", "default:", "b = 3;", "return `v=${x}`;",
        "class A extends B", "y = 1", "m()", "return this.y;",
    ],
    "typescript": [
        "interface I", "a: number", "type T = string | number;", "enum E", "A = 1", "B",
        "export function g(a: number, b?: string): boolean", "const r = (a as number) > 0;", "return r;", "class C",
        "private x: number = 1", "get(): number", "return this.x;",
    ],
    "java": [
        "import java.util.*;", "class Problem", "int count = 0;", "public static int f(int a)", "int s = 0;",
        "for (int i = 0; i < a; i++)", "s += i;", "if (s > 10)", "s = 10;", "else", "s--;",
        "for (int v : List.of(1, 2))", "s += v;", "System.out.println(s);", "return s;",
    ],
    "c": [
        "#include <stdio.h>", "#define N 10", "struct P", "int x;", "int sum(int *xs, int n)", "int s = 0;",
        "for (int i = 0; i < n; i++)", "s += xs[i];", "while (s > N)", "s -= N;", "switch (n)", "case 0:", "return 0;",
        "default:", "break;", 'printf("%d\\n", s);', "return s;",
    ],
    "cpp": [
        "#include <vector>", "using namespace std;", "template <typename T>", "T mx(T a, T b)", "return a > b ? a : b;",
        "class A", "int x = 0;", "void m(vector<int>& v)", "for (auto& e : v)", "x += e;", "int main()",
        "auto f = [](int q)", "return q + 1;", "std::cout << f(1) << std::endl;",
    ],
    "go": [
        "package main", 'import "fmt"', "type P struct{ x int }", "func (p *P) Add(d int) int", "p.x += d", "return p.x",
        "func main()", "s := 0", "for i := 0; i < 3; i++", "s += i", "for _, v := range []int{1, 2}", "s += v",
        "if s > 3", "s = 3", "else", "s--", "switch s", "case 1:", "s = 2", "default:", "fmt.Println(s)",
    ],
    "rust": [
        "use std::collections::HashMap;", "struct P", "x: i32", "impl P", "fn get(&self) -> i32", "self.x",
        "fn f(a: i32) -> i32", "let mut s = 0;", "for i in 0..a", "s += i;", "let t = match s", "0 => 1,", "_ =>",
        "s * 2", "while s > 10", "s -= 1;", 'println!("{}", s);', "if s > t", "s", "else", "t",
    ],
}


def run(code: str, language: str, **kwargs):
    return analyze_unit(parse_code(code, language), unit_id=0, offset=0, first_item_id=0, **kwargs)


def texts(code, items):
    return [code[i.start:i.end] for i in items]


def by_text(code, items, text):
    found = [i for i in items if code[i.start:i.end] == text]
    assert found, f"no item {text!r} in {texts(code, items)}"
    return found[0]


def core(code, item):
    return [code[a:b] for a, b in item.core_spans]


@pytest.mark.parametrize("language", sorted(FIXTURES))
def test_fixture_items_exact(language):
    code = FIXTURES[language]
    items, _ = run(code, language)
    assert texts(code, items) == EXPECTED_ITEMS[language]
    assert [i.id for i in items] == list(range(len(items)))
    assert not any(i.broken for i in items)


def test_item_kinds_and_selectability():
    code = FIXTURES["javascript"]
    items, _ = run(code, "javascript")
    assert by_text(code, items, "const h = async (u) =>").kind == "prefix"
    assert by_text(code, items, "function f(a, b = 2)").kind == "header"
    assert by_text(code, items, "function f(a, b = 2)").is_header
    assert by_text(code, items, 'import fs from "fs";').reason == "boilerplate"
    assert by_text(code, items, "console.log(k);").reason == "boilerplate"
    assert by_text(code, items, "console.log(k);").is_node  # boilerplate is still a graph node
    for text in ("try", "finally", "else", "do", "default:"):
        item = by_text(code, items, text)
        assert not item.selectable and item.reason == "no_core_tokens"
    assert by_text(code, items, "let x = a + 1;").selectable
    cpp = FIXTURES["cpp"]
    cpp_items, _ = run(cpp, "cpp")
    assert by_text(cpp, cpp_items, "template <typename T>").kind == "decorator"
    assert by_text(cpp, cpp_items, "using namespace std;").boilerplate
    assert by_text(cpp, cpp_items, "std::cout << f(1) << std::endl;").boilerplate
    rust = FIXTURES["rust"]
    rust_items, _ = run(rust, "rust")
    assert by_text(rust, rust_items, "self.x").kind == "tail"
    assert by_text(rust, rust_items, 'println!("{}", s);').boilerplate
    go = FIXTURES["go"]
    go_items, _ = run(go, "go")
    assert by_text(go, go_items, "package main").boilerplate and by_text(go, go_items, "fmt.Println(s)").boilerplate
    java = FIXTURES["java"]
    java_items, _ = run(java, "java")
    assert by_text(java, java_items, "System.out.println(s);").boilerplate


def test_container_rule_oracle():
    code = "const h = async (u) => { await g(u); };"
    items, _ = run(code, "javascript")
    assert texts(code, items) == ["const h = async (u) =>", "await g(u);"]
    assert items[1].scope == ("<lambda>",) and items[0].scope == ()
    assert not any(i.start <= code.index("};") < i.end for i in items)  # `};` belongs to no item


@pytest.mark.parametrize("language,code,expected", [
    ("java", "Runnable r = () -> { run(); };", ["Runnable r = () ->", "run();"]),
    ("go", "package p\nfunc m() {\n\tf := func(x int) int { return x }\n\t_ = f\n}",
     ["package p", "func m()", "f := func(x int) int", "return x", "_ = f"]),
    ("rust", "fn m(o: i32) -> i32 {\n    let x = match o { 0 => 1, _ => 2 };\n    x\n}",
     ["fn m(o: i32) -> i32", "let x = match o", "0 => 1,", "_ => 2", "x"]),
    ("cpp", "int m() { auto f = [&](int q) { return q; }; return f(1); }",
     ["int m()", "auto f = [&](int q)", "return q;", "return f(1);"]),
    ("typescript", "items.forEach((v) => { total += v; });", ["items.forEach((v) =>", "total += v;"]),
])
def test_container_rule_languages(language, code, expected):
    items, _ = run(code, language)
    assert texts(code, items) == expected


@pytest.mark.parametrize("language,item_text,expected", [
    ("javascript", "let x = a + 1;", ["x", "a", "+", "1"]),
    ("javascript", "function f(a, b = 2)", ["f", "a", "b", "2"]),
    ("javascript", "return `v=${x}`;", ["return", "v=", "x"]),
    ("javascript", "return this.y;", ["return", "y"]),
    ("javascript", "for (const k of [1, 2])", ["k", "of", "1", "2"]),
    ("typescript", "const r = (a as number) > 0;", ["r", "a", "as", "number", ">", "0"]),
    ("typescript", "export function g(a: number, b?: string): boolean", ["g", "a", "number", "b", "string", "boolean"]),
    ("java", "public static int f(int a)", ["int", "f", "int", "a"]),
    ("java", "for (int i = 0; i < a; i++)", ["int", "i", "0", "i", "<", "a", "i", "++"]),
    ("c", 'printf("%d\\n", s);', ["printf", "%d", "\\n", "s"]),
    ("c", "int sum(int *xs, int n)", ["int", "sum", "int", "*", "xs", "int", "n"]),
    ("cpp", "return a > b ? a : b;", ["return", "a", ">", "b", "?", "a", ":", "b"]),
    ("cpp", "template <typename T>", ["T"]),
    ("go", "s := 0", ["s", ":=", "0"]),
    ("go", "for _, v := range []int{1, 2}", ["v", ":=", "range", "int", "1", "2"]),
    ("go", "func (p *P) Add(d int) int", ["p", "*", "P", "Add", "d", "int", "int"]),
    ("rust", "fn get(&self) -> i32", ["get", "&", "i32"]),
    ("rust", "let mut s = 0;", ["s", "0"]),
    ("rust", "for i in 0..a", ["i", "in", "0", "..", "a"]),
    ("rust", "0 => 1,", ["0", "=>", "1"]),
])
def test_core_leaves(language, item_text, expected):
    code = FIXTURES[language]
    items, _ = run(code, language)
    assert core(code, by_text(code, items, item_text)) == expected


def test_core_never_whitespace_or_comment():
    code = 'let s = " ";  // note x + 1\nlet t = s /* c */ + "a b";\n'
    items, _ = run(code, "javascript")
    for item in items:
        for a, b in item.core_spans:
            assert code[a:b].strip(), (a, b)
            assert "//" not in code[a:b] and "/*" not in code[a:b]
    assert texts(code, items) == ['let s = " ";', 'let t = s /* c */ + "a b";']
    assert core(code, items[1]) == ["t", "s", "+", "a b"]


E1 = {
    "javascript": "function f(a, b) { let x = a + 1; let y = b * 2; let z = x + y; return z; }",
    "typescript": "function f(a: number, b: number): number { let x = a + 1; let y = b * 2; let z = x + y; return z; }",
    "java": "int f(int a, int b) { int x = a + 1; int y = b * 2; int z = x + y; return z; }",
    "c": "int f(int a, int b) { int x = a + 1; int y = b * 2; int z = x + y; return z; }",
    "cpp": "int f(int a, int b) { int x = a + 1; int y = b * 2; int z = x + y; return z; }",
    "go": "func f(a int, b int) int { x := a + 1; y := b * 2; z := x + y; return z }",
    "rust": "fn f(a: i32, b: i32) -> i32 { let x = a + 1; let y = b * 2; let z = x + y; z }",
}


@pytest.mark.parametrize("language", sorted(E1))
def test_e1_edges(language):
    code = E1[language]
    items, flows = run(code, language)
    assert len(items) == 5, texts(code, items)
    assert build_edges(flows) == [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)]
    assert flows[4].returns_from is not None  # `return z` / the Rust tail


def test_e3_loop_and_e5_kill_js():
    code = "function g(xs) {\n  let total = 0;\n  for (const x of xs) {\n    total = total + x;\n  }\n  return total;\n}"
    items, flows = run(code, "javascript")
    assert build_edges(flows) == [(0, 2), (1, 3), (1, 4), (2, 3), (3, 4)]
    code = "let x = 1;\nx = 2;\nlet y = x + 1;\n"
    assert build_edges(run(code, "javascript")[1]) == [(1, 2)]


def test_e4_return_and_while_edges_c():
    code = ("int sq(int v) {\n  return v * v;\n}\nint main2(int n) {\n  int acc = 0;\n  int i = 0;\n"
            "  while (i < n) {\n    acc = acc + sq(i);\n    i = i + 1;\n  }\n  if (acc > 10) {\n    acc = 10;\n  }\n"
            "  return acc;\n}\n")
    items, flows = run(code, "c")
    expected = {(0, 1), (0, 6), (1, 6), (2, 5), (3, 6), (3, 8), (3, 10), (4, 5), (4, 6), (4, 7), (6, 8), (6, 10),
                (7, 5), (7, 6), (9, 10)}
    assert set(build_edges(flows)) == expected
    assert set(build_edges(flows, return_edges=False)) == expected - {(1, 6)}


def test_java_class_members_visible_from_methods():
    code = ("class C {\n  int n = 0;\n  void inc() { n = n + 1; }\n  int get() { return this.n; }\n"
            "  int twice() { return get() * 2; }\n}")
    items, flows = run(code, "java")
    edges = set(build_edges(flows))
    n_decl = by_text(code, items, "int n = 0;").id
    inc = by_text(code, items, "n = n + 1;").id
    ret = by_text(code, items, "return this.n;").id
    twice = by_text(code, items, "return get() * 2;").id
    assert {(n_decl, inc), (n_decl, ret), (inc, ret), (ret, twice)} <= edges  # (ret, twice): return edge
    get_header = by_text(code, items, "int get()").id
    assert (get_header, twice) in edges
    assert items[inc].scope == ("C", "inc")


def test_js_this_keys_and_method_calls():
    code = "class A {\n  y = 1;\n  m() { this.y = this.y + 1; }\n  k() { return this.y; }\n}"
    items, flows = run(code, "javascript")
    edges = set(build_edges(flows))
    field = by_text(code, items, "y = 1").id
    upd = by_text(code, items, "this.y = this.y + 1;").id
    ret = by_text(code, items, "return this.y;").id
    assert {(field, upd), (field, ret), (upd, ret)} <= edges
    assert "this.y" in items[upd].defs


def test_rust_shadowing_let_kills_and_tail_returns():
    code = "fn h(a: i32) -> i32 {\n    let x = a;\n    let x = x + 1;\n    let y = x * 2;\n    y\n}\nfn u() -> i32 { h(1) }"
    items, flows = run(code, "rust")
    edges = set(build_edges(flows))
    assert (1, 2) in edges and (2, 3) in edges and (1, 3) not in edges  # the second `let x` kills the first
    tail = by_text(code, items, "h(1)").id
    assert (4, tail) in edges  # return edge from the function-body tail `y`


def test_go_receiver_fields_and_range_nonkilling():
    code = FIXTURES["go"]
    items, flows = run(code, "go")
    edges = set(build_edges(flows))
    header = by_text(code, items, "func (p *P) Add(d int) int").id
    add = by_text(code, items, "p.x += d").id
    ret = by_text(code, items, "return p.x").id
    assert {(header, add), (add, ret)} <= edges
    assert "p.x" in items[add].defs and "p.x" in items[add].uses
    init = by_text(code, items, "s := 0").id
    print_ = by_text(code, items, "fmt.Println(s)").id
    assert (init, print_) in edges  # loops may run zero times: the first def survives
    imp = by_text(code, items, 'import "fmt"').id
    assert (imp, print_) in edges  # import -> use chain through a boilerplate node


def test_rust_if_tail_returns_reach_callers():
    code = FIXTURES["rust"] + "\nfn k() -> i32 { let v = f(3); v }"
    items, flows = run(code, "rust")
    edges = set(build_edges(flows))
    call = by_text(code, items, "let v = f(3);").id
    arms = [i.id for i in items if code[i.start:i.end] in ("s", "t") and i.kind == "tail"]
    assert len(arms) == 2 and {(a, call) for a in arms} <= edges
    assert by_text(code, items, "s * 2").id not in {a for a, b in edges if b == call}  # a `let` value, not a return
