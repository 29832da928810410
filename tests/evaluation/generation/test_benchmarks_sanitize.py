"""Sanitizer: code extraction from chat replies and EvalPlus-style pruning to the entry point's dependencies."""

from __future__ import annotations

import doctest

import pytest

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


# Raw outputs of a fine-tuned Qwen2.5-Coder-0.5B on MBPP (base-style prompt, headline experiment): the model closes a
# code block it was never shown opening. EvalPlus keeps the function; an older sanitizer returned "" for 146 of 378.
_MBPP_PROMPT = '"""\nWrite a function to find the shared elements from the given two lists.\nassert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))\n"""\n'
_STRAY_FENCES = [
    "def similar_elements(list1,list2):\n    return set(list1) & set(list2)\n````\n",
    "def similar_elements(list1,list2):\n    return set(list1) & set(list2)\n```output\n```output\nset((4, 5))\n``````output\n",
    "def similar_elements(a, b):\n    return set(a) & set(b)\n```\nIt intersects the sets:\n```python\nprint(similar_elements([1], [1]))\n```\n",
]


@pytest.mark.parametrize("completion", _STRAY_FENCES)
def test_code_before_a_stray_closing_fence_is_kept_like_evalplus(completion):
    from evalplus.sanitize import sanitize as evalplus_sanitize

    program = _MBPP_PROMPT + completion
    ours = sanitize(program, "similar_elements")
    assert ours.startswith("def similar_elements(") and "return set(" in ours
    assert ours.strip() == evalplus_sanitize(program, "similar_elements").strip()


def test_prose_that_calls_the_function_never_beats_a_fenced_definition():
    raw = ("Call solve(x) like solve(3) to get the answer; solve(x) doubles x. " * 5 +
           "\n```python\ndef solve(x):\n    return 2 * x\n```\n")
    assert sanitize(raw, "solve") == "def solve(x):\n    return 2 * x\n"
