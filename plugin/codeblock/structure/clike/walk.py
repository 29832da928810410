"""The structural walk behind :mod:`codeblock.structure.clike.items`: items, scopes, loops and regions.

Iterative (no Python recursion), so deeply nested code cannot overflow the stack. Each item's
region is walked once to collect its leaves (core spans), the nodes with def/use handlers, its
identifier leaves and any nested block (container rule).
"""

from __future__ import annotations

from codeblock.structure.clike.boilerplate import is_boilerplate
from codeblock.structure.clike.core import core_leaf_span
from codeblock.structure.clike.handlers import HANDLERS
from codeblock.structure.clike.regions import Ctx, Raw
from codeblock.structure.clike.tables import BODY_FIELDS, HEADER_FIELDS, LangSpec

_RETURNS = frozenset({"return_statement", "return_expression", "co_return_statement", "yield_expression"})
_PUNCT = frozenset({";", ",", "}", ")", "]", "{", "(", "[", ":"})
# Anonymous tokens that are never core in any language (":" is core in a ternary, so not here).
_PLAIN_PUNCT = frozenset({";", ",", "}", ")", "]", "{", "(", "[", ".", "=", '"', "'", "::"})
_RUST_NON_TAIL = frozenset({"expression_statement", "let_declaration", "empty_statement", "attribute_item",
                            "inner_attribute_item", "macro_definition", "use_declaration"})
_SPACE = frozenset({b" ", b"\t", b"\r", b"\n", b"\f", b"\v"})


