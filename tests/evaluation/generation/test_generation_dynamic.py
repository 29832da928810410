"""Refilling-slot greedy decoding (generation/dynamic.py): same tokens as one-by-one `generate`, rows leave early, the
next prompt takes a freed slot, and the harness falls back to `generate` where it does not apply."""

from __future__ import annotations

import pytest

from codeblock_eval.generation import GenerationSettings, HFGenerator
from support.tiny_lm import build_tiny_lm, tiny_lm_dir  # noqa: F401  (fixture)

PROMPTS = [
    "def add(a, b):\n",
    "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    '    """ Check if in given list of numbers, are any two numbers closer to each other than threshold.\n    """\n',
    "class Foo:\n    pass\n",
    "import os\n",
    "def f(x):\n    return x * x\n\n\ndef g(",
    "print(",
    "for i in range(10):\n    if i % 2:\n        continue\n",
]


def _pair(folder, max_new_tokens=24, slots=3):
    settings = GenerationSettings(model=str(folder), max_new_tokens=max_new_tokens)
    return HFGenerator(settings, threads=1), HFGenerator(settings, threads=1, dynamic_slots=slots)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_dynamic_equals_one_by_one_generate(tmp_path, arch):
    plain, dynamic = _pair(build_tiny_lm(tmp_path / arch, arch=arch, seed=3))
    assert dynamic.dynamic_slots == 3 and plain.dynamic_slots == 0
    free = [plain.generate([p], [[]])[0] for p in PROMPTS]
    # Stops that end some rows after a few tokens, none for others: rows leave at different steps, slots refill.
    stops = [[text[4:7]] if k % 2 == 0 else [] for k, (text, _, _) in enumerate(free)]
    expected = [plain.generate([p], [s])[0] for p, s in zip(PROMPTS, stops)]
    got = dynamic.generate(PROMPTS, stops)
    assert got == expected
    assert {reason for _, _, reason in got} >= {"stop", "length"}


def test_eos_ends_a_row_and_is_not_returned(tiny_lm_dir):
    from codeblock_eval.generation.dynamic import greedy_dynamic

    plain, dynamic = _pair(tiny_lm_dir, max_new_tokens=12, slots=2)
    ids = [plain.tokenizer(p)["input_ids"] for p in PROMPTS[:3]]
    free = greedy_dynamic(dynamic.model, ids, slots=2, max_new_tokens=12, eos_ids=[])
    assert all(reason == "length" and len(toks) == 12 for toks, reason in free)
    # Declare row 0's 3rd generated token an end-of-turn token: both paths stop before its first occurrence.
    eos = free[0][0][2]
    cut = free[0][0].index(eos)
    for gen in (plain, dynamic):
        gen.eos_ids = sorted(set(gen.eos_ids) | {eos})
    a = plain.generate([PROMPTS[0]], [[]])[0]
    b = dynamic.generate([PROMPTS[0]], [[]])[0]
    assert a == b and a[2] == "eos" and a[1] == cut
    assert greedy_dynamic(dynamic.model, ids, slots=2, max_new_tokens=12, eos_ids=[eos])[0] == (free[0][0][:cut], "eos")


def test_fewer_forward_passes_than_lockstep_batches(tiny_lm_dir):
    from test_generation import _ForwardCounter

    plain, dynamic = _pair(tiny_lm_dir, max_new_tokens=20, slots=4)
    free = [plain.generate([p], [[]])[0] for p in PROMPTS[:4]]
    stops = [[free[0][0][3:6]], [free[1][0][3:6]], [free[2][0][3:6]], []]
    with _ForwardCounter(dynamic.model) as counter:
        out = dynamic.generate(PROMPTS[:4], stops)
    # 4 prefills + at most 19 decode steps (the one row without a stop runs to the limit alone).
    assert counter.calls <= 4 + 19
    assert [r for _, _, r in out].count("length") == 1


def test_sampling_falls_back_to_generate(tiny_lm_dir):
    gen = HFGenerator(GenerationSettings(model=str(tiny_lm_dir), max_new_tokens=5, temperature=0.8), threads=1,
                      dynamic_slots=4)
    assert gen.dynamic_slots == 0
