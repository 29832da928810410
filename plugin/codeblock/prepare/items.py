"""Item records of one analysed row and the structure counts of stats.json, built row by row.

``prepare`` analyses rows in chunks and keeps no analysis once a chunk is done (:mod:`codeblock.prepare.collect`), so
the counts of stats.json's ``items`` block are accumulated here in input order: :class:`ItemTally` gives the same
numbers, float sums included, as one pass over every row at once.

    item record: id, unit_id, kind, language, start, end, tokens (token indices), n_core, R, B, u, pi, P,
                 selectable, reason (+ conflicts for granularity=block)

Token-level item rules (|tok| bounds, inside the untruncated text, min core tokens) and the utility u_i = agg(g_t over
core tokens) (method.md §2(d)) are applied by :func:`build_items`.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass, field

from codeblock.config import CodeBlockConfig
from codeblock.scoring.gce import aggregate


def structure_config(config: CodeBlockConfig):
    """The :class:`~codeblock.structure.analysis.StructureConfig` of a CodeBlockConfig."""
    from codeblock.structure.analysis import StructureConfig

    names = {f.name for f in dataclasses.fields(StructureConfig)}
    wanted = {
        "default_language": config.default_language,
        "unfenced_policy": config.unfenced_policy,
        "return_edges": config.return_edges,
        "bridge_mode": config.bridge_mode,
        "granularity": config.granularity,
        "code_languages": tuple(config.code_languages),
        "block_max_tokens": config.block_max_tokens,
        "exclude_main_body": config.exclude_main_body,
        "merge_units": config.merge_units,
    }
    return StructureConfig(**{k: v for k, v in wanted.items() if k in names})


@dataclass
class ItemTally:
    """Running structure counts over rows, in input order (``items`` block of stats.json).

    ``token_level``: the policy selects tokens, not items; item rules are not evaluated (``n_selectable`` None).
    """

    token_level: bool
    reasons: Counter = field(default_factory=Counter)
    by_lang: Counter = field(default_factory=Counter)
    n_units: int = 0
    n_opaque: int = 0
    n_graph_skipped: int = 0
    err: float = 0.0

    def add_units(self, analysis) -> None:
        self.n_units += len(analysis.units)
        self.n_opaque += sum(1 for u in analysis.units if u.opaque)
        self.err += sum(u.error_fraction for u in analysis.units)
        # units over dataflow.MAX_GRAPH_NODES items: reach and bridge skipped (R = B = 0), warned when analysed
        self.n_graph_skipped += sum(1 for u in analysis.units if u.graph_skipped)

    def summary(self) -> dict:
        n_units = self.n_units
        return {
            "n_items": sum(self.by_lang.values()) if self.token_level else sum(self.reasons.values()),
            "n_selectable": None if self.token_level else self.reasons.get("selectable", 0),
            "by_reason": {} if self.token_level else dict(sorted(self.reasons.items())),
            "by_language": dict(sorted(self.by_lang.items())),
            "n_units": n_units,
            "n_opaque_units": self.n_opaque,
            "n_units_graph_skipped": self.n_graph_skipped,
            "mean_unit_error_fraction": round(self.err / n_units, 6) if n_units else 0.0,
        }


def count_structure(analysis, tally: ItemTally) -> None:
    """Token-level policies: structure counts only (item rules and utilities are not evaluated)."""
    tally.by_lang.update(item.language for item in analysis.items)
    tally.add_units(analysis)


def build_items(analysis, index, scores, kept_chars: int, config: CodeBlockConfig, tally: ItemTally) -> list[dict]:
    """Item records of one row (see the module doc); ``scores`` are the row's g_t, ``index`` its TokenIndex."""
    reach, bridge = analysis.reach(), analysis.bridge()
    tally.add_units(analysis)
    items = []
    for item in analysis.items:
        toks = index.tok(item.start, item.end)
        core = index.tok_spans(item.core_spans)
        rec = {
            "id": item.id, "unit_id": item.unit_id, "kind": item.kind, "language": item.language,
            "start": item.start, "end": item.end, "tokens": toks, "n_core": len(core),
            "R": float(reach.get(item.id, 0.0)), "B": float(bridge.get(item.id, 0.0)),
            "u": math.nan, "pi": None, "P": None, "selectable": bool(item.selectable), "reason": item.reason,
        }
        if rec["selectable"]:
            g = [float(scores[t]) for t in core if t < len(scores)]
            reason = None
            if item.end > kept_chars:
                reason = "truncated"
            elif not toks:
                reason = "no_tokens"
            elif len(toks) > config.max_item_tokens:
                reason = "too_many_tokens"
            elif item.kind == "block" and len(toks) > config.block_max_tokens:
                reason = "block_too_long"
            elif len(core) < max(1, config.min_core_tokens):
                reason = "too_few_core_tokens"
            elif not all(math.isfinite(x) for x in g):
                reason = "no_score"
            if reason:
                rec["selectable"], rec["reason"] = False, reason
            else:
                rec["u"] = aggregate(g, config.utility_agg)  # u_i (method.md §2(d)), scoring.gce
        tally.reasons[rec["reason"] or "selectable"] += 1
        tally.by_lang[item.language] += 1
        items.append(rec)
    if any(it["kind"] == "block" for it in items):
        _block_conflicts(items)
    return items


def _block_conflicts(items: list[dict]) -> None:
    """granularity=block: a block item and the items inside it are mutually exclusive."""
    blocks = [it for it in items if it["kind"] == "block"]
    for b in blocks:
        inner = [it for it in items if it is not b and it["unit_id"] == b["unit_id"] and b["start"] <= it["start"] and it["end"] <= b["end"]]
        b["conflicts"] = [it["id"] for it in inner]
        for it in inner:
            it.setdefault("conflicts", []).append(b["id"])