class Walker:
    def __init__(self, parsed, spec: LangSpec, *, granularity="statement", exclude_main_body=False):
        self.parsed, self.spec, self.data = parsed, spec, parsed.data
        self.handlers = HANDLERS[parsed.language]
        self.granularity, self.exclude_main = granularity, exclude_main_body
        self.lo = parsed.prefix_bytes
        self.hi = parsed.prefix_bytes + len(parsed.source.encode("utf-8"))
        self.scopes: dict[str, tuple[str, str, str]] = {"<module>": ("module", "<module>", "")}  # id -> kind, parent, name
        self.nested: dict[int, str] = {}
        self.raw: list[Raw] = []
        self.blocks: list[tuple[int, int, str]] = []  # granularity=block candidates
        self.stack: list = []
        self.statement_types = spec.simple | spec.compound

    # ---- driver ---------------------------------------------------------------------------

    def run(self) -> None:
        root = self.parsed.root
        self.stack.append((True, root, Ctx("<module>", (), (root.start_byte, root.end_byte), None, False, None)))
        while self.stack:
            is_block, node, ctx = self.stack.pop()
            if is_block:
                self.block(node, ctx)
            else:
                self.stmt(node, ctx)
        if self.blocks:
            self._block_items()

    def text(self, node) -> str:
        return self.data[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def new_scope(self, node, kind: str, parent: str) -> str:
        name = self._scope_name(node, kind)
        sid = name if parent == "<module>" else f"{parent}.{name}"
        if sid in self.scopes:  # overloads, several lambdas: keep scope ids unique
            name = f"{name}@{self.parsed.char(node.start_byte)}"
            sid = name if parent == "<module>" else f"{parent}.{name}"
        self.scopes[sid] = (kind, parent, name)
        self.nested[node.id] = sid
        return sid

    def _scope_name(self, node, kind):
        name = node.child_by_field_name("name")
        if name is None and node.type == "impl_item":
            name = node.child_by_field_name("type")
        if name is None and node.type == "function_definition":
            decl = node.child_by_field_name("declarator")
            while decl is not None and decl.type not in ("identifier", "field_identifier", "qualified_identifier",
                                                         "destructor_name", "operator_name"):
                decl = decl.child_by_field_name("declarator") or (decl.named_child(0) if decl.named_child_count else None)
            name = decl
        if name is not None:
            return self.text(name)
        return "<lambda>" if kind == "function" else "<class>"

    def inside(self, node) -> bool:
        return self.lo <= node.start_byte and node.end_byte <= self.hi

    # ---- structure ------------------------------------------------------------------------

    def block(self, node, ctx: Ctx) -> None:
        spec = self.spec
        if node.type.startswith("preproc_"):  # skip the #if condition / #ifdef name
            children = [c for i, c in enumerate(node.children) if c.is_named and c.type not in spec.comments
                        and node.field_name_for_child(i) not in ("name", "condition")]
        else:
            children = [c for c in node.named_children if c.type not in spec.comments]
        tail = None
        if spec.name == "rust" and node.type == "block" and children:
            last = children[-1]
            if last.type not in _RUST_NON_TAIL and not last.type.endswith("_item") and last.type != "ERROR":
                tail = last
            elif last.type == "expression_statement" and last.child_count and last.children[-1].type != ";":
                tail = last  # `if c { a } else { b }` ending a block: its arms are the block's value
        keep = ctx.ret_tail is None or node.type == "match_block"
        plain = ctx if keep else ctx.but(ret_tail=None)
        for child in reversed(children):
            if child is tail:
                if child.type in spec.compound or child.type in spec.blocks or child.type == "expression_statement":
                    self.stack.append((False, child, ctx))
                else:
                    raw = self.item([child], ctx, "tail", child)
                    if raw is not None and ctx.ret_tail is not None:
                        raw.returns_from = ctx.ret_tail
            else:
                self.stack.append((False, child, plain))

    def stmt(self, node, ctx: Ctx, start=None) -> None:
        spec = self.spec
        typ = node.type
        if typ in spec.comments or typ in spec.skip_children or node.is_error or not node.is_named \
                or typ == "empty_statement" or (typ == "expression_statement" and not node.named_child_count):
            return
        if typ in spec.blocks:
            self.stack.append((True, node, ctx.but(block=(node.start_byte, node.end_byte))))
            return
        if typ in spec.decorators:
            self.item([node], ctx, "decorator", node)
            return
        if typ in spec.unwrap:
            inner = node.child_by_field_name("declaration")
            if inner is None:
                named = [c for c in node.named_children if c.type not in spec.comments]
                inner = named[0] if len(named) == 1 else None
            if inner is not None and inner.type in spec.compound:
                self.compound(inner, ctx, node.start_byte if start is None else start, node)
                return
        if typ in spec.compound:
            self.compound(node, ctx, start, node)
        elif typ in spec.clauses:
            self.clause(node, ctx)
        else:
            self.item([node], ctx, "simple", node, start=start)

    def is_body(self, child, field) -> bool:
        typ = child.type
        if typ in self.spec.comments or not child.is_named:
            return False
        if field in BODY_FIELDS:
            return True
        if field in HEADER_FIELDS:
            return False
        return typ in self.spec.blocks or typ in self.spec.clauses or typ in self.statement_types

    def compound(self, node, ctx: Ctx, start, stmt_node) -> None:
        spec = self.spec
        typ = node.type
        children = node.children
        if self.granularity == "block":
            self.blocks.append((stmt_node.start_byte if start is None else start, node.end_byte, typ, ctx))
        if typ == "template_declaration":
            split = next((i for i, c in enumerate(children) if c.is_named and c.type not in spec.comments
                          and node.field_name_for_child(i) != "parameters"), len(children))
            self.item(children[:split], ctx, "decorator", node, start=start)
            for child in children[split:]:
                self.stmt(child, ctx)
            return
        fields = [node.field_name_for_child(i) for i in range(len(children))]
        first = next((i for i, c in enumerate(children) if c.type == "{" or self.is_body(c, fields[i])), None)
        if first is None:
            self.item([node], ctx, "simple", node, start=start)
            return
        body = node.child_by_field_name("body") or children[first]
        body_span = (body.start_byte, body.end_byte)
        body_ctx = ctx
        header_ctx = ctx
        real = self.inside(node)
        if typ in spec.functions and real:
            sid = self.new_scope(node, "function", ctx.scope)
            is_main = ctx.in_main or (self.exclude_main and self._scope_name(node, "function") == "main")
            header_ctx = ctx.but(in_main=is_main)
            body_ctx = Ctx(sid, (), body_span, sid, is_main, sid if spec.name == "rust" else None)
        elif typ in spec.classes and real:
            sid = self.new_scope(node, "class", ctx.scope)
            body_ctx = Ctx(sid, (), body_span, None, ctx.in_main, None)
        header_loops = ctx.loops
        if typ in spec.while_loops and not (typ == "for_statement" and spec.name == "go"
                                            and any(c.type == "range_clause" for c in children)):
            header_loops = ctx.loops + (body_span,)
            body_ctx = body_ctx.but(loops=header_loops, ret_tail=None)
        elif typ in spec.range_loops or typ in spec.do_loops or typ == "for_statement":
            body_ctx = body_ctx.but(loops=ctx.loops + (body_span,), ret_tail=None)
        elif typ not in ("if_expression", "match_expression") and body_ctx is ctx and ctx.ret_tail is not None:
            body_ctx = ctx.but(ret_tail=None)
        region = [c for c in children[:first] if c.type not in spec.comments]
        if region:
            self.item(region, header_ctx, "header", node, start=start, owner=node, loops=header_loops)
        self._rest(node, children, fields, first, ctx, body_ctx)

    def clause(self, node, ctx: Ctx) -> None:
        spec = self.spec
        children = node.children
        if node.type == "match_arm":
            value = node.child_by_field_name("value")
            if value is not None and value.type == "block":
                region = [c for c in children if c.end_byte <= value.start_byte and c.type not in spec.comments]
                self.item(region, ctx, "header", node, owner=node)
                self.stack.append((True, value, ctx.but(block=(value.start_byte, value.end_byte))))
            else:
                raw = self.item([node], ctx, "simple", node)
                if raw is not None and ctx.ret_tail is not None:
                    raw.returns_from = ctx.ret_tail
            return
        fields = [node.field_name_for_child(i) for i in range(len(children))]
        first = next((i for i, c in enumerate(children) if c.type == "{" or self.is_body(c, fields[i])), len(children))
        region = [c for c in children[:first] if c.type not in spec.comments]
        if region:
            self.item(region, ctx, "header", node, owner=node)
        body_ctx = ctx.but(block=(node.start_byte, node.end_byte))
        self._rest(node, children, fields, first, ctx, body_ctx)

    def _rest(self, node, children, fields, first, ctx, body_ctx) -> None:
        """Bodies, clauses and leftover tokens (Java/Go `else`, a do-while's `while (…);`)."""
        spec = self.spec
        run: list = []
        for i in range(first, len(children)):
            child = children[i]
            if child.type in spec.comments:
                continue
            if not self.is_body(child, fields[i]):
                run.append(child)
                continue
            if run:
                self._leftover(run, ctx, True, node)
                run = []
            if child.type in spec.clauses:
                self.clause(child, ctx)
            elif child.type in spec.blocks:
                self.stack.append((True, child, body_ctx.but(block=(child.start_byte, child.end_byte))))
            else:
                self.stmt(child, body_ctx.but(block=(child.start_byte, child.end_byte)))
        if run:
            self._leftover(run, ctx, False, node)

    def _leftover(self, run, ctx, is_header, parent) -> None:
        if all(not c.is_named and c.type in _PUNCT for c in run):
            return
        kind = "header" if is_header else "simple"
        node_type = "else_clause" if run[0].type == "else" else parent.type
        self.item(run, ctx, kind, parent, node_type=node_type)

    # ---- items ----------------------------------------------------------------------------

    def item(self, region, ctx: Ctx, kind, node, *, start=None, owner=None, loops=None, node_type=None):
        """Walk a region once; emit the item (prefix up to a nested block) and queue nested blocks."""
        spec, data = self.spec, self.data
        handlers, blocks, comments = self.handlers, spec.blocks, spec.comments
        use_ids, skip_sub = spec.use_identifiers, spec.non_core_subtrees
        handler_nodes, identifiers, nested, leaf_spans = [], [], [], []
        has_return = False
        stack = []
        for r in region:  # region members are children of `node` (or `node` itself)
            if r.child_count:
                if r.type in blocks:
                    nested.append(r)
                elif r.type not in comments and r.type not in skip_sub:
                    stack.append(r)
            elif r.type not in comments:
                ptype = node.type if r is not node else (r.parent.type if r.parent is not None else "")
                leaf_spans.append((r.start_byte, r.end_byte, core_leaf_span(r, spec, data, ptype)))
                if r.type in use_ids:
                    identifiers.append(r)
        stack.reverse()
        while stack:
            n = stack.pop()
            ntype = n.type
            if ntype in handlers:
                handler_nodes.append(n)
            if ntype in _RETURNS:
                has_return = True
            children = n.children
            for i in range(len(children) - 1, -1, -1):
                c = children[i]
                if c.child_count:
                    ct = c.type
                    if ct in blocks:
                        nested.append(c)
                    elif ct not in comments and ct not in skip_sub:
                        stack.append(c)
                else:
                    ct = c.type
                    if ct in comments:
                        continue
                    if ct in _PLAIN_PUNCT:  # fast path: never core, never an identifier
                        leaf_spans.append((c.start_byte, c.end_byte, None))
                        continue
                    leaf_spans.append((c.start_byte, c.end_byte, core_leaf_span(c, spec, data, ntype)))
                    if ct in use_ids:
                        identifiers.append(c)
        cut = min(b.start_byte for b in nested) if nested else None
        raw = None
        if cut is not None:
            leaf_spans = [t for t in leaf_spans if t[1] <= cut]
        ends = [b for a, b, _ in leaf_spans if b > a]
        if ends:
            s = min(region[0].start_byte, min(a for a, b, _ in leaf_spans))
            if start is not None:
                s = min(start, s)
            while data[s:s + 1] in _SPACE:  # error recovery can start a node before whitespace
                s += 1
            e = max(ends)
            if self.lo <= s and e <= self.hi:
                if cut is not None and kind in ("simple", "tail"):
                    kind = "prefix"  # container rule: the statement up to its nested block
                raw = Raw(s, e, kind, node_type or node.type, kind == "header", ctx)
                raw.owner = owner
                raw.loops = ctx.loops if loops is None else loops
                raw.core = sorted(span for _, _, span in leaf_spans if span is not None)
                if cut is None:
                    raw.handler_nodes, raw.identifiers = handler_nodes, identifiers
                else:
                    raw.handler_nodes = [h for h in handler_nodes if h.start_byte < cut]
                    raw.identifiers = [i for i in identifiers if i.start_byte < cut]
                if has_return and ctx.func is not None:
                    raw.returns_from = ctx.func
                raw.boilerplate = ctx.in_main or self._is_boilerplate(node)
                self.raw.append(raw)
        nested.sort(key=lambda b: b.start_byte)
        for nb in nested:
            self._nested_block(nb, ctx)
        return raw

    def _nested_block(self, block, ctx: Ctx) -> None:
        owner = block.parent
        span = (block.start_byte, block.end_byte)
        if owner is not None and owner.id in self.nested:
            sid = self.nested[owner.id]
        elif owner is not None and owner.type in self.spec.functions and self.inside(owner):
            sid = self.new_scope(owner, "function", ctx.scope)
        elif owner is not None and owner.type in self.spec.classes and self.inside(owner):
            sid = self.new_scope(owner, "class", ctx.scope)
        else:
            self.stack.append((True, block, ctx.but(block=span, ret_tail=None)))
            return
        kind = self.scopes[sid][0]
        func = sid if kind == "function" else None
        ret = sid if kind == "function" and self.spec.name == "rust" else None
        self.stack.append((True, block, Ctx(sid, (), span, func, ctx.in_main, ret)))

    def _is_boilerplate(self, node) -> bool:
        return is_boilerplate(node, self.spec, self.text)

    def _block_items(self) -> None:
        """granularity=block: one extra candidate per compound statement (its whole span)."""
        import bisect

        singles = sorted(self.raw, key=lambda r: r.start)
        starts = [r.start for r in singles]
        for s, e, typ, ctx in self.blocks:
            if not (self.lo <= s and e <= self.hi):
                continue
            raw = Raw(s, e, "block", typ, False, ctx)
            idx = bisect.bisect_left(starts, s)
            for r in singles[idx:]:
                if r.start >= e:
                    break
                if r.end <= e:
                    raw.core.extend(r.core)
            self.raw.append(raw)
