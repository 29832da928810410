"""TRL integration: SFTTrainer trains on CodeBlock labels; sparse trainer == dense trainer under grad accumulation."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from training_helpers import CODE_ROWS  # noqa: E402
from training_helpers import span_labels  # noqa: E402


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
    from codeblock.trl_integration import CodeBlockSFTTrainer

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
    from codeblock.trl_integration import CodeBlockSFTTrainer

    model, tok = _load(tiny_model_dir)
    rows = []
    for r in CODE_ROWS:
        lab = span_labels(tok, r)
        rows.append({"input_ids": lab["input_ids"], "codeblock_mask": [int(v != -100) for v in lab["labels"]]})
    trainer = CodeBlockSFTTrainer(model=model, args=_args(tmp_path, remove_unused_columns=False,
                                                          dataset_kwargs={"skip_prepare_dataset": True}),
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
    from codeblock.trl_integration import CodeBlockSFTTrainer

    model, tok = _load(tiny_model_dir)
    ds = _dataset(tok, 1)
    trainer = CodeBlockSFTTrainer(model=model, args=_args(tmp_path, packing=True, max_length=512), train_dataset=ds,
                                  processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    assert "position_ids" in batch and batch["input_ids"].shape[0] == 1
    n_sup_rows = sum(sum(v != -100 for v in r["labels"][1:]) for r in ds)
    assert int((batch["labels"] != -100).sum()) == n_sup_rows
    trainer.train()
