"""Sparse LM-head loss: project only the supervised positions through the vocabulary head.

CodeBlock supervises ~2% of response tokens, yet a causal LM normally multiplies *every* hidden state by the
vocabulary matrix (151,936 rows for Qwen2.5) and materialises ``[B, T, V]`` float logits. This module runs the
backbone once, gathers the hidden states whose *shifted* label is not -100 and applies the LM head to those rows only.

The result is the same number as transformers' ``ForCausalLMLoss``:

* ``num_items_in_batch`` given (the Trainer counts ``labels[..., 1:] != -100`` over the whole gradient-accumulation
  window): ``sum(CE) / num_items_in_batch``;
* otherwise: the mean over the supervised positions of this micro-batch.

Two gather modes (``mode="auto"`` picks):

* ``"gather"``: call the backbone (``model.model``) and gather per token, so only the supervised rows hit the head.
  Works through LoRA/QLoRA PEFT wrappers because PEFT injects its layers in place. Applies
  ``final_logit_softcapping`` (Gemma) like the model would.
* ``"keep"``: a normal forward with ``logits_to_keep=<1-D index tensor>`` (transformers >= 5): the union of supervised
  positions over the batch. Used when the model is wrapped by something we must not bypass (DDP, prompt-learning
  PEFT) or post-processes logits in ways we do not reproduce (``logit_scale``/``logits_scaling``).

Example::

    loss = sparse_causal_lm_loss(model, {"input_ids": ids, "attention_mask": am, "labels": labels})
    loss.backward()

No torch import at module import time, so ``import codeblock.training.sparse_loss`` stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100
# Keys that belong to the loss, not to the backbone forward.
_LOSS_KEYS = ("labels", "shift_labels", "num_items_in_batch", "return_loss", "use_cache", "logits_to_keep")


@dataclass
class SparseLossOutput:
    """What :func:`sparse_causal_lm_loss_with_stats` returns besides the loss (used for logging)."""

    loss: Any
    n_supervised: int
    n_projected: int  # rows actually multiplied by the LM head
    n_tokens: int  # non-padding tokens in the micro-batch
    logits: Any = None  # [n_projected, V] float logits of the supervised rows (for accuracy metrics)
    targets: Any = None


def unwrap_causal_lm(model):
    """Return ``(causal_lm, wrapped_ok)``: the ``*ForCausalLM`` under PEFT/accelerate wrappers.

    ``wrapped_ok`` is False when a wrapper must not be bypassed (DDP/FSDP, prompt-learning PEFT): then only the
    ``"keep"`` mode is exact.
    """
    wrapped_ok = True
    m = model
    # torch DDP / DataParallel / FSDP expose the wrapped module as `.module`; skipping their forward breaks grad sync.
    while hasattr(m, "module") and not hasattr(m, "get_output_embeddings"):
        m = m.module
        wrapped_ok = False
    # compiled modules
    if hasattr(m, "_orig_mod"):
        m = m._orig_mod
    try:
        from peft import PeftModel
    except Exception:  # peft not installed: nothing to unwrap
        PeftModel = ()  # type: ignore[assignment]
    if PeftModel and isinstance(m, PeftModel):
        cfg = m.peft_config.get(m.active_adapter) if hasattr(m, "active_adapter") else None
        if cfg is not None and getattr(cfg, "is_prompt_learning", False):
            wrapped_ok = False  # virtual tokens are prepended by PeftModel.forward
        m = m.get_base_model()
    return m, wrapped_ok


def _backbone(lm):
    prefix = getattr(lm, "base_model_prefix", "model")
    backbone = getattr(lm, prefix, None)
    if backbone is None or backbone is lm:
        backbone = lm.get_decoder()
    return backbone


def pick_mode(model, mode: str = "auto") -> str:
    if mode not in ("auto", "gather", "keep"):
        raise ValueError(f"sparse loss mode must be auto|gather|keep, got {mode!r}")
    if mode != "auto":
        return mode
    lm, wrapped_ok = unwrap_causal_lm(model)
    cfg = getattr(lm, "config", None)
    text_cfg = cfg.get_text_config() if cfg is not None and hasattr(cfg, "get_text_config") else cfg
    post_processed = any(getattr(text_cfg, a, None) not in (None, 1, 1.0) for a in ("logit_scale", "logits_scaling"))
    return "gather" if wrapped_ok and not post_processed else "keep"


def _shifted_targets(inputs):
    import torch

    if inputs.get("shift_labels") is not None:
        return inputs["shift_labels"], False
    labels = inputs["labels"]
    pad = torch.full_like(labels[..., :1], IGNORE_INDEX)
    return torch.cat([labels[..., 1:], pad], dim=-1), True


def sparse_causal_lm_loss_with_stats(model, inputs: dict, num_items_in_batch=None, mode: str = "auto",
                                     keep_logits: bool = False) -> SparseLossOutput:
    """Cross-entropy over supervised positions only; see the module docstring for the normalisation."""
    import torch
    import torch.nn.functional as F

    if inputs.get("labels") is None and inputs.get("shift_labels") is None:
        raise ValueError("sparse LM-head loss needs `labels` (or `shift_labels`) in the batch; refusing to guess them")
    targets, _ = _shifted_targets(inputs)
    mask = targets != IGNORE_INDEX
    n_sup = int(mask.sum())
    am = inputs.get("attention_mask")
    n_tok = int((am != 0).sum()) if am is not None else int(inputs["input_ids"].numel())
    fwd = {k: v for k, v in inputs.items() if k not in _LOSS_KEYS}
    mode = pick_mode(model, mode)
    lm, _ = unwrap_causal_lm(model)

    if mode == "gather":
        out = _backbone(lm)(**fwd, use_cache=False)
        hidden = out[0] if not hasattr(out, "last_hidden_state") else out.last_hidden_state
        rows = hidden[mask.to(hidden.device)]  # [N, H]
        logits = lm.get_output_embeddings()(rows)
        cfg = lm.config.get_text_config() if hasattr(lm.config, "get_text_config") else lm.config
        cap = getattr(cfg, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        n_proj = rows.shape[0]
        tgt = targets[mask].to(logits.device)
    else:
        idx = mask.any(0).nonzero().squeeze(-1)
        out = model(**fwd, use_cache=False, logits_to_keep=idx)
        logits_all = out.logits  # [B, K, V]
        sub = targets[:, idx]
        keep = sub != IGNORE_INDEX
        logits = logits_all[keep.to(logits_all.device)]
        tgt = sub[keep].to(logits.device)
        n_proj = int(logits_all.shape[0] * logits_all.shape[1])
        hidden = logits_all

    logits = logits.float()
    if n_sup == 0:
        # No supervised token in this micro-batch: a zero that keeps the graph connected (transformers would
        # return NaN for a mean over nothing).
        loss = hidden.sum() * 0.0
    else:
        loss = F.cross_entropy(logits, tgt, reduction="sum")
        if num_items_in_batch is not None:
            denom = num_items_in_batch
            if torch.is_tensor(denom):
                denom = denom.to(loss.device)
            loss = loss / denom
        else:
            loss = loss / n_sup
    return SparseLossOutput(loss, n_sup, n_proj, n_tok, logits.detach() if keep_logits else None,
                            tgt if keep_logits else None)


def _has_supervised_target(inputs) -> bool:
    if inputs.get("labels") is None and inputs.get("shift_labels") is None:
        return True  # nothing to check here; the parent trainer decides what a label-less batch means
    targets, _ = _shifted_targets(inputs)
    return bool((targets != IGNORE_INDEX).any())


def sparse_causal_lm_loss(model, inputs: dict, num_items_in_batch=None, mode: str = "auto"):
    """Return only the loss tensor of :func:`sparse_causal_lm_loss_with_stats`."""
    return sparse_causal_lm_loss_with_stats(model, inputs, num_items_in_batch, mode).loss


def check_loss_reduction(value: str) -> str:
    """Return ``value`` if it is a ``CodeBlockConfig.loss_reduction`` choice, else raise a ValueError saying which are."""
    from codeblock.config import CHOICES

    if value not in CHOICES["loss_reduction"]:
        raise ValueError(f"codeblock_loss_reduction must be one of {', '.join(CHOICES['loss_reduction'])}; "
                         f"got {value!r}")
    return value


class CodeBlockLossMixin:
    """Trainer mixin (put it *before* the trainer class): sparse loss switch, loss reduction, supervised fraction.

    Works on top of ``transformers.Trainer`` subclasses (TRL ``SFTTrainer``, Axolotl ``AxolotlTrainer``). Set
    ``codeblock_sparse_loss`` (default True), ``codeblock_sparse_mode`` and ``codeblock_loss_reduction`` on the
    instance or as class attributes. ``codeblock_loss_reduction`` (method.md §2(h)):

    * ``mean_supervised`` (method.md's default): each micro-batch's loss is the mean over its own supervised
      positions, and gradient accumulation averages those means;
    * ``mean_global`` (and its alias ``sum``, Token Cleaning's name): sum of the token losses of the whole accumulated
      batch divided by its supervised-token count, i.e. transformers' ``num_items_in_batch``. Recommended with
      gradient accumulation and sparse labels, where micro-batches hold very different numbers of supervised tokens.

    Both paths (sparse and the parent trainer's dense loss) give the same loss for each setting.
    """

    codeblock_sparse_loss: bool = True
    codeblock_sparse_mode: str = "auto"
    codeblock_loss_reduction: str = "mean_supervised"

    def _codeblock_counts(self):
        if not hasattr(self, "_cb_counts"):
            self._cb_counts = {"train": [0, 0], "eval": [0, 0]}
        return self._cb_counts

    def _codeblock_count_batch(self, model, inputs):
        labels = inputs.get("labels")
        if labels is None:
            return
        key = "train" if model.training else "eval"
        am = inputs.get("attention_mask")
        c = self._codeblock_counts()[key]
        c[0] += int((labels != IGNORE_INDEX).sum())
        # attended tokens: Axolotl's multipack collator numbers attention_mask per packed sample (1, 2, 3, ...)
        c[1] += int((am != 0).sum()) if am is not None else int(labels.numel())

    def _codeblock_step_treats_loss_as_ga_scaled(self, num_items_in_batch) -> bool:
        """Whether ``Trainer.training_step`` will skip its own ``/ gradient_accumulation_steps`` (same rule)."""
        flag = getattr(self, "loss_is_scaled_for_ga", None)
        if flag is not None:
            return bool(flag)
        return bool(getattr(self, "model_accepts_loss_kwargs", False) and num_items_in_batch is not None) or (
            getattr(self, "compute_loss_func", None) is not None)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        reduction = check_loss_reduction(self.codeblock_loss_reduction)  # also catches a bad class attribute
        self._codeblock_count_batch(model, inputs)
        # mean_supervised: normalise by this micro-batch's own count (num_items_in_batch=None below), then undo what
        # Trainer.training_step would otherwise get wrong: given num_items_in_batch it assumes the loss is already
        # divided across the accumulation window and does not divide by the number of micro-batches.
        per_micro = reduction == "mean_supervised" and num_items_in_batch is not None
        ga_divisor = 1
        if per_micro and self._codeblock_step_treats_loss_as_ga_scaled(num_items_in_batch):
            ga_divisor = getattr(self, "current_gradient_accumulation_steps", None) or self.args.gradient_accumulation_steps
        items = None if per_micro else num_items_in_batch
        dense = not self.codeblock_sparse_loss or return_outputs
        if dense and per_micro and not return_outputs and not _has_supervised_target(inputs):
            dense = False  # HF's mean over zero targets is NaN; the sparse path returns a graph-connected zero
        if dense:
            # Dense path (or an eval that wants logits): the parent trainer's own loss.
            out = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=items)
            if ga_divisor == 1:
                return out
            return (out[0] / ga_divisor, out[1]) if return_outputs else out / ga_divisor
        inputs = {k: v for k, v in inputs.items() if not k.startswith("_")}
        res = sparse_causal_lm_loss_with_stats(model, inputs, items, self.codeblock_sparse_mode)
        loss = res.loss / ga_divisor
        args = self.args
        # Same multi-process rescaling transformers.Trainer.compute_loss applies when it normalises by
        # num_items_in_batch (a no-op on one process).
        if getattr(args, "average_tokens_across_devices", False) and items is not None:
            scale = self.accelerator.num_processes
            if hasattr(self, "get_tp_size"):
                scale = scale // self.get_tp_size()
            loss = loss * (scale if args.n_gpu <= 1 else args.n_gpu)
        return loss

    def log(self, logs, *args, **kwargs):
        key = "train" if "loss" in logs or not any(k.startswith("eval_") for k in logs) else "eval"
        c = self._codeblock_counts()[key]
        if c[1] > 0:
            name = "codeblock/supervised_fraction" if key == "train" else "eval_codeblock/supervised_fraction"
            logs[name] = round(c[0] / c[1], 6)
            c[0] = c[1] = 0
        return super().log(logs, *args, **kwargs)
