"""Plain data records shared by the structure stage (segmentation → items → data flow).

Pure: no tree-sitter objects leak out of these records, so they can be pickled, cached,
written as JSON and consumed by the model-dependent stages without re-parsing.

All spans are half-open character offsets ``[start, end)`` into the string that was
analyzed (the whole response for ``--response`` input, otherwise the source file).

>>> Item(id=0, unit_id=0, kind="simple", start=0, end=5, language="python").text_in("x = 1")
'x = 1'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

Span = tuple[int, int]

# Item kinds. "header" items are the opening line of a compound statement or clause.
ITEM_KINDS = (
    "simple",  # one simple statement
    "header",  # header of a compound statement / clause (ends at ':' or before '{')
    "decorator",  # Python decorator, C++ template<...> prefix
    "docstring",  # Python docstring: an item, never selectable, never a graph node
    "prefix",  # container rule: statement text up to a nested block's opening token
    "tail",  # Rust block tail expression
    "block",  # granularity=block candidate covering a whole compound statement
)

# Reasons an item is not selectable (structure-level; token-count rules come later in `prepare`).
REASON_BROKEN = "broken"  # overlaps an ERROR or MISSING node
REASON_DOCSTRING = "docstring"
REASON_BOILERPLATE = "boilerplate"
REASON_NO_CORE = "no_core_tokens"


@dataclass
class Item:
    """One coding item: a contiguous span that is exactly one syntactic unit."""

    id: int
    unit_id: int
    kind: str
    start: int
    end: int
    language: str
    node_type: str = ""  # tree-sitter node type the item came from
    is_header: bool = False
    scope: tuple[str, ...] = ()  # enclosing scope path, e.g. ("f", "A.m")
    broken: bool = False
    boilerplate: bool = False
    selectable: bool = True
    reason: str | None = None  # why not selectable (None when selectable)
    core_spans: list[Span] = field(default_factory=list)  # core-logic leaf spans (2c)
    defs: list[str] = field(default_factory=list)  # names/keys defined (for display/debugging)
    uses: list[str] = field(default_factory=list)  # names/keys used
    is_node: bool = False  # participates in the data-flow graph

    def text_in(self, source: str) -> str:
        return source[self.start : self.end]

    def to_dict(self, source: str | None = None) -> dict:
        data = asdict(self)
        data["scope"] = list(self.scope)
        data["core_spans"] = [list(s) for s in self.core_spans]
        if source is not None:
            data["text"] = self.text_in(source)
        return data


@dataclass
class CodeUnit:
    """A region of code parsed on its own: a fenced block or a whole unfenced response."""

    id: int
    start: int
    end: int
    language: str | None
    fenced: bool
    opaque: bool = False  # unknown language or too many error bytes: no items, not NL either
    reason: str | None = None
    error_fraction: float = 0.0  # share of the unit's bytes under ERROR/MISSING nodes
    wrapped: bool = False  # parsed inside a snippet wrapper (Go/Java/C/C++/Rust bare statements)
    items: list[Item] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)  # global item ids, src -> dst
    reach: dict[int, float] = field(default_factory=dict)  # global item id -> R in [0, 1]
    bridge: dict[int, float] = field(default_factory=dict)  # global item id -> B in [0, 1]
    graph_skipped: bool = False  # more than dataflow.MAX_GRAPH_NODES items: R = B = 0 (warned, counted in stats)


@dataclass(frozen=True)
class Segment:
    """A region of a response: ``code`` (a unit's content), ``markup`` (fence lines) or ``nl``."""

    kind: str
    start: int
    end: int
    language: str | None = None  # for code: canonical language, or None if unknown / untagged
    info: str = ""  # raw fence info string
    fenced: bool = False


@dataclass
class Analysis:
    """Everything the structure stage knows about one input string."""

    text: str
    language: str | None
    segments: list[Segment]
    units: list[CodeUnit]

    @property
    def items(self) -> list[Item]:
        return [item for unit in self.units for item in unit.items]

    @property
    def edges(self) -> list[tuple[int, int]]:
        return [edge for unit in self.units for edge in unit.edges]

    def reach(self) -> dict[int, float]:
        return {item.id: next((u.reach.get(item.id, 0.0) for u in self.units if u.id == item.unit_id), 0.0) for item in self.items}

    def bridge(self) -> dict[int, float]:
        return {item.id: next((u.bridge.get(item.id, 0.0) for u in self.units if u.id == item.unit_id), 0.0) for item in self.items}

    def nl_spans(self) -> list[Span]:
        return [(s.start, s.end) for s in self.segments if s.kind == "nl"]
