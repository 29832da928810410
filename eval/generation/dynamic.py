"""Greedy decoding with refilling slots ("continuous batching") for the HF backend on CPU.

Why: ``model.generate`` on a batch runs until its longest row ends, so one sample that rambles to ``max_new_tokens``
holds every other row's slot; on a 2-core CPU that made batch 8 barely faster than batch 1. Here a batch of ``slots``
rows decodes together, a row leaves as soon as it hits EOS, a stop sequence or the length limit, and the next prompt
takes its slot at once. One decode step for 8 rows costs ~2x one row on this CPU (memory-bound), so throughput grows
with the number of rows actually decoding.

How: each new prompt is prefilled alone (no padding inside its own cache), then its key/value cache is left-padded to
the batch length and concatenated; the attention mask hides padding and explicit ``position_ids`` (real tokens so
far) keep rotary positions exact. Leading columns that every row pads are trimmed after rows leave. Greedy only, and
only for models whose cache is one plain key/value tensor per layer (no sliding-window layers); anything else uses
``model.generate``. Batched fp32 matmuls round differently from single-row ones, so, as with any batched generation,
a token may flip where two logits tie to ~1e-6; tests check agreement with ``generate`` on real prompts.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Sequence


def supports_dynamic(model) -> bool:
    """Plain full-attention decoder layers only (sliding windows/hybrid caches need their own layer classes)."""
    config = getattr(model, "config", None)
    if config is None:
        return False
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", True):
        return False
    layer_types = getattr(text, "layer_types", None) or []
    return all(t == "full_attention" for t in layer_types)


def _pad_left(t, n: int):
    import torch

    if n <= 0:
        return t
    shape = list(t.shape)
    shape[2] = n
    return torch.cat([t.new_zeros(shape), t], dim=2)


def _merge(kv, mask, layers, length: int):
    """Append one prefilled row (cache ``layers`` of ``length`` tokens) to the batch cache ``kv`` / ``mask``."""
    import torch

    row_mask = torch.ones((1, length), dtype=torch.long, device=layers[0][0].device)
    if kv is None:
        return [[k, v] for k, v in layers], row_mask
    width = mask.shape[1]
    if length < width:
        layers = [[_pad_left(k, width - length), _pad_left(v, width - length)] for k, v in layers]
        row_mask = torch.cat([row_mask.new_zeros((1, width - length)), row_mask], dim=1)
    elif length > width:
        kv = [[_pad_left(k, length - width), _pad_left(v, length - width)] for k, v in kv]
        mask = torch.cat([mask.new_zeros((mask.shape[0], length - width)), mask], dim=1)
    kv = [[torch.cat([k, nk], dim=0), torch.cat([v, nv], dim=0)] for (k, v), (nk, nv) in zip(kv, layers)]
    return kv, torch.cat([mask, row_mask], dim=0)


def _select(kv, mask, rows: list[int]):
    import torch

    index = torch.tensor(rows, dtype=torch.long, device=mask.device)
    mask = mask.index_select(0, index)
    used = mask.any(dim=0).nonzero()
    first = int(used[0]) if len(used) else mask.shape[1]  # columns every remaining row pads are dropped
    kv = [[k.index_select(0, index)[:, :, first:], v.index_select(0, index)[:, :, first:]] for k, v in kv]
    return kv, mask[:, first:]


def _layers(cache) -> list[list]:
    return [[layer.keys, layer.values] for layer in cache.layers]


def greedy_dynamic(
    model,
    prompt_ids: Sequence[Sequence[int]],
    *,
    slots: int,
    max_new_tokens: int,
    eos_ids: Sequence[int],
    should_stop: Callable[[int, list[int]], bool] = lambda i, toks: False,
    device: str = "cpu",
) -> list[tuple[list[int], str]]:
    """Greedy continuation of every prompt: ``[(new_token_ids, reason)]`` in input order.

    ``reason`` is ``eos`` (the EOS token is not included), ``stop`` (``should_stop(i, tokens)`` said so) or ``length``.
    """
    import torch
    from transformers import DynamicCache

    if slots < 1:
        raise ValueError("slots must be >= 1")
    eos = {int(e) for e in eos_ids}
    results: list = [None] * len(prompt_ids)
    queue = deque(range(len(prompt_ids)))
    active: list[int] = []
    new: list[list[int]] = []
    kv = mask = None
    with torch.inference_mode():
        while queue or active:
            while queue and len(active) < slots:
                i = queue.popleft()
                if max_new_tokens < 1:
                    results[i] = ([], "length")
                    continue
                ids = torch.tensor([list(prompt_ids[i])], dtype=torch.long, device=device)
                out = model(input_ids=ids, use_cache=True)
                kv, mask = _merge(kv, mask, _layers(out.past_key_values), ids.shape[1])
                active.append(i)
                new.append([int(out.logits[0, -1].argmax())])
            keep = []
            for r, i in enumerate(active):
                toks = new[r]
                if toks[-1] in eos:
                    results[i] = (toks[:-1], "eos")
                elif should_stop(i, toks):
                    results[i] = (toks, "stop")
                elif len(toks) >= max_new_tokens:
                    results[i] = (toks, "length")
                else:
                    keep.append(r)
            if len(keep) < len(active):
                active = [active[r] for r in keep]
                new = [new[r] for r in keep]
                kv, mask = _select(kv, mask, keep) if keep else (None, None)
                if queue:
                    continue  # refill the freed slots before the next decode step
            if not active:
                continue
            cache = DynamicCache()
            for layer_index, (k, v) in enumerate(kv):
                cache.update(k, v, layer_index)
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            positions = mask.sum(dim=1, keepdim=True) - 1
            inputs = torch.tensor([[toks[-1]] for toks in new], dtype=torch.long, device=device)
            out = model(input_ids=inputs, attention_mask=mask, position_ids=positions, past_key_values=cache,
                        use_cache=True)
            kv = _layers(out.past_key_values)
            for r, token in enumerate(out.logits[:, -1].argmax(dim=-1).tolist()):
                new[r].append(int(token))
    return results
