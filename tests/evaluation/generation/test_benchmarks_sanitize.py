"""Sanitizer: code extraction from chat replies and EvalPlus-style pruning to the entry point's dependencies."""

from __future__ import annotations

import doctest

import codeblock_eval.generation.sanitize as sanitize_module
from codeblock_eval.generation.sanitize import sanitize


def test_doctest():
    assert doctest.testmod(sanitize_module).failed == 0


def test_picks_block_with_entry_point_and_drops_tests():
    raw = ("Here is a helper:\n```python\ndef helper():\n    return 1\n```\nAnd the solution:\n```python\n"
           "import re\nLIMIT = 3\n\ndef solve(s):\n    return len(re.findall('a', s)) < LIMIT\n\n"
           "assert solve('aa')\nif __name__ == '__main__':\n    print(solve('a'))\n```\n")
    out = sanitize(raw, "solve")
    assert out == "import re\n\nLIMIT = 3\n\ndef solve(s):\n    return len(re.findall('a', s)) < LIMIT\n"


def test_unterminated_fence_and_truncated_tail():
    raw = "```python\ndef f(x):\n    return x + 1\n\ndef g(y):\n    return f(y) +"
    assert sanitize(raw, "f") == "def f(x):\n    return x + 1\n"


def test_no_fence_keeps_all_definitions_when_entry_point_missing():
    raw = "def a():\n    return 1\nprint(a())\nclass B:\n    pass\n"
    assert sanitize(raw, "nothere") == "def a():\n    return 1\n\nclass B:\n    pass\n"


def test_decorators_and_other_languages():
    raw = "```python\nimport functools\n@functools.lru_cache(None)\ndef fib(n):\n    return n if n < 2 else fib(n-1) + fib(n-2)\n```"
    assert sanitize(raw, "fib").startswith("import functools\n\n@functools.lru_cache(None)\ndef fib(n):")
    assert sanitize("```cpp\nint add(int a, int b) { return a + b; }\n```", "add", "cpp") == (
        "int add(int a, int b) { return a + b; }\n")
    assert sanitize("no code at all !!!", "f") == ""
