"""Dynamic pack: sort rows by length and concatenate them into rows of at most ``max_length`` tokens.

This is the seed paper's "dynamic pack" (sort by length, concatenate), done as first-fit-decreasing so that packs are
full. CodeBlock labels survive unchanged: each packed row carries

* ``input_ids`` / ``labels``: the concatenation of the member rows;
* ``position_ids``: restarting at 0 for every member, which is how transformers (>= 4.50, incl. 5.x) detects packed
  sequences and builds a block-diagonal causal mask (``masking_utils.find_packed_sequence_indices``) for the eager,
  sdpa and flex backends *when no attention_mask is passed and no KV cache is built* (pass ``use_cache=False`` or
  set ``model.config.use_cache = False``: with the default cache the mask is NOT block-diagonal; TRL's trainer and
  CodeBlock's sparse loss already pass it), and how flash-attn's
  varlen path (``cu_seq_lens``) is fed;
* ``seq_lengths``: the member lengths (TRL's padding-free collator understands them).

The first label of every member is forced to -100, so no loss term predicts sample i+1's first token from sample i
(CodeBlock labels are already -100 there: a row always starts with prompt/template tokens).

Supported on CPU: eager and sdpa attention, both through the position_ids route above (tested: packed loss == unpacked
loss). Not isolated: a model without position-id based packing support (custom attention, or a forward that is given an
``attention_mask``), which then attends across members.

Example::

    >>> packs = pack_rows([{"input_ids": [1, 2], "labels": [-100, 2]}, {"input_ids": [1, 3, 4], "labels": [-100, 3, 4]}], 8)
    >>> packs[0]["input_ids"], packs[0]["position_ids"], packs[0]["labels"]
    ([1, 3, 4, 1, 2], [0, 1, 2, 0, 1], [-100, 3, 4, -100, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100


def pack_rows(rows: list[dict], max_length: int, *, sort: bool = True) -> list[dict]:
    """Pack rows (dicts with ``input_ids`` and ``labels``) into rows of <= ``max_length`` tokens.

    Deterministic: ties in length keep their input order. A row longer than ``max_length`` is an error (truncate
    before packing: truncating here would silently drop supervised tokens).
    """
    if max_length <= 0:
        raise ValueError(f"max_length must be positive, got {max_length}")
    order = list(range(len(rows)))
    if sort:
        order.sort(key=lambda i: (-len(rows[i]["input_ids"]), i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = len(rows[i]["input_ids"])
        if n > max_length:
            raise ValueError(f"row {i} has {n} tokens > max_length {max_length}; truncate before packing")
        if n == 0:
            raise ValueError(f"row {i} is empty")
        for b, free in enumerate(room):
            if free >= n:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(max_length - n)
    packs = []
    for members in bins:
        ids: list[int] = []
        labels: list[int] = []
        pos: list[int] = []
        lens: list[int] = []
        for i in members:
            r = rows[i]
            if len(r["labels"]) != len(r["input_ids"]):
                raise ValueError(f"row {i}: labels and input_ids differ in length")
            ids += list(r["input_ids"])
            lab = list(r["labels"])
            lab[0] = IGNORE_INDEX
            labels += lab
            pos += list(range(len(r["input_ids"])))
            lens.append(len(r["input_ids"]))
        packs.append({"input_ids": ids, "labels": labels, "position_ids": pos, "seq_lengths": lens,
                      "source_rows": members})
    return packs


@dataclass
class PaddingReport:
    real_tokens: int
    padded_tokens_unpacked: int  # tokens processed when batching rows as they come, padding to the longest
    padded_tokens_packed: int  # tokens processed when batching packs
    n_rows: int
    n_packs: int

    @property
    def padding_unpacked(self) -> int:
        return self.padded_tokens_unpacked - self.real_tokens

    @property
    def padding_packed(self) -> int:
        return self.padded_tokens_packed - self.real_tokens

    @property
    def padding_reduction(self) -> float:
        """Fraction of padding tokens removed by packing (1.0 = all padding gone)."""
        if self.padding_unpacked == 0:
            return 0.0
        return 1.0 - self.padding_packed / self.padding_unpacked


def _batched_tokens(lengths: list[int], batch_size: int) -> int:
    total = 0
    for k in range(0, len(lengths), batch_size):
        chunk = lengths[k:k + batch_size]
        total += max(chunk) * len(chunk)
    return total


def padding_report(lengths: list[int], max_length: int, batch_size: int) -> PaddingReport:
    """Compare padded-batch token counts with and without dynamic packing (same batch size in rows)."""
    rows = [{"input_ids": [0] * n, "labels": [0] * n} for n in lengths]
    packs = pack_rows(rows, max_length) if rows else []
    return PaddingReport(real_tokens=sum(lengths), padded_tokens_unpacked=_batched_tokens(lengths, batch_size),
                         padded_tokens_packed=_batched_tokens([len(p["input_ids"]) for p in packs], batch_size),
                         n_rows=len(lengths), n_packs=len(packs))
