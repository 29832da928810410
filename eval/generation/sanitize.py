"""Extract the program from a model reply, EvalPlus-style.

1. Code extraction: fenced blocks (```` ```python ```` or bare fences, an unterminated last fence included) and the
   text between them; the longest piece that defines the entry point wins (a reply that starts inside a code block --
   a base-style completion, or code after a chat prefill -- and then closes it keeps its code, as ``evalplus.sanitize``
   does), else the longest fenced block that calls it, else the longest fenced block. No fence: the whole reply.
2. Python only: cut to the longest syntactically valid prefix (a reply that trails off mid-statement still keeps its
   complete functions), then keep imports, functions, classes and top-level assignments; drop tests, prints,
   ``if __name__ == "__main__":`` blocks and other statements.
3. With an entry point: keep only definitions the entry point reaches (names it references, transitively), plus all
   imports, as ``evalplus.sanitize`` does. If the entry point is not defined, keep every definition.

    >>> print(sanitize("Sure!\\n```python\\nimport math\\ndef f(x):\\n    return g(x)\\ndef g(x):\\n    return x\\n"
    ...                "print(f(1))\\n```", "f"), end="")
    import math
    <BLANKLINE>
    def f(x):
        return g(x)
    <BLANKLINE>
    def g(x):
        return x
"""

from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_DEF_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _pieces(raw: str) -> tuple[list[str], list[str]]:
    """The fenced blocks of ``raw`` and the text outside them (before, between and after the blocks)."""
    fenced, outside, pos = [], [], 0
    for match in _FENCE.finditer(raw):
        outside.append(raw[pos:match.start()])
        fenced.append(match.group(2))
        pos = match.end()
    outside.append(raw[pos:])
    return fenced, outside


def extract_code(raw: str, entry_point: str | None = None) -> str:
    """The code piece of a reply.

    >>> extract_code('def f():\\n    return 1\\n```\\nThat is all.\\n```output\\n1\\n```', "f")
    'def f():\\n    return 1\\n'
    """
    fenced, outside = _pieces(raw)
    if not fenced:
        return raw
    if entry_point:
        name = re.escape(entry_point)
        # Text outside the fences counts only where it defines the entry point: a stray closing fence after the code
        # (the model closing a block it was never shown opening) must not hide that code, while prose that merely
        # mentions the function never competes with a fenced block.
        defines = re.compile(rf"\b(def|class|function|fn)\s+{name}\b")
        hits = [piece for piece in fenced + outside if defines.search(piece)]
        if hits:
            return max(hits, key=len)
        calls = re.compile(rf"\b{name}\s*\(")
        hits = [block for block in fenced if calls.search(block)]
        if hits:
            return max(hits, key=len)
    return max(fenced, key=len)


def _longest_valid_prefix(code: str) -> str:
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end])
        try:
            ast.parse(candidate)
            return candidate
        except SyntaxError:
            continue
    return ""


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, _DEF_NODES):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def sanitize(raw: str, entry_point: str | None, language: str = "python") -> str:
    """Return the program to execute. Never raises; an empty string means nothing usable was found."""
    code = extract_code(raw, entry_point)
    if language != "python":
        return code.strip("\n") + "\n" if code.strip() else ""
    code = _longest_valid_prefix(code)
    if not code.strip():
        return ""
    tree = ast.parse(code)
    lines = code.splitlines()
    imports, defs = [], []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(node)
        elif isinstance(node, _DEF_NODES) or isinstance(node, (ast.Assign, ast.AnnAssign)):
            defs.append(node)
    by_name: dict[str, list[ast.stmt]] = {}
    for node in defs:
        for name in _defined(node):
            by_name.setdefault(name, []).append(node)
    keep = set(map(id, defs))
    if entry_point and entry_point in by_name:
        keep, todo = set(), [entry_point]
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for node in by_name.get(name, ()):
                keep.add(id(node))
                todo.extend(_names(node) - seen)

    def segment(node: ast.stmt) -> str:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return "\n".join(lines[start - 1: node.end_lineno])

    parts = [segment(n) for n in imports]
    body = [segment(n) for n in defs if id(n) in keep]
    out = "\n".join(parts)
    if body:
        out = (out + "\n\n" if out else "") + "\n\n".join(body)
    return out.strip("\n") + "\n" if out.strip() else ""
