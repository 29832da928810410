"""Boilerplate statements of the brace languages: never selectable items (prints, logging, ``using namespace``)."""

from __future__ import annotations

from codeblock.structure.clike.tables import LangSpec

_PRINT_JS = frozenset({"console.log", "console.error"})
_PRINT_C = frozenset({"printf", "puts"})
_COUT = frozenset({"std::cout", "cout", "std::cerr", "cerr"})
_PRINT_RUST = frozenset({"println", "print", "eprintln", "eprint", "dbg"})


def is_boilerplate(node, spec: LangSpec, source_of) -> bool:
    """Whether a statement is boilerplate: one of the language's boilerplate statement types, a C++ ``using
    namespace``, or a print call (``console.log``, ``printf``, ``fmt.Print*``, ``System.out.print*``, ``println!``,
    ``std::cout << ...``). ``source_of(node)`` returns a node's source text."""
    typ = node.type
    if typ in spec.boilerplate_stmts:
        return True
    if typ == "using_declaration":
        return any(c.type == "namespace" for c in node.children)
    if typ == "expression_statement":
        expr = next((c for c in node.named_children if c.type not in spec.comments), None)
    elif typ == "macro_invocation":
        expr = node
    else:
        return False
    if expr is None:
        return False
    name = spec.name
    if expr.type == "call_expression":
        fn = expr.child_by_field_name("function")
        if fn is None:
            return False
        text = source_of(fn)
        if name in ("javascript", "typescript", "tsx"):
            return text in _PRINT_JS
        if name in ("c", "cpp"):
            return text in _PRINT_C
        if name == "go":
            return text.startswith("fmt.Print")
        return False
    if expr.type == "method_invocation":
        obj = expr.child_by_field_name("object")
        meth = expr.child_by_field_name("name")
        return obj is not None and meth is not None and source_of(obj) == "System.out" \
            and source_of(meth).startswith("print")
    if expr.type == "macro_invocation":
        macro = expr.child_by_field_name("macro")
        return macro is not None and source_of(macro) in _PRINT_RUST
    if expr.type == "binary_expression" and name == "cpp":
        left = expr
        while left is not None and left.type == "binary_expression":
            op = left.child_by_field_name("operator")
            if op is None or op.type != "<<":
                return False
            left = left.child_by_field_name("left")
        return left is not None and source_of(left) in _COUT
    return False
