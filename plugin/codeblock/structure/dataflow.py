"""Statement-level data-flow graph, reach and bridge (method.md §2(e)).

Language modules (``python/defuse``; ``clike/defuse`` and ``clike/handlers`` for the C-like languages) turn items into :class:`FlowItem`
records: where each item sits, what it defines and uses (already resolved to a scope), which
loops enclose it, and which functions it returns from or calls. This module is language
agnostic: it builds the edges (flow-sensitive inside a scope, flow-insensitive across
scopes, loop-carried and return edges) and computes the metrics with networkx.

Edge i → j means "a definition in item i may reach a use in item j".

>>> a = FlowItem(0, pos=0, scope="<module>", defs=[Def("x", "<module>", True, 0, (0, 20))])
>>> b = FlowItem(1, pos=6, scope="<module>", uses=[Use("x", "<module>")])
>>> build_edges([a, b])
[(0, 1)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
import networkx as nx

Span = tuple[int, int]

# Units with more nodes than this skip the structure signals (R = B = 0), as the spec says.
MAX_GRAPH_NODES = 2000


@dataclass(frozen=True)
class Def:
    """A definition of ``key`` (a name or an attribute key like ``self.x``) in ``scope``.

    ``pos`` orders definitions (parameters are placed at their function body's start);
    ``block`` is the span of the nearest enclosing block of the defining item (the whole unit
    at top level): a killing def only kills for uses inside that block.
    """

    key: str
    scope: str
    killing: bool
    pos: int
    block: Span


@dataclass(frozen=True)
class Use:
    """A use of ``key``, resolved to the scope whose definitions it reads."""

    key: str
    scope: str


@dataclass
class FlowItem:
    """Data-flow facts of one graph node (an item that is not broken, not a docstring/pass)."""

    index: int  # item id (graph node id)
    pos: int  # item start (char offset)
    scope: str  # scope the item's own code runs in
    defs: list[Def] = field(default_factory=list)
    uses: list[Use] = field(default_factory=list)
    # Enclosing loops *within the item's own scope*, as body spans. A `while` header lists its
    # own loop too, because its condition is re-evaluated after the body runs.
    loops: list[Span] = field(default_factory=list)
    returns_from: str | None = None  # function scope id, for return/yield items
    calls: list[str] = field(default_factory=list)  # function scope ids this item calls


def _contains(span: Span, pos: int) -> bool:
    return span[0] <= pos < span[1]


def build_edges(items: list[FlowItem], *, return_edges: bool = True) -> list[tuple[int, int]]:
    """Def-use edges between items, without self-loops or duplicates, sorted."""
    defs_by_key: dict[tuple[str, str], list[tuple[Def, int]]] = {}
    for item in items:
        for d in item.defs:
            defs_by_key.setdefault((d.key, d.scope), []).append((d, item.index))

    edges: set[tuple[int, int]] = set()
    for item in items:
        for use in item.uses:
            candidates = defs_by_key.get((use.key, use.scope), [])
            if not candidates:
                continue
            if use.scope != item.scope:
                # Outer scope: flow-insensitive (the function may run after any of them).
                edges.update((src, item.index) for _, src in candidates)
                continue
            edges.update(_reaching(item, candidates))
    if return_edges:
        returns: dict[str, list[int]] = {}
        for item in items:
            if item.returns_from is not None:
                returns.setdefault(item.returns_from, []).append(item.index)
        for item in items:
            for callee in item.calls:
                edges.update((r, item.index) for r in returns.get(callee, []))
    return sorted((a, b) for a, b in edges if a != b)


def _reaching(user: FlowItem, candidates: list[tuple[Def, int]]) -> set[tuple[int, int]]:
    """Flow-sensitive reaching definitions inside the user's own scope."""
    j = user.pos
    killers = [d for d, _ in candidates if d.killing and _contains(d.block, j)]
    found: set[tuple[int, int]] = set()
    for d, src in candidates:
        if d.pos < j:
            killed = any(d.pos < k.pos < j for k in killers)
            if not killed:
                found.add((src, user.index))
    for body in user.loops:
        for d, src in candidates:
            if d.pos > j and _contains(body, d.pos):
                killed = any(body[0] <= k.pos < j for k in killers)
                if not killed:
                    found.add((src, user.index))
    return found


def reach_scores(graph: nx.DiGraph) -> dict[int, float]:
    """R_i = |descendants(i)| / (n - 1); 0 for every node when n < 2."""
    n = graph.number_of_nodes()
    if n < 2:
        return {node: 0.0 for node in graph.nodes}
    return {node: len(nx.descendants(graph, node)) / (n - 1) for node in graph.nodes}


def bridge_scores(graph: nx.DiGraph, mode: str = "betweenness") -> dict[int, float]:
    """Bridge signal in [0, 1]: max-normalised directed betweenness, or the articulation share."""
    n = graph.number_of_nodes()
    if n < 3:
        return {node: 0.0 for node in graph.nodes}
    if mode == "betweenness":
        bc = nx.betweenness_centrality(graph, normalized=True)
        top = max(bc.values())
        return {node: (value / top if top > 0 else 0.0) for node, value in bc.items()}
    if mode == "articulation":
        return _articulation_scores(graph)
    raise ValueError(f"unknown bridge_mode {mode!r}; valid: betweenness, articulation")


def _connected_pairs(graph: nx.Graph) -> int:
    return sum(len(c) * (len(c) - 1) // 2 for c in nx.connected_components(graph))


def _articulation_scores(graph: nx.DiGraph) -> dict[int, float]:
    undirected = graph.to_undirected()
    n = undirected.number_of_nodes()
    total_pairs = (n - 1) * (n - 2) // 2
    scores = {}
    for node in undirected.nodes:
        rest = undirected.copy()
        rest.remove_node(node)
        # Pairs among the other nodes that were connected with `node` present but not without it.
        before = _pairs_excluding(undirected, node)
        after = _connected_pairs(rest)
        scores[node] = (before - after) / total_pairs if total_pairs else 0.0
    return scores


def _pairs_excluding(graph: nx.Graph, node: int) -> int:
    count = 0
    for component in nx.connected_components(graph):
        size = len(component) - (1 if node in component else 0)
        count += size * (size - 1) // 2
    return count


def graph_metrics(
    node_ids: list[int], edges: list[tuple[int, int]], *, bridge_mode: str = "betweenness"
) -> tuple[dict[int, float], dict[int, float]]:
    """Reach and bridge for one unit's graph. Oversized graphs get zeros (and the caller logs it)."""
    if len(node_ids) > MAX_GRAPH_NODES:  # analysis.analyze_unit_text marks the unit and warns
        zeros = {node: 0.0 for node in node_ids}
        return dict(zeros), dict(zeros)
    graph = nx.DiGraph()
    graph.add_nodes_from(node_ids)
    graph.add_edges_from(edges)
    return reach_scores(graph), bridge_scores(graph, bridge_mode)


__all__ = [
    "Def",
    "Use",
    "FlowItem",
    "build_edges",
    "graph_metrics",
    "reach_scores",
    "bridge_scores",
    "MAX_GRAPH_NODES",
]
