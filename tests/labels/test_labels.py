"""§5(h) mask invariants as property tests on real tokenizers (tiny BPE, SmolLM2, Qwen2.5, Gemma-3)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeblock.config import CodeBlockConfig
from codeblock.labels.build import build_labels, full_sft_labels, supervised_positions
from codeblock.prepare.pipeline import prepare_dataset
from support.prep_helpers import HashScorer, check_mask_invariants, dumps

CODE = [
    "def area(w, h):\n    return w * h\n",
    "total = 0\nfor x in range(10):\n    if x % 2:\n        total += x\nprint(total)\n",
    "class Box:\n    def __init__(self, v):\n        self.v = v\n\n    def get(self):\n        return self.v\n",
    "import math\nr = math.sqrt(2.0)  # réel √2\nname = 'naïve café ünïcode'\n",
    "xs = [a * a for a in range(5) if a]\nys = {k: v for k, v in zip('ab', xs)}\n",
]
PROSE = [
    "Here is the function you asked for.",
    "It computes the area of a rectangle by multiplying width and height.",
    "Note: the loop skips even numbers — émigré text with unicode ✓.",
    "## Explanation\n\n1. First we import the module.\n2. Then we compute the root.",
    "Use `math.sqrt` for square roots;   spacing   is   odd\there.",
]


@st.composite
def responses(draw):
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["fenced", "prose", "bare"]))
        code = draw(st.sampled_from(CODE))
        if kind == "fenced":
            tag = draw(st.sampled_from(["python", "py", "", "text"]))
            parts.append(f"```{tag}\n{code}```")
        elif kind == "prose":
            parts.append(draw(st.sampled_from(PROSE)))
        else:
            parts.append(code)
    sep = draw(st.sampled_from(["\n\n", "\n", " \n\n"]))
    lead = draw(st.sampled_from(["", " ", "\n"]))
    return lead + sep.join(parts)


def _cfg(**kw):
    base = dict(pair_selector="none", budget_ratio=0.3, max_example_fraction=0.5, code_languages=("python",))
    base.update(kw)
    return CodeBlockConfig(**base)


def _load_real(name: str):
    from transformers import AutoTokenizer

    from codeblock.models import ModelResolutionError, model_cache_dir, resolve_model

    # `make test` builds SmolLM2 and Qwen2.5 on every machine (Makefile TEST_MODELS): they never skip. CI also
    # builds Gemma (6 min one-time on a busy 2-core machine, 3.4 GB peak); elsewhere Gemma runs when cached.
    must_build = name in ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct") or bool(os.environ.get("CI"))
    if not must_build and not model_cache_dir(name).exists():
        pytest.skip(f"{name} is not cached here (run `python -m codeblock.models {name}` once to build it)")
    try:
        return AutoTokenizer.from_pretrained(resolve_model(name))
    except ModelResolutionError as exc:
        if must_build:
            raise
        pytest.skip(f"{name} tokenizer unavailable: {exc}")


@pytest.fixture(scope="module", params=["tiny-bpe", "smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "gemma-3-270m"])
def any_tokenizer(request, tiny_tokenizer):
    if request.param == "tiny-bpe":
        return tiny_tokenizer
    return _load_real(request.param)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["Write code.", "Explain: ¿qué?", "Fix\nthis"]), responses()), min_size=1, max_size=4),
       st.sampled_from([True, False]), st.sampled_from([0.0, 0.2]))
def test_mask_invariants_on_real_tokenizers(any_tokenizer, pairs, eos, eta):
    rows = [{"instruction": p, "response": y} for p, y in pairs]
    cfg = _cfg(supervise_eos=eos, nl_share=eta)
    out = prepare_dataset(rows, tokenizer=any_tokenizer, scorer=HashScorer(), config=cfg, progress=False)
    check_mask_invariants(out, any_tokenizer, supervise_eos=eos)
    b = out.stats["budget"]
    assert out.stats["supervised_tokens"] <= b["B"]
    assert out.stats["eos"]["supervised"] == (len(out.rows) if eos else 0)
    again = prepare_dataset(rows, tokenizer=any_tokenizer, scorer=HashScorer(), config=cfg, progress=False)
    assert dumps(out) == dumps(again)
    # inputs identical to full SFT, labels a subset of full SFT's
    for row, rec in zip(out.rows, [r for r in out.selection if r["kept"]]):
        resp = [t for t, (s, e) in enumerate(rec["offsets"])
                if rec["response_offset"] <= s < rec["response_offset"] + rec["response_chars"] and e > s]
        full = full_sft_labels(row["input_ids"], resp, rec["eos_index"])
        assert set(supervised_positions(row["labels"])) <= set(supervised_positions(full)) | ({rec["eos_index"]} if eos else set())


def test_build_labels_basic():
    assert build_labels([1, 2, 3], [1]) == [-100, 2, -100]
    with pytest.raises(IndexError):
        build_labels([1, 2], [5])


def test_eos_is_end_of_turn_token_for_chatml(tiny_tokenizer):
    rows = [{"instruction": "Add.", "response": "def add(a, b):\n    return a + b\n"}]
    out = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=_cfg(budget_ratio=1.0), progress=False)
    rec = out.selection[0]
    eos = rec["eos_index"]
    assert tiny_tokenizer.convert_ids_to_tokens(out.rows[0]["input_ids"][eos]) == "<|im_end|>"
    assert out.rows[0]["labels"][eos] == out.rows[0]["input_ids"][eos]
    off = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=_cfg(budget_ratio=1.0, supervise_eos=False), progress=False)
    assert off.rows[0]["labels"][eos] == -100
