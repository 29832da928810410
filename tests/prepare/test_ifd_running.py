"""IFD pair selection as `codeblock prepare` runs it (pipeline._select_pairs -> scoring.ifd_details), against an
oracle computed here from the renderer's own offsets: the conditioned pass is the training rendering, the
unconditioned one the same template with an empty prompt, and both average over the same response characters even
when a long prompt truncates the conditioned rendering."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codeblock.config import CodeBlockConfig
from codeblock.data_io import Example, normalize_rows
from codeblock.labels.render import Renderer
from codeblock.prepare.pipeline import prepare_dataset


class PositionScorer:
    """p_t depends on the token id AND its position, so a response token scores differently after a prompt than
    after an empty one (a scorer that ignored the context would make both IFD passes equal and every swap invisible)."""

    def token_logprobs(self, ids_list):
        out = []
        for ids in ids_list:
            # later positions (more context) are a little more probable, so most IFD values fall below 1
            arr = np.array([math.log(min(0.99, 0.02 + 0.9 * (((int(tid) * 2654435761) ^ (t * 40503)) % 9973) / 9973
                                         + 0.002 * t)) for t, tid in enumerate(ids)], dtype=np.float32)
            if len(arr):
                arr[0] = np.nan
            out.append(arr)
        return out

ROWS = [
    {"instruction": "Add two numbers.", "response": "def add(a, b):\n    total = a + b\n    return total\n"},
    {"instruction": "Square a number.", "response": "def sq(x):\n    return x * x\n"},
    {"instruction": "Negate.", "response": "def neg(x):\n    y = -x\n    return y\n"},
    {"instruction": "Identity function please.", "response": "def ident(x):\n    return x\n"},
    {"instruction": "Sum a list.", "response": "def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n"},
    {"instruction": "Max of two.", "response": "def mx(a, b):\n    return a if a > b else b\n"},
]


def _cfg(**kw):
    base = dict(pair_selector="ifd", pair_keep_ratio=0.34, budget_ratio=0.5, max_example_fraction=1.0,
                code_languages=("python",))
    base.update(kw)
    return CodeBlockConfig(**base)


def _oracle(rows, tokenizer, config):
    """(ce_conditioned, ce_unconditioned) per row, from offsets: response tokens = non-special tokens starting in
    the response, cut to the response characters kept by BOTH renderings."""
    renderer = Renderer(tokenizer, template=config.template, max_seq_length=config.max_seq_length,
                        system_prompt=config.system_prompt)
    examples, _ = normalize_rows(rows, config)
    scorer = PositionScorer()
    out = []
    for ex in examples:
        cond = renderer.render(ex)
        uncond = renderer.render(Example(ex.index, [{"role": "user", "content": ""}], ex.response, ""))
        keep = min(cond.kept_char_end - cond.response_start, uncond.kept_char_end - uncond.response_start)
        ces = []
        for rd in (cond, uncond):
            pos = [t for t, (s, e) in enumerate(rd.offsets)
                   if not rd.special[t] and e > s and rd.response_start <= s < rd.response_start + min(keep, len(rd.response))]
            lp = scorer.token_logprobs([rd.input_ids])[0]
            ces.append(float(-np.mean([float(lp[t]) for t in pos if t > 0])))
        out.append(tuple(ces))
    return out


def test_running_ifd_matches_the_oracle_and_keeps_the_highest_valid(tiny_tokenizer):
    config = _cfg()
    prepared = prepare_dataset(ROWS, tokenizer=tiny_tokenizer, scorer=PositionScorer(), config=config, progress=False)
    scores = prepared.pair_scores
    assert [s["example_index"] for s in scores] == list(range(len(ROWS)))
    oracle = _oracle(ROWS, tiny_tokenizer, config)
    for s, (ce_c, ce_u) in zip(scores, oracle):
        assert s["ce_conditioned"] == pytest.approx(ce_c, rel=1e-6)  # a swap of the two passes fails here
        assert s["ce_unconditioned"] == pytest.approx(ce_u, rel=1e-6)
        assert s["ifd"] == pytest.approx(ce_c / ce_u, rel=1e-6) and abs(ce_c - ce_u) > 1e-3
    # kept = the floor(0.34 * n) highest IFD values <= 1 (method.md §2(a)), and selection.jsonl agrees
    valid = sorted((i for i, (c, u) in enumerate(oracle) if c / u <= 1.0), key=lambda i: (-oracle[i][0] / oracle[i][1], i))
    assert len(valid) > 2 and any(c / u > 1.0 for c, u in oracle)  # both the cut-off and the order matter here
    expected = sorted(valid[:2])
    assert [s["example_index"] for s in scores if s["kept"]] == expected
    assert sorted(r["index"] for r in prepared.selection) == expected


def test_truncated_prompt_both_passes_average_the_same_response_tokens(tiny_tokenizer):
    """A prompt long enough to push part of the response past max_seq_length: the unconditioned pass (empty prompt)
    sees the whole response, but must average only over the characters the conditioned pass kept."""
    long_prompt = "Please write this function carefully. " * 6
    rows = [{"instruction": long_prompt, "response": ROWS[4]["response"] * 3}, *ROWS[:3]]
    config = _cfg(max_seq_length=220, pair_keep_ratio=1.0)
    renderer = Renderer(tiny_tokenizer, template=config.template, max_seq_length=config.max_seq_length,
                        system_prompt=config.system_prompt)
    examples, _ = normalize_rows(rows, config)
    first = renderer.render(examples[0])
    assert first.truncated and 0 < first.kept_response_chars < len(first.response)  # the case under test
    prepared = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=PositionScorer(), config=config, progress=False)
    ce_c, ce_u = _oracle(rows, tiny_tokenizer, config)[0]
    got = prepared.pair_scores[0]
    assert got["ce_conditioned"] == pytest.approx(ce_c, rel=1e-6)
    assert got["ce_unconditioned"] == pytest.approx(ce_u, rel=1e-6)
    # ... and that differs from averaging the unconditioned pass over the whole response (the old behaviour)
    uncond = renderer.render(Example(0, [{"role": "user", "content": ""}], examples[0].response, ""))
    lp = PositionScorer().token_logprobs([uncond.input_ids])[0]
    whole = [t for t, (s, e) in enumerate(uncond.offsets) if not uncond.special[t] and e > s
             and uncond.response_start <= s < uncond.response_end]
    assert got["ce_unconditioned"] != pytest.approx(float(-np.mean(lp[whole])), rel=1e-6)
