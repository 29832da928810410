"""A tiny randomly-initialised causal LM + a real byte-level BPE tokenizer trained in-process (for fast tests).

``build_tiny_lm(folder)`` writes a normal HF folder (config, safetensors, tokenizer with a ChatML chat template)
that ``AutoModelForCausalLM`` / ``AutoTokenizer`` load like any checkpoint. Generation with it takes milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n",
    '    """ Check if in given list of numbers, are any two numbers closer to each other than threshold.\n    """\n',
    "    for idx, elem in enumerate(numbers):\n        if abs(elem - threshold) < 1:\n            return True\n",
    "class Foo:\n    pass\n\nimport os\nprint(x)\nassert f(1) == 2\nif __name__ == '__main__':\n    main()\n",
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n```\n",
    "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:\n```python\n",
]


def build_tiny_lm(folder: str | Path, *, seed: int = 0, arch: str = "llama") -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    fast.chat_template = CHATML
    fast.save_pretrained(str(folder))
    torch.manual_seed(seed)
    common = dict(
        vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id, bos_token_id=None, tie_word_embeddings=False,
    )
    if arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    else:
        model = LlamaForCausalLM(LlamaConfig(**common))
    model.save_pretrained(str(folder))
    return folder



@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """Session-wide tiny Llama checkpoint folder (import this fixture into a test module to use it)."""
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-llama"))


def make_problem(task_id: str, prompt: str, entry_point: str = "f", *, stops=("\ndef ",), instruction: str = ""):
    """A real benchmark Problem (codeblock_eval.benchmarks.base) built from literal fields."""
    from codeblock_eval.benchmarks.base import Problem

    return Problem(task_id=task_id, prompt=prompt, instruction=instruction, entry_point=entry_point,
                   language="python", stop_sequences=tuple(stops))

