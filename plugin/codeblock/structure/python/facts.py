"""First pass of the Python def/use analysis (:mod:`codeblock.structure.python.defuse`): the raw facts of one item,
read from its syntax before any scope resolution. *Binding* defs (assignment targets, parameters, imports,
loop/with/except targets, walrus, function and class names), *mutation* defs (``a.b = …``, ``a[i] = …``,
``a.append(…)``) and uses, each with the scope path it was written in."""

from __future__ import annotations

from dataclasses import dataclass, field

from codeblock.structure.languages import ParsedCode

MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "update", "add", "pop", "remove", "clear", "sort", "reverse",
    "setdefault", "discard", "appendleft", "popleft",
})
COMPREHENSIONS = frozenset({"list_comprehension", "set_comprehension", "dictionary_comprehension", "generator_expression"})


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
