"""TRL integration: SFTTrainer trains on CodeBlock labels; sparse trainer == dense trainer under grad accumulation."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from support.training_helpers import CODE_ROWS  # noqa: E402
from support.training_helpers import span_labels  # noqa: E402


def _dataset(tok, n_repeat=2):
    from datasets import Dataset

    return Dataset.from_list([span_labels(tok, r) for r in CODE_ROWS] * n_repeat)


def _args(tmp_path, **kw):
    from trl import SFTConfig

    base = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, max_steps=2, learning_rate=1e-2,
                logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, max_length=None, seed=0,
                dataloader_num_workers=0, optim="sgd", bf16=False,
                gradient_checkpointing=False, lr_scheduler_type="constant", disable_tqdm=True)
    base.update(kw)
    return SFTConfig(**base)


def _load(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32), AutoTokenizer.from_pretrained(tiny_model_dir)


def test_sparse_trainer_matches_dense_with_grad_accum(tiny_model_dir, tmp_path):
    from codeblock.training.trl_sft import CodeBlockSFTTrainer

    finals = {}
    for sparse in (False, True):
        model, tok = _load(tiny_model_dir)
        # loss_type="nll": the dense reference is transformers' own masked CE (TRL 1.14's default "chunked_nll"
        # is a different, approximate-to-1e-4 computation).
        trainer = CodeBlockSFTTrainer(model=model, args=_args(tmp_path, gradient_accumulation_steps=2, loss_type="nll",
                                                              per_device_train_batch_size=1),
                                      train_dataset=_dataset(tok), processing_class=tok, codeblock_sparse_loss=sparse)
        out = trainer.train()
        logs = [h for h in trainer.state.log_history if "loss" in h]
        assert logs and all(0 < h["codeblock/supervised_fraction"] < 1 for h in logs)
        finals[sparse] = (out.training_loss, {n: p.detach().clone() for n, p in model.named_parameters()})
    assert abs(finals[True][0] - finals[False][0]) < 1e-5
    for n, p in finals[False][1].items():
        assert torch.allclose(p, finals[True][1][n], atol=1e-5), n


def test_codeblock_collator_with_mask_column(tiny_model_dir, tmp_path):
    from datasets import Dataset

    from codeblock import CodeBlockCollator
    from codeblock.training.trl_sft import CodeBlockSFTTrainer

    model, tok = _load(tiny_model_dir)
    rows = []
    for r in CODE_ROWS:
        lab = span_labels(tok, r)
        rows.append({"input_ids": lab["input_ids"], "codeblock_mask": [int(v != -100) for v in lab["labels"]]})
    trainer = CodeBlockSFTTrainer(model=model, args=_args(tmp_path, remove_unused_columns=False),
                                  train_dataset=Dataset.from_list(rows), processing_class=tok,
                                  data_collator=CodeBlockCollator(tok))
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2 and all(h["codeblock/supervised_fraction"] < 0.5 for h in logs)


def test_collator_refuses_rows_without_labels(tiny_model_dir):
    from codeblock import CodeBlockCollator

    _, tok = _load(tiny_model_dir)
    c = CodeBlockCollator(tok)
    with pytest.raises(ValueError, match="refusing"):
        c([{"input_ids": [1, 2, 3]}])
    with pytest.raises(ValueError, match="every token"):
        c([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}])


def test_trl_packing_keeps_codeblock_labels(tiny_model_dir, tmp_path):
    """TRL's own BFD packing (padding-free) trains on the same supervised tokens with the sparse loss."""
    from codeblock.training.trl_sft import CodeBlockSFTTrainer

    model, tok = _load(tiny_model_dir)
    ds = _dataset(tok, 1)
    trainer = CodeBlockSFTTrainer(model=model, args=_args(tmp_path, packing=True, max_length=512), train_dataset=ds,
                                  processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    assert "position_ids" in batch and batch["input_ids"].shape[0] == 1
    n_sup_rows = sum(sum(v != -100 for v in r["labels"][1:]) for r in ds)
    assert int((batch["labels"] != -100).sum()) == n_sup_rows
    trainer.train()


def _one_sgd_step(tiny_model_dir, tmp_path, rows, *, reduction, sparse, loss_type="nll"):
    """Parameters after one SGD step (lr 0.5, no clipping) over two micro-batches of one row each."""
    from datasets import Dataset

    from codeblock.training.trl_sft import CodeBlockSFTTrainer

    model, tok = _load(tiny_model_dir)
    args = _args(tmp_path, gradient_accumulation_steps=2, per_device_train_batch_size=1, max_steps=1,
                 learning_rate=0.5, max_grad_norm=0.0, loss_type=loss_type, weight_decay=0.0)
    trainer = CodeBlockSFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                                  codeblock_sparse_loss=sparse, codeblock_loss_reduction=reduction)
    trainer.train()
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _expected_step(tiny_model_dir, rows, reduction):
    """The same SGD step computed by hand: method.md §2(h)'s two normalisations of the masked cross-entropy."""
    import torch.nn.functional as F

    model, _ = _load(tiny_model_dir)
    sums, counts = [], []
    for r in rows:
        ids = torch.tensor([r["input_ids"]])
        labels = torch.tensor(r["labels"])
        logits = model(input_ids=ids).logits[0, :-1].float()
        sums.append(F.cross_entropy(logits, labels[1:], ignore_index=-100, reduction="sum"))
        counts.append(int((labels[1:] != -100).sum()))
    if reduction == "mean_supervised":
        objective = sum(s / n for s, n in zip(sums, counts)) / len(rows)
    else:
        objective = sum(sums) / sum(counts)
    objective.backward()
    return {n: (p - 0.5 * p.grad).detach() if p.grad is not None else p.detach() for n, p in model.named_parameters()}


