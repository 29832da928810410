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


# Rows with fenced code used by several training tests.
CODE_ROWS = [
    {
        "messages": [
            {"role": "user", "content": "Write a function that adds two numbers."},
            {"role": "assistant", "content": "Here is the function:\n```python\ndef add(a, b):\n    total = a + b\n    return total\n```\nIt returns the sum."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "Reverse a list in Python."},
            {"role": "assistant", "content": "Use slicing:\n```python\ndef rev(xs):\n    out = xs[::-1]\n    return out\n```\nThat is all."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "Count vowels in a string."},
            {"role": "assistant", "content": "Sure.\n```python\ndef count_vowels(s):\n    n = 0\n    for ch in s:\n        if ch in 'aeiou':\n            n += 1\n    return n\n```\nLoop over the characters and count."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "Compute a factorial."},
            {"role": "assistant", "content": "Recursively:\n```python\ndef fact(n):\n    if n <= 1:\n        return 1\n    return n * fact(n - 1)\n```\nBase case first."},
        ]
    },
]
