"""Python def/use facts per item, resolved to scopes (method.md §2(e)).

Two passes. The first collects raw facts per item: *binding* defs (assignment targets,
parameters, imports, loop/with/except targets, walrus, function and class names) that make a
name local to a scope, *mutation* defs (``a.b = …``, ``a[i] = …``, ``a.append(…)``) that change
an existing object, and uses. The second resolves every use and mutation with Python's rule:
a name is local to a scope if that scope binds it anywhere; otherwise look outward, skipping
class scopes, up to the module. ``self.*`` keys resolve in the enclosing class.

The result is a list of :class:`codeblock.structure.dataflow.FlowItem`; edges are built generically. The first pass
lives in :mod:`codeblock.structure.python.facts`.
"""

from __future__ import annotations

from codeblock.structure.dataflow import Def, FlowItem, Use
from codeblock.structure.languages import ParsedCode
from codeblock.structure.python.facts import MUTATING_METHODS, _Collector, _header, _Raw, _simple

RECEIVERS = frozenset({"self", "cls"})
MODULE = "<module>"


def scope_id(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else MODULE


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
