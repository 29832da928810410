"""Core-logic leaves for the non-Python languages (method.md §2(c) with the §4 adjustments).

A leaf is core when it is a literal (string *content*, not quotes), a non-trivial identifier or
type name, a core keyword (``return``, ``new``, ``sizeof``, Go ``go``/``defer`` …) or a
computing operator. Structural keywords (``function``, ``let``, ``fn``, ``pub`` …), plain ``=``,
punctuation and delimiters are not core.

>>> from codeblock.structure.languages import parse_code
>>> from codeblock.structure.clike.tables import SPECS
>>> p = parse_code("let x = a + 1;", "javascript")
>>> leaf = p.root.child(0).child(0)  # the `let` keyword
>>> core_leaf_span(leaf, SPECS["javascript"], p.data) is None
True
"""

from __future__ import annotations

from codeblock.structure.clike.tables import BRACKET_PARENTS, CONTEXT_CORE, CORE_KEYWORDS, CORE_OPERATORS, QUOTE_CHARS, LangSpec

_WS = b" \t\r\n\f\v"
_QUOTE_BYTES = frozenset(QUOTE_CHARS.encode())
_TRIVIAL_TYPES = frozenset({"this", "self"})


def core_leaf_span(leaf, spec: LangSpec, data: bytes, ptype: str | None = None) -> tuple[int, int] | None:
    """Byte span of ``leaf`` if it is a core leaf, else None (quotes are trimmed off char literals).

    ``ptype`` is the parent's node type (looked up when not given)."""
    start, end = leaf.start_byte, leaf.end_byte
    if end <= start:
        return None
    typ = leaf.type
    if leaf.is_named:
        if typ in spec.comments or typ in spec.non_core_named or typ in _TRIVIAL_TYPES:
            return None
        raw = data[start:end]
        if end - start <= 4 and raw.decode("utf-8", "replace") in spec.trivial:
            return None
        if not raw.strip(_WS):
            return None
        # A literal that is one leaf with its quotes ('c', `x`): keep only the content.
        first = raw[0]
        if first in _QUOTE_BYTES and len(raw) >= 2 and raw[-1] == first:
            return (start + 1, end - 1) if len(raw) > 2 else None
        return start, end
    if ptype is None:
        parent = leaf.parent
        ptype = parent.type if parent is not None else ""
    if ptype in spec.literal_parents:
        return start, end
    if typ in CORE_KEYWORDS:
        return start, end
    if typ in CORE_OPERATORS:
        return None if ptype in BRACKET_PARENTS else (start, end)
    contexts = CONTEXT_CORE.get(typ)
    if contexts is not None and ptype in contexts:
        return start, end
    return None
