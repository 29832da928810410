"""Label building from fixed character spans (the code fences' bodies), independent of the CodeBlock pipeline.

Used where a test needs sparse labels but must not depend on the selection stage.
"""

from __future__ import annotations

import re

IGNORE = -100


def span_labels(tokenizer, row: dict, max_len: int | None = None) -> dict:
    text = tokenizer.apply_chat_template(row["messages"], tokenize=False)
    asst = row["messages"][-1]["content"]
    start = text.rindex(asst)
    spans = [(start + m.start(1), start + m.end(1)) for m in re.finditer(r"```python\n(.*?)```", asst, re.S)]
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids = enc["input_ids"]
    labels = [IGNORE] * len(ids)
    for i, (a, b) in enumerate(enc["offset_mapping"]):
        if any(a < e and b > s for s, e in spans) and text[a:b].strip():
            labels[i] = ids[i]
    if max_len:
        ids, labels = ids[:max_len], labels[:max_len]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def full_labels(tokenizer, row: dict) -> dict:
    """Full-response supervision on the same input_ids (the baseline arm)."""
    text = tokenizer.apply_chat_template(row["messages"], tokenize=False)
    asst = row["messages"][-1]["content"]
    start = text.rindex(asst)
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids = enc["input_ids"]
    labels = [t if a >= start else IGNORE for t, (a, b) in zip(ids, enc["offset_mapping"])]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def pad_batch(rows, pad_id: int):
    import torch

    n = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), n), pad_id)
    am = torch.zeros((len(rows), n), dtype=torch.long)
    lab = torch.full((len(rows), n), IGNORE)
    for i, r in enumerate(rows):
        k = len(r["input_ids"])
        ids[i, :k] = torch.tensor(r["input_ids"])
        am[i, :k] = 1
        lab[i, :k] = torch.tensor(r["labels"])
    return {"input_ids": ids, "attention_mask": am, "labels": lab}
