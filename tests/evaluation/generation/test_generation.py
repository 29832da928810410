"""HF generation: left-padded batches equal single rows, per-row stop sequences end generation early, prompts
follow EvalPlus, PEFT adapters load, and generate_samples writes complete rows and resumes."""

from __future__ import annotations

import json

import pytest

from codeblock_eval.benchmarks.base import RESPONSE_PREFIX
from codeblock_eval.generation import (
    GenerationError,
    GenerationSettings,
    HFGenerator,
    build_prompt,
    generate_samples,
    truncate_at_stops,
)
from codeblock_eval.generation.samples_io import read_samples
from support.tiny_lm import build_tiny_lm, make_problem, tiny_lm_dir  # noqa: F401  (fixture)

PROMPTS = [
    "def add(a, b):\n",
    "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    '    """ Check if in given list of numbers, are any two numbers closer to each other than threshold.\n    """\n',
    "class Foo:\n    pass\n",
]


@pytest.fixture(scope="module")
def generator(tiny_lm_dir):
    return HFGenerator(GenerationSettings(model=str(tiny_lm_dir), max_new_tokens=20), threads=1)


class _ForwardCounter:
    """Counts real forward passes of the model (wraps, does not replace, the forward)."""

    def __init__(self, model):
        self.model, self.calls, self._orig = model, 0, model.forward

    def __enter__(self):
        def counted(*args, **kwargs):
            self.calls += 1
            return self._orig(*args, **kwargs)

        self.model.forward = counted
        return self

    def __exit__(self, *exc):
        self.model.forward = self._orig


def test_cpu_fp32_left_padding(generator):
    import torch

    assert generator.device == "cpu"
    assert next(generator.model.parameters()).dtype == torch.float32
    assert generator.tokenizer.padding_side == "left"
    assert generator.tokenizer.convert_tokens_to_ids("<|im_end|>") in generator.eos_ids


def test_batched_greedy_equals_one_by_one(generator):
    batched = generator.generate(PROMPTS, [[], [], []])
    single = [generator.generate([p], [[]])[0] for p in PROMPTS]
    assert batched == single
    assert all(n == 20 and reason == "length" for _, n, reason in batched)


def test_stop_sequence_stops_each_row_and_the_batch_early(generator):
    free = generator.generate(PROMPTS[:2], [[], []])
    # Pick, for each row, a stop string that occurs a few tokens into that row's own free-running output.
    stops = [[text[6:9]] for text, _, _ in free]
    assert all(s[0] and s[0] in text for s, (text, _, _) in zip(stops, free))
    with _ForwardCounter(generator.model) as counter:
        stopped = generator.generate(PROMPTS[:2], stops)
    assert counter.calls < 20  # every row hit its stop before max_new_tokens: generate returned early
    for (text, n_tokens, reason), (full, _, _), stop in zip(stopped, free, stops):
        assert reason == "stop" and n_tokens < 20
        assert truncate_at_stops(text, stop)[0] == truncate_at_stops(full, stop)[0]
        assert full.startswith(truncate_at_stops(text, stop)[0])


def test_a_row_without_stop_keeps_going(generator):
    free = generator.generate(PROMPTS[:2], [[], []])
    out = generator.generate(PROMPTS[:2], [[free[0][0][6:9]], []])
    assert out[0][2] == "stop" and out[1] == free[1]


def test_truncate_at_earliest_stop():
    assert truncate_at_stops("a\nprint(1)\ndef g", ["\ndef ", "\nprint("]) == ("a", True)
    assert truncate_at_stops("abc", []) == ("abc", False)


def test_prompts_follow_evalplus(generator):
    problem = make_problem("T/0", "\n\ndef f(x):\n    '''Return x.'''\n\n\n", "f")
    assert build_prompt(problem, "base") == "def f(x):\n    '''Return x.'''\n"
    chat = build_prompt(problem, "chat", generator.tokenizer)
    assert chat.startswith("<|im_start|>user\nPlease provide a self-contained Python script")
    assert "```\ndef f(x):\n    '''Return x.'''\n```\n" in chat
    assert chat.endswith(f"<|im_start|>assistant\n{RESPONSE_PREFIX}\n```python\n")  # turn left open after prefill
    with_instruction = make_problem("T/1", "def g(): pass\n", "g", instruction="Write g.")
    assert "<|im_start|>user\nWrite g.<|im_end|>" in build_prompt(with_instruction, "chat", generator.tokenizer)


def test_chat_without_template_is_a_clear_error(generator):
    problem = make_problem("T/0", "def f(): pass\n")
    template = generator.tokenizer.chat_template
    generator.tokenizer.chat_template = None
    try:
        with pytest.raises(GenerationError, match="chat template"):
            build_prompt(problem, "chat", generator.tokenizer)
    finally:
        generator.tokenizer.chat_template = template


def test_peft_adapter_changes_outputs(tiny_lm_dir, tmp_path, generator):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_lm_dir))
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(str(tmp_path / "adapter"))
    settings = GenerationSettings(model=str(tiny_lm_dir), adapter=str(tmp_path / "adapter"), max_new_tokens=20)
    adapted = HFGenerator(settings, threads=1)
    assert settings.hash() != generator.settings.hash()
    assert adapted.generate(PROMPTS, [[], [], []]) != generator.generate(PROMPTS, [[], [], []])
    with pytest.raises(GenerationError, match="adapter_config.json"):
        HFGenerator(GenerationSettings(model=str(tiny_lm_dir), adapter=str(tmp_path)))


def test_qwen2_architecture_and_chat_style_samples(tmp_path):
    folder = build_tiny_lm(tmp_path / "qwen", arch="qwen2", seed=1)
    gen = HFGenerator(GenerationSettings(model=str(folder), prompt_style="chat", max_new_tokens=8), threads=1)
    problems = [make_problem("T/0", PROMPTS[0], "add")]
    stats = generate_samples(problems, gen, tmp_path / "s.jsonl", progress=False)
    rows, _ = read_samples(tmp_path / "s.jsonl")
    assert stats.n_generated == 1 and rows[0]["prompt_style"] == "chat"


def test_generate_samples_rows_and_resume(generator, tmp_path):
    problems = [make_problem(f"T/{i}", p, "f") for i, p in enumerate(PROMPTS)]
    path = tmp_path / "samples.jsonl"
    stats = generate_samples(problems[:2], generator, path, batch_size=2, progress=False)
    assert stats.n_generated == 2 and stats.n_skipped_existing == 0
    rows, _ = read_samples(path)
    required = {"task_id", "sample_index", "prompt_style", "raw", "completion", "solution", "settings_hash", "finish_reason"}
    assert all(required <= set(row) for row in rows)
    assert {row["settings_hash"] for row in rows} == {generator.settings.hash()}
    for row in rows:
        problem = next(p for p in problems if p.task_id == row["task_id"])
        assert row["completion"] == truncate_at_stops(row["raw"], problem.stop_sequences)[0]
    # Resume with one more task: only the new one is generated; earlier rows are untouched.
    before = path.read_text()
    stats = generate_samples(problems, generator, path, batch_size=2, progress=False)
    assert (stats.n_generated, stats.n_skipped_existing) == (1, 2)
    assert path.read_text().startswith(before)
    rows, _ = read_samples(path)
    assert sorted(r["task_id"] for r in rows) == ["T/0", "T/1", "T/2"]
    # Greedy decoding: the resumed row equals what a fresh run produces for that task.
    fresh = tmp_path / "fresh.jsonl"
    generate_samples(problems[2:], generator, fresh, progress=False)
    assert json.loads(fresh.read_text())["raw"] == next(r["raw"] for r in rows if r["task_id"] == "T/2")


def test_resume_refuses_other_settings(tiny_lm_dir, generator, tmp_path):
    from codeblock_eval.generation.samples_io import SamplesFileError

    path = tmp_path / "samples.jsonl"
    generate_samples([make_problem("T/0", PROMPTS[0])], generator, path, progress=False)
    other = HFGenerator(GenerationSettings(model=str(tiny_lm_dir), max_new_tokens=5), threads=1)
    with pytest.raises(SamplesFileError, match="settings hash"):
        generate_samples([make_problem("T/0", PROMPTS[0])], other, path, progress=False)


@pytest.mark.gpu
def test_vllm_backend_on_cuda(tiny_lm_dir):
    pytest.importorskip("vllm")
    from codeblock_eval.generation.vllm_backend import VLLMGenerator

    gen = VLLMGenerator(GenerationSettings(model=str(tiny_lm_dir), backend="vllm", max_new_tokens=8))
    out = gen.generate(PROMPTS[:2], [["\ndef "], []])
    assert len(out) == 2 and all(isinstance(text, str) for text, _, _ in out)
