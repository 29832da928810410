"""Units over dataflow.MAX_GRAPH_NODES items skip reach and bridge (R = B = 0, as the spec says) — loudly: a warning,
the unit's ``graph_skipped`` flag and ``items.n_units_graph_skipped`` in prepare's stats, never silently."""

from __future__ import annotations

import logging

from codeblock.config import CodeBlockConfig
from codeblock.prepare.pipeline import prepare_dataset
from codeblock.structure import dataflow
from codeblock.structure.analysis import analyze_response
from support.prep_helpers import HashScorer

CHAIN = "```python\na = 1\nb = a + 1\nc = b + a\nd = c * b\nprint(d)\n```\n"


def test_oversized_unit_is_flagged_warned_and_counted(monkeypatch, caplog, tiny_tokenizer):
    small = analyze_response(CHAIN)
    assert not small.units[0].graph_skipped and any(v > 0 for v in small.reach().values())
    monkeypatch.setattr(dataflow, "MAX_GRAPH_NODES", 3)
    with caplog.at_level(logging.WARNING, logger="codeblock.structure.analysis"):
        big = analyze_response(CHAIN)
    unit = big.units[0]
    assert unit.graph_skipped and len(unit.items) > 3
    assert set(big.reach().values()) == {0.0} and set(big.bridge().values()) == {0.0}
    assert "reach and bridge skipped" in caplog.text
    rows = [{"instruction": "Chain.", "response": CHAIN}, {"instruction": "Add.", "response": "def add(a, b):\n    return a + b\n"}]
    config = CodeBlockConfig(pair_selector="none", budget_ratio=0.5, code_languages=("python",))
    out = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=config, progress=False)
    assert out.stats["items"]["n_units_graph_skipped"] == 1