@pytest.mark.parametrize("sparse, loss_type", [(False, "nll"), (False, "chunked_nll"), (True, "nll")],
                         ids=["dense", "trl_chunked_nll", "sparse"])
def test_loss_reduction_under_gradient_accumulation(tiny_model_dir, tmp_path, sparse, loss_type):
    """codeblock_loss_reduction is applied by the trainer: one optimizer step equals the hand-computed step for
    mean_supervised (mean of micro-batch means) and mean_global/sum (one mean over the accumulated batch)."""
    _, tok = _load(tiny_model_dir)
    rows = [span_labels(tok, CODE_ROWS[0]), span_labels(tok, CODE_ROWS[2])]
    counts = [sum(v != -100 for v in r["labels"][1:]) for r in rows]
    assert counts[0] != counts[1]  # otherwise the two reductions coincide and the test could not tell them apart
    got = {red: _one_sgd_step(tiny_model_dir, tmp_path / red, rows, reduction=red, sparse=sparse, loss_type=loss_type)
           for red in ("mean_supervised", "mean_global", "sum")}
    for red in ("mean_supervised", "mean_global"):
        want = _expected_step(tiny_model_dir, rows, red)
        for n, p in want.items():
            assert torch.allclose(got[red][n], p, atol=1e-5), (red, n)
    for n in got["sum"]:
        assert torch.equal(got["sum"][n], got["mean_global"][n]), n
    moved = [n for n in got["mean_global"] if not torch.allclose(got["mean_global"][n], got["mean_supervised"][n],
                                                                 atol=1e-5)]
    assert moved  # the two normalisations really differ on these rows


def test_unknown_loss_reduction_is_refused(tiny_model_dir, tmp_path):
    from codeblock.training.trl_sft import CodeBlockSFTTrainer

    model, tok = _load(tiny_model_dir)
    with pytest.raises(ValueError, match="codeblock_loss_reduction must be one of"):
        CodeBlockSFTTrainer(model=model, args=_args(tmp_path), train_dataset=_dataset(tok, 1), processing_class=tok,
                            codeblock_loss_reduction="mean")


def test_codeblock_train_applies_loss_reduction_and_packing_knobs(tiny_model_dir, chat_jsonl, tmp_path):
    """`codeblock train`: the CodeBlockConfig knobs the trainer owns reach it and are recorded in train_metrics.json."""
    import json
    import sys

    import yaml

    from codeblock.cli.train import main

    out = tmp_path / "adapter"
    conf = {"model_name_or_path": str(tiny_model_dir), "data_path": str(chat_jsonl), "output_dir": str(out),
            "dtype": "float32", "use_peft": True, "lora_r": 4, "lora_alpha": 8, "lora_target_modules": "all-linear",
            "codeblock": {"budget_ratio": 0.2, "pair_selector": "none", "loss_reduction": "mean_global",
                          "packing": True},
            "max_length": 256, "per_device_train_batch_size": 2, "max_steps": 1, "use_cpu": True, "bf16": False,
            "gradient_checkpointing": False, "report_to": "none", "save_strategy": "no", "logging_steps": 1,
            "seed": 0}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(conf))
    assert main(["--config", str(path)]) == 0
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["loss_reduction"] == "mean_global" and metrics["packing"] is True
    assert metrics["global_step"] == 1 and metrics["supervised_tokens"] > 0
    if sys.platform.startswith("linux"):
        assert metrics["malloc"]["source"] in ("codeblock", "environment")
        assert metrics["peak_memory_kind"] == "process_peak_rss_training" and metrics["peak_memory_mb"] > 0


def test_mean_supervised_micro_batch_without_targets_is_a_zero_not_nan(tiny_model_dir, tmp_path):
    """A micro-batch whose labels are all -100 (possible after truncation) adds nothing instead of poisoning the
    accumulated gradient with HF's NaN mean over zero targets; the dense trainer takes the same guard."""
    from codeblock.training.trl_sft import CodeBlockSFTTrainer

    model, tok = _load(tiny_model_dir)
    trainer = CodeBlockSFTTrainer(model=model, args=_args(tmp_path, gradient_accumulation_steps=2, loss_type="nll"),
                                  train_dataset=_dataset(tok, 1), processing_class=tok, codeblock_sparse_loss=False,
                                  codeblock_loss_reduction="mean_supervised")
    row = span_labels(tok, CODE_ROWS[0])
    ids = torch.tensor([row["input_ids"]])
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.full_like(ids, -100)}
    model.train()
    loss = trainer.compute_loss(model, batch, num_items_in_batch=torch.tensor(7))
    assert torch.isfinite(loss) and loss.item() == 0.0 and loss.requires_grad
    loss.backward()  # connected to the graph, so the step's backward does not fail
