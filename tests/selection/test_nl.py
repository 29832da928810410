"""§5(g): informative NL tokens."""

from __future__ import annotations

from codeblock.config import CodeBlockConfig
from codeblock.labels.token_spans import TokenIndex
from codeblock.prepare.pipeline import prepare_dataset
from codeblock.selection.nl_tokens import NLUnit, is_informative, make_units, nl_candidates, select_nl
from support.prep_helpers import HashScorer, check_mask_invariants

FENCED = {
    "instruction": "Square numbers.",
    "response": "# Squares\n\nThe `square` helper multiplies a value by itself:\n\n```python\ndef square(x):\n    return x * x\n```\n\n1. It returns an integer result.\n",
}


def test_filters():
    assert not is_informative(" the", at_line_start=False)
    assert not is_informative(" And", at_line_start=False)
    assert not is_informative("##", at_line_start=True)
    assert not is_informative(" **", at_line_start=False)
    assert not is_informative("1.", at_line_start=True)
    assert is_informative(" multiplies", at_line_start=False)
    assert is_informative(" `square`", at_line_start=False)  # inline code counts as NL


def test_selection_budget_cap_and_order():
    units = [NLUnit(0, (5,), 0.9), NLUnit(0, (6,), 0.8), NLUnit(1, (2,), 0.85), NLUnit(1, (3,), 0.1)]
    assert select_nl(units, 2, {0: 10, 1: 10}, {}) == {0: [5], 1: [2]}
    assert select_nl(units, 10, {0: 1, 1: 10}, {}) == {0: [5], 1: [2, 3]}
    assert select_nl(units, 10, {0: 3, 1: 10}, {0: 2}) == {0: [5], 1: [2, 3]}
    assert select_nl(units, 0, {0: 10, 1: 10}, {}) == {}


def test_candidates_stay_out_of_code_and_fences(tiny_tokenizer):
    from codeblock.structure.analysis import analyze_response

    y = FENCED["response"]
    text = "PROMPT\n" + y
    enc = tiny_tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    idx = TokenIndex(text, enc["offset_mapping"], 7)
    analysis = analyze_response(y)
    nl = analysis.nl_spans()
    cands = nl_candidates(idx, nl)
    code = [(s.start, s.end) for s in analysis.segments if s.kind in ("code", "markup")]
    assert cands
    for t in cands:
        s, e = idx.offsets[t]
        piece = text[s:e]
        assert any(c.isalnum() for c in piece)
        for a, b in code:
            assert not any(a <= i - 7 < b and not text[i].isspace() for i in range(s, e))
    words = make_units(0, idx, cands, [0.5] * len(text), unit="word")
    assert sum(len(w.tokens) for w in words) == len(cands)


def test_pipeline_nl_share_zero_selects_no_nl(tiny_tokenizer):
    rows = [FENCED] * 3
    for eta, expect_nl in ((0.0, False), (0.5, True)):
        cfg = CodeBlockConfig(pair_selector="none", nl_share=eta, budget_ratio=0.3, code_languages=("python",))
        out = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=cfg, progress=False)
        assert (out.stats["nl_tokens"] > 0) == expect_nl
        b = out.stats["budget"]
        assert b["nl_used"] <= b["B"] - b["code_used"]
        check_mask_invariants(out, tiny_tokenizer)
