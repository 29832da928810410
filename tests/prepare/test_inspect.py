"""`codeblock inspect`: self-contained HTML with highlighted supervised tokens, legend, stats and histogram."""

from __future__ import annotations

import html as htmllib
import json
import re

from codeblock.cli.prepare import write_outputs
from codeblock.config import CodeBlockConfig
from codeblock.prepare.inspect_html import build_html
from codeblock.prepare.pipeline import prepare_dataset
from support.prep_helpers import HashScorer

ROWS = [
    {"instruction": "Add.", "response": "Adds numbers:\n\n```python\ndef add(a, b):\n    total = a + b\n    return total\n```\n\nThe function returns the sum."},
    {"instruction": "Loop <b>bold</b>.", "response": "for i in range(3):\n    print(i * i)\n"},
]


def test_inspect_html(tiny_tokenizer, tmp_path):
    cfg = CodeBlockConfig(pair_selector="none", budget_ratio=0.5, max_example_fraction=1.0)
    out = prepare_dataset(ROWS, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=cfg, progress=False)
    write_outputs(tmp_path, out, config=cfg, extra_stats={"model": "tiny"})
    page = build_html(tmp_path, n=5)
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "Legend" in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # no external assets
    assert "<b>" not in page and "Loop <b>bold</b>." in htmllib.unescape(re.sub(r"<[^>]+>", "", page))  # escaped, intact
    assert page.count('class="eos"') == out.stats["eos"]["supervised"] == 2
    # every supervised code token is highlighted: concatenated highlighted text covers the selected spans
    highlighted = "".join(htmllib.unescape(m) for m in re.findall(r'<span class="sup"[^>]*>(.*?)</span>', page))
    for rec in out.selection:
        resp = rec["text"][rec["response_offset"]:rec["response_offset"] + rec["response_chars"]]
        for s in rec["selected_spans"]:
            for word in resp[s["start"]:s["end"]].split():
                assert word in highlighted or any(word in h for h in highlighted.split())
    assert f"{out.stats['supervised_fraction']:.3%}" in page


def test_inspect_order_puts_supervised_rows_first(tiny_tokenizer, tmp_path):
    from codeblock.prepare.inspect_html import _ordered

    recs = [{"index": 0, "n_supervised": 0, "n_response_tokens": 10}, {"index": 1, "n_supervised": 1, "n_response_tokens": 50},
            {"index": 2, "n_supervised": 2, "n_response_tokens": 4}, {"index": 3, "n_supervised": 0, "n_response_tokens": 9}]
    assert [r["index"] for r in _ordered(recs, "input")] == [0, 1, 2, 3]
    assert [r["index"] for r in _ordered(recs, "items")] == [1, 2, 0, 3]
    assert [r["index"] for r in _ordered(recs, "supervised")] == [2, 1, 0, 3]
    cfg = CodeBlockConfig(pair_selector="none", budget_ratio=0.5, max_example_fraction=1.0)
    out = prepare_dataset(ROWS, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=cfg, progress=False)
    write_outputs(tmp_path, out, config=cfg, extra_stats={"model": "tiny"})
    assert "Most supervised 2 examples" in build_html(tmp_path, n=5, order="supervised")
