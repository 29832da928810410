"""Fixtures for the training-integration tests: a tiny BPE tokenizer trained in-process and a tiny random Llama.

Both are real objects (a real `tokenizers` BPE model, a real `LlamaForCausalLM`), only small, so the tests exercise the
same code paths as a real run in seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

from support.training_helpers import CODE_ROWS  # noqa: E402  (shared with test modules; 'conftest' is not importable by name)


def _corpus():
    for row in CODE_ROWS:
        for m in row["messages"]:
            yield m["content"]
    yield "def class return for while if else import from print len range self None True False"


def build_tiny_tokenizer(out_dir: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(_corpus()), trainer=trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|im_end|>", unk_token="<unk>",
                                   pad_token="<pad>", additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    fast.chat_template = CHATML
    fast.save_pretrained(out_dir)
    return fast


def build_tiny_model(out_dir: Path, vocab_size: int, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=False, bos_token_id=1, eos_token_id=5, pad_token_id=3)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out_dir)
    return model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A folder holding a tiny ChatML tokenizer + a random 2-layer Llama (~60k parameters)."""
    out = tmp_path_factory.mktemp("tiny-llama")
    tok = build_tiny_tokenizer(out)
    build_tiny_model(out, vocab_size=len(tok))
    return out


@pytest.fixture(scope="session")
def chat_jsonl(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("chat") / "data.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in CODE_ROWS))
    return out
