"""Python coding items and core-logic leaves (method.md §2(b), §2(c)).

The walk goes from the module through block-like containers and emits, in source order:
one item per simple statement, a *header* item per compound statement or clause (ending at
its ``:``), one item per decorator, and a ``docstring`` item for bare string statements.
Items are disjoint and never contain a ``block``. Data-flow facts are gathered by
:mod:`codeblock.structure.python.defuse` from the same walk.

>>> from codeblock.structure.languages import parse_code
>>> items, _ = analyze_unit(parse_code("if x > 1:\\n    y = 2\\n", "python"), unit_id=0, offset=0, first_item_id=0)
>>> [(i.kind, "if x > 1:\\n    y = 2\\n"[i.start:i.end]) for i in items]
[('header', 'if x > 1:'), ('simple', 'y = 2')]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tree_sitter

from codeblock.structure.datatypes import (
    REASON_BOILERPLATE,
    REASON_BROKEN,
    REASON_DOCSTRING,
    REASON_NO_CORE,
    Item,
)
from codeblock.structure.languages import ParsedCode, error_ranges, overlaps_any

SIMPLE_STATEMENTS = frozenset({
    "expression_statement", "return_statement", "raise_statement", "assert_statement",
    "import_statement", "import_from_statement", "future_import_statement",
    "pass_statement", "break_statement", "continue_statement",
    "global_statement", "nonlocal_statement", "delete_statement", "type_alias_statement",
    "print_statement", "exec_statement",
})
COMPOUND_STATEMENTS = frozenset({
    "function_definition", "class_definition", "if_statement", "for_statement", "while_statement",
    "try_statement", "with_statement", "match_statement",
})
CLAUSES = frozenset({"elif_clause", "else_clause", "except_clause", "except_group_clause", "finally_clause", "case_clause"})
IMPORTS = frozenset({"import_statement", "import_from_statement", "future_import_statement"})
LOOPS = frozenset({"for_statement", "while_statement"})

CORE_KEYWORDS = frozenset({"return", "yield", "raise", "break", "continue", "await", "lambda", "not", "and", "or", "in", "is"})
TRIVIAL_NAMES = frozenset({"self", "cls", "_"})
# Parents under which an operator token is a real operator (not `*args`, `import *`, `=`...).
OPERATOR_PARENTS = frozenset({
    "binary_operator", "unary_operator", "comparison_operator", "boolean_operator", "not_operator",
    "augmented_assignment", "named_expression", "not in", "is not",
})
# Named leaves that carry no logic.
NON_CORE_NAMED_LEAVES = frozenset({
    "comment", "line_continuation", "string_start", "string_end", "type_conversion", "keyword_separator",
    "positional_separator", "wildcard_import",
})
# Named nodes taken whole as one core span (their children are escapes, not separate logic).
CORE_ATOMS = frozenset({"string_content"})


@dataclass
class PyItemContext:
    """Where an item sits: used by the def/use pass."""

    node: tree_sitter.Node  # the statement / clause / decorator node
    header_end_byte: int | None  # for headers: where the header stops
    scope_path: tuple[str, ...]
    scope_kinds: tuple[str, ...]  # "function" | "class" per scope_path element
    block_span_bytes: tuple[int, int]  # nearest enclosing block (or the unit)
    loops: list[tuple[int, int, tuple[str, ...]]] = field(default_factory=list)  # loop body byte spans + scope
    body_span_bytes: tuple[int, int] | None = None  # for function headers: the body block
    body_span_chars: tuple[int, int] | None = None  # the same in response chars (set by the def/use pass)


def _body_of(node: tree_sitter.Node) -> tree_sitter.Node | None:
    body = node.child_by_field_name("body") or node.child_by_field_name("consequence")
    if body is not None and body.type == "block":
        return body
    return next((c for c in node.children if c.type == "block"), None)


def _header_end(node: tree_sitter.Node, body: tree_sitter.Node | None) -> int:
    """End of the last non-comment child that starts before the body (the `:`)."""
    end = node.start_byte
    for child in node.children:
        if body is not None and child.start_byte >= body.start_byte:
            break
        if child.type in CLAUSES or child.type == "block":
            break
        if child.type != "comment":
            end = child.end_byte
    return end


def is_docstring(node: tree_sitter.Node) -> bool:
    named = [c for c in node.named_children if c.type != "comment"]
    return node.type == "expression_statement" and len(named) == 1 and named[0].type in ("string", "concatenated_string")


def _is_main_guard(node: tree_sitter.Node, parsed: ParsedCode) -> bool:
    cond = node.child_by_field_name("condition")
    if node.type != "if_statement" or cond is None:
        return False
    text = parsed.text(cond).replace("'", '"').replace(" ", "")
    return text in ('__name__=="__main__"', '"__main__"==__name__')


def _is_print_call(node: tree_sitter.Node, parsed: ParsedCode) -> bool:
    named = node.named_children
    if node.type != "expression_statement" or not named or named[0].type != "call":
        return False
    func = named[0].child_by_field_name("function")
    return func is not None and func.type == "identifier" and parsed.text(func) == "print"


class _Walker:
    def __init__(self, parsed: ParsedCode, exclude_main_body: bool, granularity: str):
        self.parsed = parsed
        self.exclude_main_body = exclude_main_body
        self.granularity = granularity
        self.records: list[tuple[str, int, int, PyItemContext, bool]] = []  # kind, start_b, end_b, ctx, boilerplate
        self.block_items: list[tuple[int, int, str]] = []

    def walk_container(self, children, ctx: PyItemContext, boilerplate: bool) -> None:
        for child in children:
            self.statement(child, ctx, boilerplate)

    def _emit(self, kind, node, start, end, ctx, boilerplate, header_end=None, body_span=None):
        item_ctx = PyItemContext(node, header_end, ctx.scope_path, ctx.scope_kinds, ctx.block_span_bytes, list(ctx.loops), body_span)
        self.records.append((kind, start, end, item_ctx, boilerplate))

    def statement(self, node: tree_sitter.Node, ctx: PyItemContext, boilerplate: bool) -> None:
        kind = node.type
        if kind == "comment" or not node.is_named:
            return
        if kind in SIMPLE_STATEMENTS:
            if is_docstring(node):
                self._emit("docstring", node, node.start_byte, node.end_byte, ctx, boilerplate)
                return
            top_level = not ctx.scope_path
            bp = boilerplate or kind in IMPORTS or kind == "pass_statement" or (top_level and _is_print_call(node, self.parsed))
            self._emit("simple", node, node.start_byte, node.end_byte, ctx, bp)
            return
        if kind == "decorated_definition":
            for child in node.children:
                if child.type == "decorator":
                    self._emit("decorator", child, child.start_byte, child.end_byte, ctx, boilerplate)
                elif child.type in COMPOUND_STATEMENTS:
                    self.compound(child, ctx, boilerplate)
            return
        if kind in COMPOUND_STATEMENTS or kind in CLAUSES:
            self.compound(node, ctx, boilerplate)
            return
        if kind == "block":
            self.walk_container(node.children, ctx, boilerplate)
            return
        if kind == "ERROR" or node.has_error:
            # Salvage whatever statements the parser still recognised inside the broken region.
            if any(c.is_named and (c.type in SIMPLE_STATEMENTS or c.type in COMPOUND_STATEMENTS) for c in node.children):
                self.walk_container(node.children, ctx, boilerplate)
            elif not _contains_block(node):
                self._emit("simple", node, node.start_byte, node.end_byte, ctx, boilerplate)
            return
        # Any other statement-level node (a bare expression in odd grammars): one item if block-free.
        if not _contains_block(node):
            self._emit("simple", node, node.start_byte, node.end_byte, ctx, boilerplate)

    def compound(self, node: tree_sitter.Node, ctx: PyItemContext, boilerplate: bool) -> None:
        body = _body_of(node)
        header_end = _header_end(node, body)
        bp = boilerplate or (not ctx.scope_path and _is_main_guard(node, self.parsed))
        body_span = (body.start_byte, body.end_byte) if body is not None else None
        if self.granularity == "block" and node.type in COMPOUND_STATEMENTS:
            self.block_items.append((node.start_byte, node.end_byte, node.type))
        self._emit("header", node, node.start_byte, header_end, ctx, bp, header_end=header_end, body_span=body_span)
        inner = ctx
        if node.type in ("function_definition", "class_definition"):
            name_node = node.child_by_field_name("name")
            name = self.parsed.text(name_node) if name_node is not None else "<anonymous>"
            scope_kind = "function" if node.type == "function_definition" else "class"
            inner = PyItemContext(node, None, ctx.scope_path + (name,), ctx.scope_kinds + (scope_kind,), ctx.block_span_bytes, [])
            if scope_kind == "function" and self.exclude_main_body and name == "main":
                bp = True
        if body is not None:
            loops = list(inner.loops)
            if node.type in LOOPS:
                loops.append((body.start_byte, body.end_byte, inner.scope_path))
            body_ctx = PyItemContext(node, None, inner.scope_path, inner.scope_kinds, (body.start_byte, body.end_byte), loops)
            self.walk_container(body.children, body_ctx, bp)
        # Clauses hanging off the compound node (elif/else/except/finally/case) and, for match, cases in the body.
        for child in node.children:
            if child.type in CLAUSES:
                self.compound(child, ctx, bp if child.type != "case_clause" else bp)


def _contains_block(node: tree_sitter.Node) -> bool:
    stack = list(node.children)
    while stack:
        current = stack.pop()
        if current.type == "block":
            return True
        stack.extend(current.children)
    return False


def core_leaf_spans(node: tree_sitter.Node, lo: int, hi: int) -> list[tuple[int, int]]:
    """Byte spans of the core-logic leaves of ``node`` inside [lo, hi) (method.md §2(c))."""
    spans: list[tuple[int, int]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.end_byte <= lo or current.start_byte >= hi:
            continue
        ctype = current.type
        if ctype == "comment" or (ctype == "expression_statement" and is_docstring(current)):
            continue
        if ctype in CORE_ATOMS:
            if current.end_byte > current.start_byte:
                spans.append((current.start_byte, current.end_byte))
            continue
        if current.child_count:
            stack.extend(current.children)
            continue
        if current.end_byte == current.start_byte or current.is_missing:
            continue
        if _is_core_leaf(current):
            spans.append((current.start_byte, current.end_byte))
    spans.sort()
    return spans


def _is_core_leaf(leaf: tree_sitter.Node) -> bool:
    ltype = leaf.type
    parent = leaf.parent
    ptype = parent.type if parent is not None else ""
    if leaf.is_named:
        if ltype in NON_CORE_NAMED_LEAVES:
            return False
        if ltype == "identifier":
            return leaf.text.decode("utf-8", "replace") not in TRIVIAL_NAMES
        return True  # integer, float, true, false, none, escape_sequence, ellipsis...
    if ltype.replace("_", "").isalpha():  # a keyword
        if ltype in CORE_KEYWORDS:
            return True
        if ltype in ("if", "else") and ptype == "conditional_expression":
            return True
        return ltype == "from" and ptype in ("yield", "raise_statement")
    return ptype in OPERATOR_PARENTS


def analyze_unit(
    parsed: ParsedCode,
    *,
    unit_id: int,
    offset: int,
    first_item_id: int,
    granularity: str = "statement",
    exclude_main_body: bool = False,
):
    """Items and data-flow facts of one Python unit. Offsets are response char offsets."""
    from codeblock.structure.python.defuse import flow_items_for

    root = parsed.root
    walker = _Walker(parsed, exclude_main_body, granularity)
    unit_ctx = PyItemContext(root, None, (), (), (root.start_byte, max(root.end_byte, len(parsed.data))), [])
    walker.walk_container(root.children, unit_ctx, False)
    errors = error_ranges(root)

    items: list[Item] = []
    contexts: list[PyItemContext] = []
    records = sorted(walker.records, key=lambda r: (r[1], r[2]))
    for kind, start_b, end_b, ctx, boilerplate in records:
        if not parsed.inside_original(start_b, end_b) or end_b <= start_b:
            continue
        broken = overlaps_any(start_b, end_b, errors)
        core = [] if kind == "docstring" else core_leaf_spans(ctx.node, start_b, end_b)
        item = Item(
            id=first_item_id + len(items),
            unit_id=unit_id,
            kind=kind,
            start=offset + parsed.char(start_b),
            end=offset + parsed.char(end_b),
            language="python",
            node_type=ctx.node.type,
            is_header=kind == "header",
            scope=ctx.scope_path,
            broken=broken,
            boilerplate=boilerplate,
            core_spans=[(offset + parsed.char(a), offset + parsed.char(b)) for a, b in core],
        )
        _set_selectability(item)
        items.append(item)
        contexts.append(ctx)
    flows = flow_items_for(items, contexts, parsed, offset)
    for start_b, end_b, node_type in walker.block_items:
        if parsed.inside_original(start_b, end_b):
            items.append(_block_item(parsed, offset, unit_id, start_b, end_b, node_type, items, errors))
    for index, item in enumerate(items):  # block items were appended: keep ids consecutive in list order
        item.id = first_item_id + index
    return items, flows


def _block_item(parsed, offset, unit_id, start_b, end_b, node_type, items, errors) -> Item:
    start, end = offset + parsed.char(start_b), offset + parsed.char(end_b)
    inner = [i for i in items if start <= i.start and i.end <= end]
    item = Item(
        id=-1, unit_id=unit_id, kind="block", start=start, end=end, language="python", node_type=node_type,
        broken=overlaps_any(start_b, end_b, errors) or any(i.broken for i in inner),
        core_spans=[span for i in inner for span in i.core_spans],
    )
    _set_selectability(item)
    return item


def _set_selectability(item: Item) -> None:
    if item.broken:
        item.selectable, item.reason = False, REASON_BROKEN
    elif item.kind == "docstring":
        item.selectable, item.reason = False, REASON_DOCSTRING
    elif item.boilerplate:
        item.selectable, item.reason = False, REASON_BOILERPLATE
    elif not item.core_spans:
        item.selectable, item.reason = False, REASON_NO_CORE
    else:
        item.selectable, item.reason = True, None
