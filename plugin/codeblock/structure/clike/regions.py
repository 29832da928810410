"""The records of the C-like walk: where a statement sits (:class:`Ctx`) and a candidate item's region before it
becomes an :class:`~codeblock.structure.datatypes.Item` (:class:`Raw`)."""

from __future__ import annotations


class Ctx:
    """Where a statement sits: scope id, enclosing loop bodies (byte spans, own scope only),
    nearest block (byte span), innermost function scope, inside `main`, and the function a
    Rust block tail returns from."""

    __slots__ = ("scope", "loops", "block", "func", "in_main", "ret_tail")

    def __init__(self, scope, loops, block, func, in_main, ret_tail):
        self.scope, self.loops, self.block, self.func, self.in_main, self.ret_tail = \
            scope, loops, block, func, in_main, ret_tail

    def but(self, **changes) -> "Ctx":
        new = Ctx(self.scope, self.loops, self.block, self.func, self.in_main, self.ret_tail)
        for key, value in changes.items():
            setattr(new, key, value)
        return new


class Raw:
    __slots__ = ("start", "end", "kind", "node_type", "is_header", "ctx", "core", "handler_nodes", "identifiers",
                 "owner", "loops", "returns_from", "boilerplate", "broken", "facts")

    def __init__(self, start, end, kind, node_type, is_header, ctx):
        self.start, self.end, self.kind, self.node_type, self.is_header, self.ctx = \
            start, end, kind, node_type, is_header, ctx
        self.core: list = []
        self.handler_nodes: list = []
        self.identifiers: list = []
        self.owner = None
        self.loops: tuple = ()
        self.returns_from = None
        self.boilerplate = False
        self.broken = False
        self.facts = None
