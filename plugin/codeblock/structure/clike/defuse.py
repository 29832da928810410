"""Definitions and uses of one non-Python item (method.md §4 "Def and use by language").

The item walker hands every node of an item's region to :func:`collect`; node types with a
handler here mark their binding / target identifiers as *consumed* and record facts. Every
identifier leaf left unconsumed afterwards is a use. Facts are raw (unresolved): the caller
resolves names to scopes once all bindings of the unit are known.

Modes: ``"name"`` resolves like a bare name; ``"class"`` goes to the innermost class-like scope
(``this.x`` / ``self.x`` keys).
"""

from __future__ import annotations

from codeblock.structure.clike.tables import MUTATORS, LangSpec

# Fields never holding bindings of a pattern / declarator (defaults, types, sizes, values).
_NOT_BINDING_FIELDS = frozenset({
    "value", "right", "default_value", "type", "index", "size", "condition", "arguments", "default",
    "return_type", "key", "body", "dimensions", "type_arguments", "alternative", "function",
})
_STOP_TYPES = frozenset({
    "scoped_identifier", "qualified_identifier", "scoped_type_identifier", "member_expression",
    "field_expression", "call_expression", "string", "string_literal", "type_annotation", "modifiers",
    "accessibility_modifier", "self_parameter", "generic_type", "template_type", "type_descriptor",
})
_BIND_LEAVES = frozenset({"identifier", "shorthand_property_identifier_pattern", "field_identifier"})
_TRIVIAL = frozenset({"self", "this", "_", "cls"})
_PATTERNS = frozenset({
    "array_pattern", "object_pattern", "expression_list", "parenthesized_expression", "tuple_pattern",
    "tuple_expression", "array_expression", "pair_pattern", "assignment_pattern", "rest_pattern",
    "object_assignment_pattern",
})


