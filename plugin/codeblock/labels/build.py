"""Label rows (method.md §2(h)): -100 everywhere, then ``labels[t] = input_ids[t]`` for each selected token. Pure.

HF convention: labels are unshifted (the model shifts internally), same length as ``input_ids``. The inputs are exactly
the full-SFT inputs; only the labels differ. The end-of-turn/EOS token that closes the response is supervised when
``supervise_eos`` is on (CodeBlock's default here, so sparse code-only supervision still teaches the model to stop).

    >>> build_labels([5, 6, 7, 8, 2], selected=[2, 3], eos_index=4, supervise_eos=True)
    [-100, -100, 7, 8, 2]
    >>> build_labels([5, 6, 7, 8, 2], selected=[2], eos_index=4, supervise_eos=False)
    [-100, -100, 7, -100, -100]
"""

from __future__ import annotations

from typing import Iterable, Sequence

IGNORE_INDEX = -100


def build_labels(
    input_ids: Sequence[int], selected: Iterable[int], *, eos_index: int | None = None, supervise_eos: bool = True
) -> list[int]:
    labels = [IGNORE_INDEX] * len(input_ids)
    for t in selected:
        if not 0 <= t < len(input_ids):
            raise IndexError(f"selected token {t} outside the sequence of {len(input_ids)} tokens")
        labels[t] = int(input_ids[t])
    if supervise_eos and eos_index is not None and 0 <= eos_index < len(input_ids):
        labels[eos_index] = int(input_ids[eos_index])
    return labels


def full_sft_labels(input_ids: Sequence[int], response_tokens: Iterable[int], eos_index: int | None) -> list[int]:
    """The full-token SFT baseline on the same rendering: every response token plus the end-of-turn token."""
    return build_labels(input_ids, response_tokens, eos_index=eos_index, supervise_eos=True)


def supervised_positions(labels: Sequence[int]) -> list[int]:
    return [t for t, v in enumerate(labels) if v != IGNORE_INDEX]
