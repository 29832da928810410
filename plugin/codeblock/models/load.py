"""Loading a resolved model and its fast tokenizer for scoring (eval mode, dtype by device)."""

from __future__ import annotations

import os

from codeblock.models.registry import ModelResolutionError
from codeblock.models.resolve import resolve_model


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model_and_tokenizer(name_or_path: str | os.PathLike, *, dtype=None, device=None):
    """(model in eval mode, fast tokenizer). dtype defaults to bf16 on CUDA and fp32 on CPU (bf16 is very slow on CPU).

    ``dtype`` may be a torch dtype or a string ("float32", "bfloat16", "float16").
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(name_or_path)
    device = device or default_device()
    if dtype is None:
        dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    tok = AutoTokenizer.from_pretrained(path)
    if not getattr(tok, "is_fast", False):
        raise ModelResolutionError(f"tokenizer of {name_or_path!r} is not a fast tokenizer; CodeBlock needs offsets")
    if tok.pad_token_id is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    model.to(device)
    model.eval()
    return model, tok