class Facts:
    """Raw def/use facts of one item."""

    __slots__ = ("data", "spec", "scope", "in_class", "consumed", "binds", "assigns", "uses", "calls",
                 "funcdefs", "locals", "def_targets", "nested", "item_pos")

    def __init__(self, data: bytes, spec: LangSpec, scope: str, in_class: bool, nested: dict, item_pos: int):
        self.data, self.spec, self.scope, self.in_class = data, spec, scope, in_class
        self.consumed: set[int] = set()  # start bytes of identifier leaves that are not plain uses
        self.binds: list[tuple] = []  # (key, scope, killing, pos_byte | None, block_bytes | None)
        self.assigns: list[tuple] = []  # (key, mode, killing): resolved like uses
        self.uses: list[tuple] = []  # (key, mode)
        self.calls: list[tuple] = []  # (key, mode)
        self.funcdefs: list[tuple] = []  # (key, scope where bound, function scope id)
        self.locals: list[tuple] = []  # (start_byte, end_byte, names) of expression-bodied lambdas
        self.def_targets: set[int] = set()  # member node ids that are assignment targets
        self.nested = nested  # function/class node id -> scope id (created by the walker)
        self.item_pos = item_pos

    def text(self, node) -> str:
        return self.data[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def bind_leaf(self, leaf, scope=None, killing=True, pos=None, block=None, key=None):
        if leaf.start_byte in self.consumed:
            return
        self.consumed.add(leaf.start_byte)
        name = key or self.text(leaf)
        if name not in _TRIVIAL:
            self.binds.append((name, scope or self.scope, killing, pos, block))

    def bind_pattern(self, node, scope=None, killing=True, pos=None, block=None):
        if node is None:
            return
        rust = self.spec.name == "rust"
        stack = [node]
        while stack:
            n = stack.pop()
            typ = n.type
            if typ in _BIND_LEAVES:
                if rust and self.text(n)[:1].isupper():
                    continue  # an enum variant / constant in a pattern is a use
                self.bind_leaf(n, scope, killing, pos, block)
                continue
            if typ in _STOP_TYPES or n.child_count == 0:
                continue
            for i in range(n.child_count - 1, -1, -1):
                child = n.children[i]
                if child.is_named and n.field_name_for_child(i) not in _NOT_BINDING_FIELDS:
                    stack.append(child)

    def member_key(self, node):
        """(key, mode) of a member chain rooted at a name or this/self, else None."""
        member = self.spec.member
        parts: list[str] = []
        n = node
        while n is not None and n.type in member:
            obj_f, prop_f = member[n.type]
            obj, prop = n.child_by_field_name(obj_f), n.child_by_field_name(prop_f)
            if obj is None or prop is None:
                return None
            op = n.child_by_field_name("operator")
            parts.append(("->" if op is not None and op.type == "->" else ".") + self.text(prop))
            n = obj
        if n is None or n is node:
            return None
        parts.reverse()
        rest = "".join(parts)
        if n.type in ("this", "self"):
            if self.spec.class_members_visible:
                return rest[2:] if rest.startswith("->") else rest[1:], "class"
            return n.type + rest, "class"
        if n.type in self.spec.use_identifiers:
            return self.text(n) + rest, "name"
        return None

    def key_of(self, node):
        if node is None:
            return None
        if node.type in self.spec.use_identifiers:
            return self.text(node), "name"
        return self.member_key(node)

    def target(self, node, killing=True, also_use=False):
        """An assignment target: plain names, member keys, subscripts, destructuring patterns."""
        if node is None:
            return
        typ = node.type
        spec = self.spec
        if typ in spec.use_identifiers:
            if self.text(node) in _TRIVIAL:
                return
            self.assigns.append((self.text(node), "name", killing))
            if not also_use:
                self.consumed.add(node.start_byte)
        elif typ in spec.member:
            key = self.member_key(node)
            if key is None:
                return
            self.assigns.append((key[0], key[1], killing))
            if not also_use:
                self.def_targets.add(node.id)
            root = _root(node, spec)
            if root is not None and root.type in spec.use_identifiers:
                self.assigns.append((self.text(root), "name", False))
        elif typ in spec.subscript or typ == "pointer_expression":
            base = node.child_by_field_name("argument") or node.child_by_field_name("object") or \
                node.child_by_field_name("array") or node.child_by_field_name("operand") or node.named_child(0)
            key = self.key_of(base)
            if key is not None:
                self.assigns.append((key[0], key[1], False))
        elif typ in _PATTERNS or typ == "pattern_list":
            for i, child in enumerate(node.children):
                if child.is_named and node.field_name_for_child(i) not in ("right", "key", "value") or \
                        typ == "pair_pattern" and node.field_name_for_child(i) == "value":
                    self.target(child, killing, also_use)

    def params(self, fn_node, params_node):
        """Parameters: defs in the function's own scope at its body start, or locals of an
        expression-bodied lambda."""
        if params_node is None:
            return
        scope = self.nested.get(fn_node.id)
        if scope is None:  # expression body: names are local, not defs, not uses
            names = set()
            stack = [params_node]
            while stack:
                n = stack.pop()
                if n.type in _BIND_LEAVES:
                    names.add(self.text(n))
                    self.consumed.add(n.start_byte)
                elif n.type not in _STOP_TYPES:
                    stack.extend(c for c in n.named_children)
            self.locals.append((fn_node.start_byte, fn_node.end_byte, names))
            return
        body = fn_node.child_by_field_name("body")
        pos = body.start_byte if body is not None else fn_node.end_byte
        block = (body.start_byte, body.end_byte) if body is not None else None
        self.bind_pattern(params_node, scope, True, pos, block)

    def name_def(self, node, function_scope=None):
        """Bind the declared name of a function / class / type (in the item's scope)."""
        if node is None:
            return
        name = self.text(node)
        self.consumed.add(node.start_byte)
        keys = [name]
        if self.in_class and function_scope is not None and not self.spec.class_members_visible:
            keys.append(("self." if self.spec.name == "rust" else "this.") + name)
        for key in keys:
            self.binds.append((key, self.scope, True, None, None))
            if function_scope is not None:
                self.funcdefs.append((key, self.scope, function_scope))

    def call(self, fn):
        key = self.key_of(fn)
        if key is not None:
            self.calls.append(key)
        if fn is not None and fn.type in self.spec.member:
            obj_f, prop_f = self.spec.member[fn.type]
            prop = fn.child_by_field_name(prop_f)
            if prop is not None and self.text(prop) in MUTATORS:
                target = self.key_of(fn.child_by_field_name(obj_f))
                if target is not None:
                    self.assigns.append((target[0], target[1], False))


def _root(node, spec):
    n = node
    while n is not None and n.type in spec.member:
        n = n.child_by_field_name(spec.member[n.type][0])
    return n


def finish_uses(st: Facts, identifiers) -> None:
    """Every identifier leaf not consumed by a handler is a use of its name."""
    trivial = st.spec.trivial
    for leaf in identifiers:
        if leaf.start_byte in st.consumed:
            continue
        name = st.text(leaf)
        if name in trivial:
            continue
        if st.locals and any(a <= leaf.start_byte < b and name in names for a, b, names in st.locals):
            continue
        st.uses.append((name, "name"))
