"""TRL helpers: an SFTTrainer-ready dataset with CodeBlock labels, and a trainer with the sparse LM-head loss.

Tested with TRL 1.14.1 (Axolotl's pin) and 1.16.0.

    from codeblock.training.trl_sft import build_sft_dataset, CodeBlockSFTTrainer
    from codeblock.scoring.scorer import Scorer
    from trl import SFTConfig

    train = build_sft_dataset(rows, tokenizer=tok, scorer=Scorer("qwen2.5-coder-0.5b-instruct"))
    trainer = CodeBlockSFTTrainer(model=model, args=SFTConfig(output_dir="out", max_length=None),
                                  train_dataset=train, processing_class=tok)   # sparse loss on by default
    trainer.train()

How TRL treats the dataset (why it works unchanged): a pre-tokenized dataset with a ``labels`` column is used *as is*
(no re-tokenization, labels kept), then truncated to ``SFTConfig.max_length`` and rows whose labels are all -100 are
dropped. Set ``max_length=None`` (or >= ``CodeBlockConfig.max_seq_length``): CodeBlock already truncated consistently.
``packing=True`` (BFD, padding-free) keeps the labels and resets position ids per sample.

``CodeBlockSFTTrainer(..., codeblock_sparse_loss=False)`` uses TRL's own loss (``SFTConfig.loss_type``); both log
``codeblock/supervised_fraction``. ``codeblock_loss_reduction`` (``CodeBlockConfig.loss_reduction``) picks how the loss
is normalised under gradient accumulation: ``mean_supervised`` (per micro-batch, method.md's default) or
``mean_global``/``sum`` (over the whole accumulated batch, transformers' ``num_items_in_batch``). TRL's own loss is not
dense by default either: since TRL 1.14 ``loss_type="chunked_nll"`` (the default) also skips the LM head on ignored
positions (on CPU too), so on TRL both avoid the full ``[B, T, V]`` logits; ``loss_type="nll"`` is the dense one.
``eval/perf/bench_training.py`` measures the three side by side (README, *Sparse loss*). Plain ``transformers.Trainer``
and Axolotl's ``AxolotlTrainer`` (not an ``SFTTrainer``) have no such loss: there CodeBlock's sparse loss is the only
one without the full logits on CPU.
"""

from __future__ import annotations

from pathlib import Path

COLUMNS = ("input_ids", "attention_mask", "labels")


def full_sft_rows(rows, *, tokenizer, config=None):
    """Full-response SFT labels (baseline B1) on exactly CodeBlock's rendering/truncation. Returns (rows, stats)."""
    from codeblock.config import CodeBlockConfig
    from codeblock.data_io import normalize_rows
    from codeblock.labels.build import full_sft_labels
    from codeblock.labels.render import Renderer, RenderSkip

    config = config or CodeBlockConfig()
    examples, skips = normalize_rows(list(rows), config)
    renderer = Renderer(tokenizer, template=config.template, max_seq_length=config.max_seq_length,
                        system_prompt=config.system_prompt)
    out = []
    for ex in examples:
        try:
            rd = renderer.render(ex)
        except RenderSkip as skip:
            skips.add(ex.index, skip.reason, skip.detail)
            continue
        resp = [t for t, (s, e) in enumerate(rd.offsets)
                if not rd.special[t] and s < rd.response_end and e > rd.response_start]
        if not resp:
            skips.add(ex.index, "response_truncated", "no response token inside max_seq_length")
            continue
        labels = full_sft_labels(rd.input_ids, resp, rd.eos_index)
        out.append({"input_ids": list(rd.input_ids), "attention_mask": [1] * len(rd.input_ids), "labels": labels})
    return out, {"n_input": len(rows), "n_kept": len(out), "n_dropped": dict(skips.counts)}


def build_sft_dataset(rows, *, tokenizer, scorer=None, config=None, supervision: str | None = None,
                      reference_scorer=None, return_stats: bool = False):
    """Raw rows -> ``datasets.Dataset`` with ``input_ids``, ``attention_mask``, ``labels`` for ``SFTTrainer``.

    ``supervision`` (default: ``config.supervision``, i.e. ``codeblock``) picks the labels on the same rendering and
    pair selection (method.md §3): ``codeblock``, ``full``, ``random_tokens``, ``gce_tokens``, ``excess_tokens``
    (needs ``reference_scorer``) or ``random_items``. ``full`` and ``random_tokens`` need no ``scorer`` unless the
    pair selector needs IFD; ``full`` with ``pair_selector: none`` is baseline B1 (== :func:`full_sft_rows`).
    """
    from datasets import Dataset

    from codeblock.config import CHOICES, CodeBlockConfig
    from codeblock.training.supervised import check_supervised_fraction
    from codeblock.prepare.pipeline import prepare_dataset
    from codeblock.selection.policies import needs_scores

    config = config or CodeBlockConfig()
    supervision = supervision or config.supervision
    if supervision not in CHOICES["supervision"]:
        raise ValueError(f"supervision must be one of {', '.join(CHOICES['supervision'])}; got {supervision!r}")
    config = config.replace(supervision=supervision)  # validates: e.g. excess_tokens needs reference_model
    if scorer is None and needs_scores(supervision):
        raise ValueError(f"build_sft_dataset(supervision={supervision!r}) needs a scorer (codeblock.scoring.scorer.Scorer)")
    prepared = prepare_dataset(list(rows), tokenizer=tokenizer, scorer=scorer, config=config,
                               reference_scorer=reference_scorer, keep_render=False)
    out = [{k: list(r[k]) for k in COLUMNS} for r in prepared.rows]
    check_supervised_fraction(out, where=f"build_sft_dataset({supervision})")
    ds = Dataset.from_list(out)
    return (ds, prepared.stats) if return_stats else ds


def load_prepared_dataset(folder):
    """Load what ``codeblock prepare --output DIR`` wrote (``DIR`` or ``DIR/dataset``), keeping the 3 model columns."""
    from datasets import load_from_disk

    p = Path(folder)
    if (p / "dataset").is_dir():
        p = p / "dataset"
    ds = load_from_disk(str(p))
    missing = [c for c in COLUMNS if c not in ds.column_names]
    if missing:
        raise ValueError(f"{p} is not a CodeBlock-prepared dataset: missing columns {missing}")
    return ds.select_columns(list(COLUMNS))


def _make_sft_trainer():
    from trl import SFTTrainer

    from codeblock.training.sparse_loss import CodeBlockLossMixin

    class CodeBlockSFTTrainer(CodeBlockLossMixin, SFTTrainer):
        """``trl.SFTTrainer`` with CodeBlock's sparse LM-head loss (``codeblock_sparse_loss=True`` by default)."""

        def __init__(self, *args, codeblock_sparse_loss: bool = True, codeblock_sparse_mode: str = "auto",
                     codeblock_loss_reduction: str = "mean_supervised", **kwargs):
            from codeblock.training.sparse_loss import check_loss_reduction

            self.codeblock_loss_reduction = check_loss_reduction(codeblock_loss_reduction)  # before any model work
            self.codeblock_sparse_loss = codeblock_sparse_loss
            self.codeblock_sparse_mode = codeblock_sparse_mode
            super().__init__(*args, **kwargs)

    CodeBlockSFTTrainer.__module__ = __name__
    return CodeBlockSFTTrainer


_CACHE: dict = {}


def __getattr__(name):  # lazy so that importing this module does not import trl
    if name == "CodeBlockSFTTrainer":
        if name not in _CACHE:
            _CACHE[name] = _make_sft_trainer()
        return _CACHE[name]
    raise AttributeError(name)
