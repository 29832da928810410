"""Checks on label rows shared by every trainer (TRL, Axolotl, ``codeblock train``): how many tokens are supervised,
and a loud stop when none are, or when all are (the CodeBlock masks were lost: that would be plain full-token SFT)."""

from __future__ import annotations


class CodeBlockSetupError(RuntimeError):
    """The run cannot train CodeBlock labels as configured; the message says how to fix it."""


def supervised_counts(rows) -> tuple[int, int]:
    sup = tot = 0
    for r in rows:
        labels = r["labels"]
        am = r.get("attention_mask") if hasattr(r, "get") else None
        sup += sum(1 for v in labels if v != -100)
        tot += sum(1 for v in am if v) if am is not None else len(labels)  # packed masks count 1, 2, 3, ...
    return sup, tot


def check_supervised_fraction(rows, *, where: str) -> float:
    """Raise unless 0 < supervised fraction < 1 (1.0 means the masks were lost: that is plain full-token SFT)."""
    sup, tot = supervised_counts(rows)
    if tot == 0 or sup == 0:
        raise CodeBlockSetupError(f"{where}: no supervised tokens in {len(rows)} rows; nothing to train on "
                                  "(check the data and codeblock_budget_ratio)")
    frac = sup / tot
    if frac >= 1.0:
        raise CodeBlockSetupError(f"{where}: every token is supervised (fraction 1.0): the CodeBlock labels were lost "
                                  "and this would silently be full-token SFT; point the dataset at CodeBlock output")
    return frac
