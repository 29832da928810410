"""The structure stage end to end: segments → code units → items → data-flow graph → reach/bridge.

This is the pure-CPU half of CodeBlock (no torch, no tokenizer). Token-level rules (item token
counts, truncation) are applied later by ``prepare``.

>>> analysis = analyze_code("a = 1\\nb = a + 1\\n", "python")
>>> [item.text_in(analysis.text) for item in analysis.items], analysis.edges
(['a = 1', 'b = a + 1'], [(0, 1)])
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import asdict, dataclass, field, replace

from codeblock.structure import dataflow
from codeblock.structure.dataflow import build_edges, graph_metrics
from codeblock.structure.datatypes import Analysis, CodeUnit, Segment
from codeblock.structure.languages import OPAQUE_ERROR_FRACTION, SUPPORTED_LANGUAGES, parse_code, require_language
from codeblock.structure.segment import segment_response

logger = logging.getLogger(__name__)

# Language -> module with `analyze_unit(parsed, *, unit_id, offset, first_item_id, granularity, exclude_main_body)`.
ITEM_MODULES = {"python": "codeblock.structure.python.items"}
CLIKE_MODULE = "codeblock.structure.clike.items"


@dataclass(frozen=True)
class StructureConfig:
    """Knobs of the structure stage (method.md §2.0 defaults)."""

    default_language: str = "python"  # for untagged fences and unfenced responses
    unfenced_policy: str = "parse"  # "parse": a fence-less response that parses cleanly is code; "nl": never
    code_languages: tuple[str, ...] = SUPPORTED_LANGUAGES  # others become opaque units
    return_edges: bool = True
    bridge_mode: str = "betweenness"  # or "articulation"
    granularity: str = "statement"  # or "block" (ablation A10)
    exclude_main_body: bool = False
    opaque_error_fraction: float = OPAQUE_ERROR_FRACTION
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.bridge_mode not in ("betweenness", "articulation"):
            raise ValueError(f"bridge_mode must be 'betweenness' or 'articulation', got {self.bridge_mode!r}")
        if self.granularity not in ("statement", "block"):
            raise ValueError(f"granularity must be 'statement' or 'block', got {self.granularity!r}")
        if self.unfenced_policy not in ("parse", "nl"):
            raise ValueError(f"unfenced_policy must be 'parse' or 'nl', got {self.unfenced_policy!r}")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["code_languages"] = list(self.code_languages)
        data.pop("extra")
        return data


def _unit_module(language: str):
    return importlib.import_module(ITEM_MODULES.get(language, CLIKE_MODULE))


def analyze_unit_text(text: str, start: int, end: int, language: str | None, *, unit_id: int, first_item_id: int,
                      fenced: bool, config: StructureConfig) -> CodeUnit:
    """Parse ``text[start:end]`` as one unit and fill its items, edges, reach and bridge."""
    unit = CodeUnit(id=unit_id, start=start, end=end, language=language, fenced=fenced)
    if language is None:
        unit.opaque, unit.reason = True, "unknown or missing language tag"
        return unit
    if language not in config.code_languages and not (language == "tsx" and "typescript" in config.code_languages):
        unit.opaque, unit.reason = True, f"language {language!r} not in code_languages"
        return unit
    parsed = parse_code(text[start:end], language)
    unit.error_fraction = round(parsed.error_fraction, 6)
    unit.wrapped = parsed.wrapped
    if parsed.error_fraction > config.opaque_error_fraction:
        unit.opaque = True
        unit.reason = f"{parsed.error_fraction:.0%} of the unit's bytes are under ERROR/MISSING nodes (limit {config.opaque_error_fraction:.0%})"
        return unit
    items, flows = _unit_module(language).analyze_unit(
        parsed, unit_id=unit_id, offset=start, first_item_id=first_item_id,
        granularity=config.granularity, exclude_main_body=config.exclude_main_body,
    )
    unit.items = items
    unit.edges = build_edges(flows, return_edges=config.return_edges)
    reach, bridge = graph_metrics([flow.index for flow in flows], unit.edges, bridge_mode=config.bridge_mode)
    if len(flows) > dataflow.MAX_GRAPH_NODES:
        unit.graph_skipped = True
        logger.warning("code unit at chars %d-%d has %d items (> %d): reach and bridge skipped (R = B = 0)",
                       start, end, len(flows), dataflow.MAX_GRAPH_NODES)
    unit.reach = {item.id: reach.get(item.id, 0.0) for item in items}
    unit.bridge = {item.id: bridge.get(item.id, 0.0) for item in items}
    return unit


def analyze_response(text: str, config: StructureConfig | None = None) -> Analysis:
    """Segment a markdown response and analyze each code unit."""
    config = config or StructureConfig()
    segments = segment_response(text, default_language=config.default_language, unfenced_policy=config.unfenced_policy)
    units: list[CodeUnit] = []
    next_item = 0
    for segment in segments:
        if segment.kind != "code":
            continue
        unit = analyze_unit_text(text, segment.start, segment.end, segment.language, unit_id=len(units),
                                 first_item_id=next_item, fenced=segment.fenced, config=config)
        next_item += len(unit.items)
        units.append(unit)
    languages = sorted({u.language for u in units if u.language})
    return Analysis(text=text, language=languages[0] if len(languages) == 1 else (None if not languages else "mixed"),
                    segments=segments, units=units)


def analyze_code(code: str, language: str, config: StructureConfig | None = None) -> Analysis:
    """Analyze a whole source file as one unit of ``language`` (no markdown handling)."""
    config = config or StructureConfig()
    lang = require_language(language)
    if lang not in config.code_languages:
        config = replace(config, code_languages=tuple(config.code_languages) + (lang,))
    unit = analyze_unit_text(code, 0, len(code), lang, unit_id=0, first_item_id=0, fenced=False, config=config)
    segments = [Segment("code", 0, len(code), lang, "", False)] if code else []
    return Analysis(text=code, language=lang, segments=segments, units=[unit] if code else [])


def analysis_to_json(analysis: Analysis) -> dict:
    """The `codeblock analyze` JSON contract (plus a `units` list with opaque reasons)."""
    reach, bridge = {}, {}
    for unit in analysis.units:
        reach.update(unit.reach)
        bridge.update(unit.bridge)
    items = []
    for item in analysis.items:
        items.append({
            "id": item.id, "start": item.start, "end": item.end, "kind": item.kind,
            "text": analysis.text[item.start : item.end], "selectable": item.selectable,
            "core_spans": [[a, b] for a, b in item.core_spans],
            "unit_id": item.unit_id, "node_type": item.node_type, "reason": item.reason,
            "scope": list(item.scope), "defs": item.defs, "uses": item.uses, "is_node": item.is_node,
        })
    return {
        "language": analysis.language,
        "items": items,
        "edges": [[a, b] for a, b in analysis.edges],
        "reach": {str(k): round(v, 6) for k, v in sorted(reach.items())},
        "bridge": {str(k): round(v, 6) for k, v in sorted(bridge.items())},
        "units": [
            {"id": u.id, "start": u.start, "end": u.end, "language": u.language, "fenced": u.fenced, "opaque": u.opaque,
             "reason": u.reason, "error_fraction": u.error_fraction, "wrapped": u.wrapped, "n_items": len(u.items)}
            for u in analysis.units
        ],
        "segments": [[s.kind, s.start, s.end] for s in analysis.segments],
    }
