"""``codeblock.CodeBlockCollator``: pad CodeBlock rows into a masked-loss batch, for users with their own pipeline.

Input rows carry ``input_ids`` plus either ``labels`` (HF convention: unshifted, -100 = ignored; what
``codeblock prepare`` writes) or a 0/1 ``codeblock_mask`` (1 = supervise this token). It never invents labels: a row
with neither is an error, not full-token SFT.

Modes:

* padded (default): ``input_ids`` padded with the pad id, ``attention_mask``, ``labels`` padded with -100
  (right padding; ``pad_to_multiple_of`` supported);
* ``padding_free=True``: all rows concatenated into one row with ``position_ids`` restarting at 0 per row and no
  ``attention_mask``; transformers then builds a block-diagonal causal mask (eager/sdpa/flex, and flash-attn varlen), so
  neither attention nor loss crosses rows. The first label of every row is set to -100.

Works as a TRL ``data_collator`` and as an Axolotl collator (it accepts Axolotl's ``tokenizer, padding=...,
return_tensors=...`` call). With TRL 1.14-1.16 and ``codeblock_mask`` rows (tested in tests/training/test_journeys.py)::

    args = SFTConfig(output_dir="out", remove_unused_columns=False, max_length=None)
    trainer = SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tok,
                         data_collator=CodeBlockCollator(tok))

``remove_unused_columns=False`` keeps the mask column; ``max_length=None`` because TRL truncates ``input_ids`` but
not the mask (a length mismatch is an error here). TRL adds ``labels = input_ids`` to mask-only rows: labels that
supervise every token carry no selection, so the mask wins; labels that ignore some tokens must agree with the mask,
else the row is an error. TRL refuses a custom collator together with ``padding_free``/BFD ``packing``.

    >>> c = CodeBlockCollator(pad_token_id=0)
    >>> b = c([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [5, 8], "codeblock_mask": [0, 1]}])
    >>> b["input_ids"].tolist(), b["labels"].tolist(), b["attention_mask"].tolist()
    ([[5, 6, 7], [5, 8, 0]], [[-100, 6, 7], [-100, 8, -100]], [[1, 1, 1], [1, 1, 0]])
"""

from __future__ import annotations

IGNORE_INDEX = -100


class CodeBlockCollator:
    def __init__(self, tokenizer=None, *, pad_token_id: int | None = None, pad_to_multiple_of: int | None = None,
                 padding_free: bool = False, mask_key: str = "codeblock_mask", allow_full_supervision: bool = False,
                 return_tensors: str = "pt", **_axolotl_kwargs):
        if pad_token_id is None and tokenizer is not None:
            pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad_token_id is None and not padding_free:
            raise ValueError("CodeBlockCollator needs pad_token_id (or a tokenizer with a pad/eos token)")
        if return_tensors != "pt":
            raise ValueError("CodeBlockCollator only returns PyTorch tensors (return_tensors='pt')")
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of
        self.padding_free = padding_free
        self.mask_key = mask_key
        self.allow_full_supervision = allow_full_supervision

    def _labels(self, i: int, row) -> list[int]:
        """Labels of one row. Precedence when both columns are present (TRL's ``SFTTrainer`` adds ``labels =
        input_ids`` to every row that has no ``labels`` column, so a mask-only dataset reaches the collator with both):

        * ``labels`` that supervise every token (a plain copy of ``input_ids``) carry no selection: the mask wins;
        * ``labels`` that already ignore some tokens must say exactly what the mask says, else the row is an error
          (two different supervisions for one row cannot both be intended).
        """
        ids = list(row["input_ids"])
        labels = list(row["labels"]) if row.get("labels") is not None else None
        mask = row.get(self.mask_key)
        if mask is not None:
            mask = list(mask)
            if len(mask) != len(ids):
                raise ValueError(
                    f"row {i}: {len(mask)} {self.mask_key!r} entries for {len(ids)} input_ids (TRL truncates "
                    f"input_ids/labels to SFTConfig.max_length but not the {self.mask_key!r} column): set "
                    "SFTConfig(max_length=None) and truncate rows yourself, or use codeblock prepare / build_sft_dataset")
            from_mask = [t if m else IGNORE_INDEX for t, m in zip(ids, mask)]
            if labels is None or labels == ids:
                labels = from_mask
            elif labels != from_mask:
                bad = next(k for k, (a, b) in enumerate(zip(labels, from_mask)) if a != b) if len(labels) == len(
                    from_mask) else None
                where = f" (first difference at token {bad})" if bad is not None else ""
                raise ValueError(f"row {i} carries both 'labels' and {self.mask_key!r} and they disagree{where}: keep "
                                 "one of the two columns")
        if labels is None:
            raise ValueError(f"row {i} has neither 'labels' nor {self.mask_key!r}: refusing to train on every token "
                             "(use codeblock prepare / build_sft_dataset, or keep the column with "
                             "remove_unused_columns=False)")
        if len(labels) != len(ids):
            raise ValueError(f"row {i}: {len(labels)} labels for {len(ids)} input_ids")
        return labels

    def __call__(self, features):
        import torch

        if not features:
            raise ValueError("empty batch")
        rows = [(list(f["input_ids"]), self._labels(i, f)) for i, f in enumerate(features)]
        n_sup = sum(sum(v != IGNORE_INDEX for v in lab) for _, lab in rows)
        n_tok = sum(len(ids) for ids, _ in rows)
        if not self.allow_full_supervision and n_sup == n_tok:
            raise ValueError("every token of the batch is supervised (labels == input_ids): CodeBlock labels were "
                             "lost; pass allow_full_supervision=True only for a deliberate full-token run")
        if self.padding_free:
            ids, labels, pos = [], [], []
            for r_ids, r_lab in rows:
                ids += r_ids
                labels += [IGNORE_INDEX] + r_lab[1:]
                pos += list(range(len(r_ids)))
            return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]),
                    "position_ids": torch.tensor([pos])}
        n = max(len(ids) for ids, _ in rows)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            n = (n + m - 1) // m * m
        input_ids = torch.full((len(rows), n), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), n), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((len(rows), n), dtype=torch.long)
        for b, (r_ids, r_lab) in enumerate(rows):
            k = len(r_ids)
            input_ids[b, :k] = torch.tensor(r_ids)
            labels[b, :k] = torch.tensor(r_lab)
            attention[b, :k] = 1
        out = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
        if all("position_ids" in f for f in features):  # rows already packed by codeblock.labels.packing.pack_rows
            pos = torch.zeros((len(rows), n), dtype=torch.long)
            for b, f in enumerate(features):
                p = list(f["position_ids"])
                pos[b, :len(p)] = torch.tensor(p)
                pos[b, len(p):] = torch.arange(n - len(p))
            out["position_ids"] = pos
            del out["attention_mask"]  # position_ids carry the sample boundaries (see codeblock.labels.packing)
        return out
