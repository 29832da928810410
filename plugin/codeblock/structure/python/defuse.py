"""Python def/use facts per item, resolved to scopes (method.md §2(e)).

Two passes. The first collects raw facts per item: *binding* defs (assignment targets,
parameters, imports, loop/with/except targets, walrus, function and class names) that make a
name local to a scope, *mutation* defs (``a.b = …``, ``a[i] = …``, ``a.append(…)``) that change
an existing object, and uses. The second resolves every use and mutation with Python's rule:
a name is local to a scope if that scope binds it anywhere; otherwise look outward, skipping
class scopes, up to the module. ``self.*`` keys resolve in the enclosing class.

The result is a list of :class:`codeblock.structure.dataflow.FlowItem`; edges are built generically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codeblock.structure.dataflow import Def, FlowItem, Use
from codeblock.structure.languages import ParsedCode

MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "update", "add", "pop", "remove", "clear", "sort", "reverse",
    "setdefault", "discard", "appendleft", "popleft",
})
COMPREHENSIONS = frozenset({"list_comprehension", "set_comprehension", "dictionary_comprehension", "generator_expression"})
RECEIVERS = frozenset({"self", "cls"})
MODULE = "<module>"


def scope_id(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else MODULE


@dataclass
class _Raw:
    scope: tuple[str, ...]
    binds: list[tuple[str, tuple[str, ...], bool, int, tuple[int, int]]] = field(default_factory=list)  # key, scope, killing, pos, block
    mutations: list[tuple[str, bool, int, tuple[int, int]]] = field(default_factory=list)  # key, killing, pos, block
    uses: list[tuple[str, bool]] = field(default_factory=list)  # key, is_call
    returns_from: tuple[str, ...] | None = None
    loops: list[tuple[int, int]] = field(default_factory=list)
    func_header: tuple[str, ...] | None = None  # function scope defined by this header item
    scope_kind_is_class: bool = False  # the item sits directly in a class body
    function_scope: tuple[str, ...] | None = None  # innermost enclosing function, for return edges


class _Collector:
    """Gathers facts for one item from its node (or the header part of it)."""

    def __init__(self, parsed: ParsedCode, raw: _Raw, pos: int, block: tuple[int, int]):
        self.parsed, self.raw, self.pos, self.block = parsed, raw, pos, block

    def text(self, node) -> str:
        return self.parsed.text(node)

    # -- keys -------------------------------------------------------------------------------
    def chain(self, node) -> list[str] | None:
        """`a.b.c` -> ["a", "b", "c"] when the receiver is a plain identifier chain."""
        if node.type == "identifier":
            return [self.text(node)]
        if node.type == "attribute":
            obj, attr = node.child_by_field_name("object"), node.child_by_field_name("attribute")
            base = self.chain(obj) if obj is not None else None
            if base is not None and attr is not None:
                return base + [self.text(attr)]
        return None

    # -- uses -------------------------------------------------------------------------------
    def uses(self, node, bound: frozenset[str] = frozenset()) -> None:
        if node is None:
            return
        stack = [(node, bound)]
        while stack:
            current, names = stack.pop()
            ctype = current.type
            if ctype == "identifier":
                name = self.text(current)
                if name not in names:
                    self.raw.uses.append((name, False))
                continue
            if ctype == "attribute":
                parts = self.chain(current)
                if parts is not None and parts[0] not in names:
                    for k in range(1, len(parts) + 1):
                        self.raw.uses.append((".".join(parts[:k]), False))
                    continue
                obj = current.child_by_field_name("object")
                if obj is not None:
                    stack.append((obj, names))
                continue
            if ctype == "call":
                func = current.child_by_field_name("function")
                parts = self.chain(func) if func is not None else None
                if parts is not None and parts[0] not in names:
                    self.raw.uses.append((".".join(parts), True))
                    if len(parts) >= 2 and parts[-1] in MUTATING_METHODS:
                        self.raw.mutations.append((".".join(parts[:-1]), False, self.pos, self.block))
                for child in current.children:
                    if child.type == "argument_list" or child is not func:
                        stack.append((child, names))
                    elif parts is None:
                        stack.append((child, names))
                    else:
                        for k in range(1, len(parts)):
                            self.raw.uses.append((".".join(parts[:k]), False))
                continue
            if ctype == "keyword_argument":
                value = current.child_by_field_name("value")
                if value is not None:
                    stack.append((value, names))
                continue
            if ctype in COMPREHENSIONS:
                local = set(names)
                for clause in current.named_children:
                    if clause.type == "for_in_clause":
                        left = clause.child_by_field_name("left")
                        if left is not None:
                            local.update(self._target_names(left))
                frozen = frozenset(local)
                stack.extend((child, frozen) for child in current.named_children)
                continue
            if ctype == "for_in_clause":
                right = current.child_by_field_name("right")
                if right is not None:
                    stack.append((right, names))
                continue
            if ctype == "lambda":
                params = current.child_by_field_name("parameters")
                local = set(names)
                if params is not None:
                    for param in params.named_children:
                        local.update(self._param_names(param))
                        for sub in ("value",):
                            value = param.child_by_field_name(sub)
                            if value is not None:
                                stack.append((value, names))
                body = current.child_by_field_name("body")
                if body is not None:
                    stack.append((body, frozenset(local)))
                continue
            if ctype == "named_expression":
                name = current.child_by_field_name("name")
                if name is not None:
                    self.bind(self.text(name), killing=True)
                value = current.child_by_field_name("value")
                if value is not None:
                    stack.append((value, names))
                continue
            if ctype in ("comment", "string_start", "string_end", "string_content"):
                continue
            stack.extend((child, names) for child in current.named_children)

    # -- defs -------------------------------------------------------------------------------
    def bind(self, name: str, *, killing: bool, scope: tuple[str, ...] | None = None, pos: int | None = None,
             block: tuple[int, int] | None = None) -> None:
        self.raw.binds.append((name, self.raw.scope if scope is None else scope, killing,
                               self.pos if pos is None else pos, self.block if block is None else block))

    def _target_names(self, node) -> list[str]:
        if node.type == "identifier":
            return [self.text(node)]
        names: list[str] = []
        if node.type in ("pattern_list", "tuple_pattern", "list_pattern", "tuple", "list", "parenthesized_expression",
                         "list_splat_pattern", "list_splat", "as_pattern_target", "expression_list"):
            for child in node.named_children:
                names.extend(self._target_names(child))
        return names

    def target(self, node, *, killing: bool) -> None:
        """Definitions made by an assignment-like target."""
        ntype = node.type
        if ntype == "identifier":
            self.bind(self.text(node), killing=killing)
        elif ntype == "attribute":
            parts = self.chain(node)
            if parts is not None:
                self.raw.mutations.append((".".join(parts), True, self.pos, self.block))
                self.raw.mutations.append((parts[0], False, self.pos, self.block))
                for k in range(1, len(parts)):
                    self.raw.uses.append((".".join(parts[:k]), False))
            else:
                self.uses(node)
        elif ntype == "subscript":
            value = node.child_by_field_name("value")
            parts = self.chain(value) if value is not None else None
            if parts is not None:
                self.raw.mutations.append((".".join(parts), False, self.pos, self.block))
            self.uses(node)
        elif ntype in ("pattern_list", "tuple_pattern", "list_pattern", "tuple", "list", "parenthesized_expression",
                       "list_splat_pattern", "list_splat", "as_pattern_target", "expression_list"):
            for child in node.named_children:
                self.target(child, killing=killing)
        else:
            self.uses(node)

    def _param_names(self, param) -> list[str]:
        if param.type == "identifier":
            return [self.text(param)]
        if param.type in ("typed_parameter", "list_splat_pattern", "dictionary_splat_pattern"):
            return [self.text(c) for c in param.named_children if c.type == "identifier"][:1]
        name = param.child_by_field_name("name")
        return [self.text(name)] if name is not None else []


def _simple(col: _Collector, node) -> None:
    ntype = node.type
    if ntype == "expression_statement":
        for child in node.named_children:
            _expression_statement_part(col, child)
    elif ntype in ("import_statement", "import_from_statement"):
        module = node.child_by_field_name("module_name")
        for child in node.named_children:
            if child is module or (module is not None and child.start_byte == module.start_byte):
                continue
            if child.type == "dotted_name":
                first = child.named_children[0] if child.named_children else child
                col.bind(col.text(first) if ntype == "import_statement" else col.text(child.named_children[-1]), killing=True)
            elif child.type == "aliased_import":
                alias = child.child_by_field_name("alias")
                if alias is not None:
                    col.bind(col.text(alias), killing=True)
    elif ntype == "type_alias_statement":
        left = node.child_by_field_name("left")
        if left is not None:
            col.target(left, killing=True)
        col.uses(node.child_by_field_name("right"))
    elif ntype in ("global_statement", "nonlocal_statement", "pass_statement", "break_statement", "continue_statement",
                   "future_import_statement"):
        return
    else:  # return, raise, assert, delete, print, exec
        col.uses(node)


def _expression_statement_part(col: _Collector, node) -> None:
    ntype = node.type
    if ntype == "assignment":
        left, right, annotation = (node.child_by_field_name(f) for f in ("left", "right", "type"))
        col.uses(annotation)
        if right is not None and right.type == "assignment":  # chained: a = b = value
            _expression_statement_part(col, right)
        else:
            col.uses(right)
        if left is not None and right is not None:
            col.target(left, killing=True)
            if left.type == "identifier" and col.raw.scope and col.raw.scope_kind_is_class:
                col.raw.mutations.append(("self." + col.text(left), True, col.pos, col.block))
    elif ntype == "augmented_assignment":
        left = node.child_by_field_name("left")
        col.uses(node.child_by_field_name("right"))
        if left is not None:
            col.uses(left)
            col.target(left, killing=True)
    elif ntype == "yield":
        col.raw.returns_from = col.raw.function_scope
        col.uses(node)
    else:
        col.uses(node)


def _header(col: _Collector, node, header_end: int, ctx) -> None:
    ntype = node.type
    parts = [c for c in node.children if c.end_byte <= header_end]
    if ntype == "function_definition":
        name_node = node.child_by_field_name("name")
        name = col.text(name_node) if name_node is not None else "<anonymous>"
        col.bind(name, killing=True)
        if ctx.scope_kinds and ctx.scope_kinds[-1] == "class":
            col.raw.mutations.append(("self." + name, True, col.pos, col.block))
        func_scope = ctx.scope_path + (name,)
        col.raw.func_header = func_scope
        body_block = ctx.body_span_chars or col.block
        params = node.child_by_field_name("parameters")
        if params is not None:
            for param in params.named_children:
                for pname in col._param_names(param):
                    col.bind(pname, killing=True, scope=func_scope, pos=col.header_end_char, block=body_block)
                for sub in ("value", "type"):
                    col.uses(param.child_by_field_name(sub))
                if param.type == "typed_parameter":
                    col.uses(param.child_by_field_name("type"))
        col.uses(node.child_by_field_name("return_type"))
    elif ntype == "class_definition":
        name_node = node.child_by_field_name("name")
        if name_node is not None:
            col.bind(col.text(name_node), killing=True)
        col.uses(node.child_by_field_name("superclasses"))
    elif ntype == "for_statement":
        left = node.child_by_field_name("left")
        if left is not None:
            col.target(left, killing=False)
        col.uses(node.child_by_field_name("right"))
    elif ntype in ("with_statement",):
        for clause in (c for c in parts if c.type == "with_clause"):
            for item in clause.named_children:
                value = item.child_by_field_name("value") or (item.named_children[0] if item.named_children else None)
                if value is not None and value.type == "as_pattern":
                    target = next((c for c in value.named_children if c.type == "as_pattern_target"), None)
                    col.uses(value.named_children[0])
                    if target is not None:
                        col.target(target, killing=True)
                else:
                    col.uses(value)
    elif ntype in ("except_clause", "except_group_clause"):
        for child in parts:
            if child.type == "as_pattern":
                target = next((c for c in child.named_children if c.type == "as_pattern_target"), None)
                col.uses(child.named_children[0])
                if target is not None:
                    col.target(target, killing=False)
            elif child.is_named:
                col.uses(child)
    elif ntype == "case_clause":
        for child in parts:
            if child.type == "case_pattern":
                _case_pattern(col, child)
            elif child.is_named and child.type != "comment":
                col.uses(child)  # guard
    else:  # if / elif / while / match: the condition or subject
        for child in parts:
            if child.is_named and child.type != "comment":
                col.uses(child)


def _case_pattern(col: _Collector, node) -> None:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "dotted_name":
            names = [col.text(c) for c in current.named_children]
            if len(names) == 1 and current.parent is not None and current.parent.type == "case_pattern":
                col.bind(names[0], killing=False)  # a capture pattern
            else:
                col.raw.uses.append((".".join(names), False))
        elif current.type == "identifier" and current.parent is not None and current.parent.type in ("splat_pattern", "as_pattern_target"):
            col.bind(col.text(current), killing=False)
        elif current.type == "keyword_pattern":
            stack.extend(current.named_children[1:])
        else:
            stack.extend(current.named_children)


def flow_items_for(items, contexts, parsed: ParsedCode, offset: int) -> list[FlowItem]:
    """Compute def/use facts for every graph node among ``items`` and mark ``is_node``."""
    def char_span(span):
        return (offset + parsed.char(span[0]), offset + parsed.char(span[1]))

    raws: dict[int, _Raw] = {}
    declared_global: dict[tuple[str, ...], set[str]] = {}
    declared_nonlocal: dict[tuple[str, ...], set[str]] = {}
    for item, ctx in zip(items, contexts):
        node = ctx.node
        if node.type in ("global_statement", "nonlocal_statement"):
            target = declared_global if node.type == "global_statement" else declared_nonlocal
            target.setdefault(ctx.scope_path, set()).update(parsed.text(c) for c in node.named_children if c.type == "identifier")
        if item.broken or item.kind in ("docstring", "block") or node.type == "pass_statement":
            continue
        raw = _Raw(scope=ctx.scope_path)
        raw.scope_kind_is_class = bool(ctx.scope_kinds) and ctx.scope_kinds[-1] == "class"
        func_idx = max((k for k, kind in enumerate(ctx.scope_kinds) if kind == "function"), default=-1)
        raw.function_scope = ctx.scope_path[: func_idx + 1] if func_idx >= 0 else None
        ctx.body_span_chars = char_span(ctx.body_span_bytes) if ctx.body_span_bytes else None
        col = _Collector(parsed, raw, item.start, char_span(ctx.block_span_bytes))
        col.header_end_char = item.end
        if item.kind == "header":
            _header(col, node, ctx.header_end_byte, ctx)
        elif item.kind == "decorator":
            col.uses(node)
        else:
            _simple(col, node)
            if node.type == "return_statement":
                raw.returns_from = raw.function_scope
        raw.loops = [char_span((a, b)) for a, b, path in ctx.loops if path == ctx.scope_path]
        if item.kind == "header" and node.type == "while_statement" and ctx.body_span_bytes:
            raw.loops.append(char_span(ctx.body_span_bytes))
        raws[item.id] = raw

    # Which names each scope binds (Python's "local if assigned anywhere in the scope").
    bound: dict[tuple[str, ...], set[str]] = {}
    for raw in raws.values():
        for name, scope, *_ in raw.binds:
            if name not in declared_global.get(scope, set()) and name not in declared_nonlocal.get(scope, set()):
                bound.setdefault(scope, set()).add(name)
    kinds: dict[tuple[str, ...], str] = {}
    for ctx in contexts:
        for k in range(len(ctx.scope_path)):
            kinds[ctx.scope_path[: k + 1]] = ctx.scope_kinds[k]

    def resolve_name(name: str, scope: tuple[str, ...]) -> tuple[str, ...]:
        if name in declared_global.get(scope, set()):
            return ()
        current, first = scope, True
        if name in declared_nonlocal.get(scope, set()):
            current, first = scope[:-1], False
        while current:
            if (first or kinds.get(current) != "class") and name in bound.get(current, set()):
                return current
            current, first = current[:-1], False
        return ()

    def resolve_key(key: str, scope: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        base = key.split(".", 1)[0]
        if base in RECEIVERS and "." in key:
            # self.x inside a method: the enclosing class (flow-insensitive over its methods).
            for k in range(len(scope), 0, -1):
                if kinds.get(scope[:k]) == "class":
                    return "self." + key.split(".", 1)[1], scope[:k]
        return key, resolve_name(base, scope)

    func_headers: dict[tuple[str, str], str] = {}
    flows: list[FlowItem] = []
    for item in items:
        raw = raws.get(item.id)
        if raw is None:
            continue
        defs = [Def(name, scope_id(_def_scope(name, scope, declared_global, declared_nonlocal, resolve_name)), killing, pos, block)
                for name, scope, killing, pos, block in raw.binds]
        for key, killing, pos, block in raw.mutations:
            resolved_key, resolved_scope = resolve_key(key, raw.scope)
            defs.append(Def(resolved_key, scope_id(resolved_scope), killing, pos, block))
        uses, calls = [], []
        for key, is_call in raw.uses:
            resolved_key, resolved_scope = resolve_key(key, raw.scope)
            uses.append(Use(resolved_key, scope_id(resolved_scope)))
            if is_call:
                calls.append((resolved_key, scope_id(resolved_scope)))
        if raw.func_header is not None:
            name = raw.func_header[-1]
            func_headers[(name, scope_id(raw.scope))] = scope_id(raw.func_header)
            if raw.scope and kinds.get(raw.scope) == "class":
                func_headers[("self." + name, scope_id(raw.scope))] = scope_id(raw.func_header)
        item.defs = sorted({d.key for d in defs})
        item.uses = sorted({u.key for u in uses})
        item.is_node = bool(defs or uses)
        if not item.is_node:
            continue
        flow = FlowItem(item.id, item.start, scope_id(raw.scope), _dedupe(defs), _dedupe(uses), raw.loops,
                        scope_id(raw.returns_from) if raw.returns_from is not None else None)
        flow._call_keys = calls  # resolved after all headers are known
        flows.append(flow)
    for flow in flows:
        flow.calls = sorted({func_headers[key] for key in flow._call_keys if key in func_headers})
        del flow._call_keys
    return flows


def _def_scope(name, scope, declared_global, declared_nonlocal, resolve_name):
    if name in declared_global.get(scope, set()):
        return ()
    if name in declared_nonlocal.get(scope, set()):
        return resolve_name(name, scope)
    return scope


def _dedupe(values: list) -> list:
    seen, out = set(), []
    for value in values:
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out


__all__ = ["flow_items_for", "scope_id", "MUTATING_METHODS"]
