"""Coding items, core leaves and def/use facts for JavaScript, TypeScript, Java, C, C++, Go and
Rust (method.md §2(b), §2(c), §2(e), §4).

One table-driven walk per unit (:mod:`codeblock.structure.clike.tables`): blocks are recursed, simple
statements become one item, compound statements and clauses a header item plus recursion, and a
statement holding a nested block (an arrow function with ``{}``, a Go ``func`` literal, a Rust
``let x = match …{}``) yields the *prefix* up to the block's opening token (container rule).

>>> from codeblock.structure.languages import parse_code
>>> code = "const h = async (u) => { await g(u); };"
>>> items, flow = analyze_unit(parse_code(code, "javascript"), unit_id=0, offset=0, first_item_id=0)
>>> [code[i.start:i.end] for i in items]
['const h = async (u) =>', 'await g(u);']
"""

from __future__ import annotations

from codeblock.structure.clike.defuse import Facts, finish_uses
from codeblock.structure.clike.handlers import HANDLERS
from codeblock.structure.clike.regions import Ctx
from codeblock.structure.clike.tables import SPECS
from codeblock.structure.clike.walk import Walker
from codeblock.structure.dataflow import Def, FlowItem, Use
from codeblock.structure.datatypes import REASON_BOILERPLATE, REASON_BROKEN, REASON_NO_CORE, Item
from codeblock.structure.languages import ParsedCode, error_ranges

__all__ = ["analyze_unit", "Ctx"]


def analyze_unit(parsed: ParsedCode, *, unit_id: int, offset: int, first_item_id: int,
                 granularity: str = "statement", exclude_main_body: bool = False) -> tuple[list[Item], list[FlowItem]]:
    """Items (sorted, ids from ``first_item_id``) and the FlowItems of the graph nodes of one unit."""
    spec = SPECS[parsed.language]
    walker = Walker(parsed, spec, granularity=granularity, exclude_main_body=exclude_main_body)
    walker.run()
    conv = _converter(parsed, offset)
    unit_span = (offset, offset + len(parsed.source))
    errors = error_ranges(parsed.root)
    raws = sorted(walker.raw, key=lambda r: (r.start, -r.end))

    # Facts for every non-broken item, then name resolution against all bindings of the unit.
    handlers = HANDLERS[parsed.language]
    scopes = walker.scopes
    bound: dict[str, set[str]] = {s: set() for s in scopes}
    for raw in raws:
        raw.broken = _overlaps(raw.start, raw.end, errors)
        if raw.broken or raw.kind == "block":
            continue
        facts = Facts(parsed.data, spec, raw.ctx.scope, scopes[raw.ctx.scope][0] == "class", walker.nested, raw.start)
        if raw.owner is not None and raw.owner.type in handlers:
            handlers[raw.owner.type](raw.owner, facts)
        for node in raw.handler_nodes:
            handlers[node.type](node, facts)
        finish_uses(facts, raw.identifiers)
        raw.facts = facts
        for key, scope, *_ in facts.binds:
            bound.setdefault(scope, set()).add(key)
    funcs: dict[tuple[str, str], str] = {}
    for raw in raws:
        if raw.facts is not None:
            for key, scope, fn in raw.facts.funcdefs:
                funcs.setdefault((key, scope), fn)

    members_visible = spec.class_members_visible

    def resolve(key: str, mode: str, scope: str) -> str:
        if mode == "class":
            s = scope
            while s != "<module>":
                if scopes[s][0] == "class":
                    return s
                s = scopes[s][1]
            return scope
        root = key.split(".", 1)[0].split("->", 1)[0]
        s, first = scope, True
        while True:
            names = bound.get(s, ())
            skip = scopes[s][0] == "class" and not first and not members_visible
            if not skip and (root in names or key in names):
                return s
            if s == "<module>":
                return s
            s, first = scopes[s][1], False

    paths: dict[str, tuple[str, ...]] = {}
    items: list[Item] = []
    flows: list[FlowItem] = []
    next_id = first_item_id
    for raw in raws:
        item_id = next_id
        next_id += 1
        start, end = conv(raw.start), conv(raw.end)
        scope_id = raw.ctx.scope
        item = Item(id=item_id, unit_id=unit_id, kind=raw.kind, start=start, end=end, language=parsed.language,
                    node_type=raw.node_type, is_header=raw.is_header,
                    scope=paths.get(scope_id) or paths.setdefault(scope_id, _scope_path(scope_id, scopes)),
                    broken=raw.broken, boilerplate=raw.boilerplate)
        item.core_spans = [(conv(a), conv(b)) for a, b in raw.core]
        if raw.broken:
            item.selectable, item.reason = False, REASON_BROKEN
        elif raw.boilerplate:
            item.selectable, item.reason = False, REASON_BOILERPLATE
        elif not item.core_spans:
            item.selectable, item.reason = False, REASON_NO_CORE
        facts = raw.facts
        if facts is not None and raw.kind != "block":
            block = _clamp((conv(raw.ctx.block[0]), conv(raw.ctx.block[1])), unit_span)
            defs = [Def(k, s, kill, conv(p) if p is not None else start,
                        _clamp((conv(b[0]), conv(b[1])), unit_span) if b is not None else block)
                    for k, s, kill, p, b in facts.binds]
            defs += [Def(k, resolve(k, mode, scope_id), kill, start, block) for k, mode, kill in facts.assigns]
            uses = [Use(k, resolve(k, mode, scope_id)) for k, mode in facts.uses]
            calls = []
            for key, mode in facts.calls:
                fn = funcs.get((key, resolve(key, mode, scope_id)))
                if fn is not None and fn not in calls:
                    calls.append(fn)
            item.defs = sorted({d.key for d in defs})
            item.uses = sorted({u.key for u in uses})
            item.is_node = bool(defs or uses)
            if item.is_node:
                flows.append(FlowItem(index=item_id, pos=start, scope=scope_id, defs=defs, uses=uses,
                                      loops=[(conv(a), conv(b)) for a, b in raw.loops],
                                      returns_from=raw.returns_from, calls=calls))
        items.append(item)
    return items, flows


def _scope_path(scope_id: str, scopes: dict) -> tuple[str, ...]:
    """Scope names from the outermost in, like the Python side: ("A", "m") for scope id "A.m"."""
    path = []
    s = scope_id
    while s != "<module>":
        path.append(scopes[s][2])
        s = scopes[s][1]
    return tuple(reversed(path))


def _clamp(span, unit):
    a, b = max(span[0], unit[0]), min(span[1], unit[1])
    return (a, max(a, b))


def _converter(parsed: ParsedCode, offset: int):
    starts = getattr(parsed, "_char_starts", None)
    if starts is None or starts[-1] == len(starts) - 1:  # pure ASCII: bytes are chars
        shift = offset - parsed.prefix_chars
        return lambda b: b + shift
    char = parsed.char
    return lambda b: offset + char(b)


def _overlaps(start: int, end: int, ranges) -> bool:
    for a, b in ranges:
        if a > end:
            return False
        if (a < end and start < b) or (a == end and b in (end, end + 1)):
            return True
    return False

