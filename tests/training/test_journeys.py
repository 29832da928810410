"""Every documented way into TRL training, written the way a user writes it, on the embedded SmolLM2-135M-Instruct.

The snippets run here are the README's (blocks marked ``<!-- journey: NAME -->``), executed unchanged; the test only
shortens the run (``trl.SFTConfig`` gets ``max_steps``/``output_dir``/CPU settings on top of the snippet's own
arguments) and then inspects what the trainer sees: every batch of ``trainer.get_train_dataloader()`` must supervise
exactly the intended tokens, and the logged ``codeblock/supervised_fraction`` must equal the labels' own fraction.
"""

from __future__ import annotations

import json
import re

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from support.training_helpers import CODE_ROWS, span_labels  # noqa: E402

pytestmark = pytest.mark.slow

# One epoch (4 rows, 2 steps) with a single log at its end: that log's fraction then covers every row once.
SHORT_RUN = dict(num_train_epochs=1, max_steps=-1, per_device_train_batch_size=2, logging_steps=1000,
                 save_strategy="no", report_to=[], use_cpu=True, bf16=False, dataloader_num_workers=0,
                 disable_tqdm=True, seed=0, gradient_checkpointing=False, learning_rate=1e-4)


def readme_snippet(repo_root, name: str) -> str:
    text = (repo_root / "README.md").read_text()
    m = re.search(rf"<!-- journey: {re.escape(name)} -->\s*```python\n(.*?)```", text, re.S)
    assert m, f"README has no ```python block marked <!-- journey: {name} -->"
    return m.group(1)


@pytest.fixture
def short_sft_config(monkeypatch, tmp_path):
    """trl.SFTConfig with the snippet's arguments plus a two-step CPU run in tmp_path."""
    real = trl.SFTConfig

    def config(**kw):
        kw.update(SHORT_RUN, output_dir=str(tmp_path / "out"))
        return real(**kw)

    monkeypatch.setattr(trl, "SFTConfig", config)
    monkeypatch.chdir(tmp_path)
    return config


@pytest.fixture(scope="module")
def smol(smollm2_dir):
    from transformers import AutoTokenizer

    return smollm2_dir, AutoTokenizer.from_pretrained(smollm2_dir)


def load_model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def run_snippet(repo_root, name, **namespace):
    exec(compile(readme_snippet(repo_root, name), f"README.md:{name}", "exec"), namespace)
    return namespace


def epoch_batches(trainer):
    return list(trainer.get_train_dataloader())


def assert_batches_supervise(trainer, want_rows):
    """The trainer's batches over one epoch carry exactly the supervised (token id, label) pairs of ``want_rows``
    (rows of input_ids + labels), nothing else: same multiset of supervised tokens per row."""
    got = []
    for batch in epoch_batches(trainer):
        ids, labels = batch["input_ids"], batch["labels"]
        sup = labels != -100
        assert torch.equal(labels[sup], ids[sup]), "a supervised label differs from its input token"
        if "position_ids" in batch:  # padding-free packing: split the row at position 0
            starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
            for a, b in zip(starts, starts[1:]):
                got.append(tuple(ids[0, a:b][sup[0, a:b]].tolist()))
        else:
            for r in range(ids.shape[0]):
                got.append(tuple(ids[r][sup[r]].tolist()))
    want = [tuple(t for t, v in zip(r["input_ids"], r["labels"]) if v != -100) for r in want_rows]
    assert sorted(got) == sorted(want)
    assert sum(map(len, want)) > 0


def labels_fraction(rows) -> float:
    sup = sum(sum(v != -100 for v in r["labels"]) for r in rows)
    return sup / sum(len(r["input_ids"]) for r in rows)


def logged_fraction(trainer) -> float:
    """The fraction the trainer logged over the snippet's one-epoch run (a single log, at its end)."""
    assert trainer.state.global_step == len(trainer.get_train_dataloader())
    logs = [h for h in trainer.state.log_history if "codeblock/supervised_fraction" in h]
    assert len(logs) == 1
    return logs[0]["codeblock/supervised_fraction"]


# ---------------------------------------------------------------- TRL + the user's rows with codeblock_mask

def mask_rows(tok):
    rows = []
    for r in CODE_ROWS:
        lab = span_labels(tok, r)
        rows.append({"input_ids": lab["input_ids"], "codeblock_mask": [int(v != -100) for v in lab["labels"]]})
    return rows


def test_trl_codeblock_mask_with_collator(repo_root, smol, short_sft_config):
    """collator.py's documented path: mask-only rows, remove_unused_columns=False, plain SFTTrainer. TRL adds
    labels = input_ids to every row; the mask must still decide what is supervised."""
    from datasets import Dataset

    path, tok = smol
    rows = mask_rows(tok)
    ns = run_snippet(repo_root, "trl-mask-collator", model=load_model(path), tok=tok, rows=Dataset.from_list(rows))
    trainer = ns["trainer"]
    assert type(trainer) is trl.SFTTrainer and trainer.state.global_step == 2
    want = [{"input_ids": r["input_ids"], "labels": [t if m else -100 for t, m in zip(r["input_ids"], r["codeblock_mask"])]}
            for r in rows]
    assert_batches_supervise(trainer, want)
    assert trainer.state.log_history[-1]["train_loss"] > 0


def test_collator_rule_for_labels_and_mask():
    from codeblock import CodeBlockCollator

    c = CodeBlockCollator(pad_token_id=0)
    ids = [5, 6, 7, 8]
    # TRL's copy (labels == input_ids): the mask wins
    b = c([{"input_ids": ids, "labels": ids, "codeblock_mask": [0, 0, 1, 0]}])
    assert b["labels"].tolist() == [[-100, -100, 7, -100]]
    # labels that already say the same as the mask: fine
    b = c([{"input_ids": ids, "labels": [-100, -100, 7, -100], "codeblock_mask": [0, 0, 1, 0]}])
    assert b["labels"].tolist() == [[-100, -100, 7, -100]]
    # two different selections for one row cannot both be intended
    with pytest.raises(ValueError, match="disagree.*token 3"):
        c([{"input_ids": ids, "labels": [-100, -100, 7, 8], "codeblock_mask": [0, 0, 1, 0]}])
    # TRL truncated input_ids but not the mask
    with pytest.raises(ValueError, match="max_length=None"):
        c([{"input_ids": ids[:3], "labels": ids[:3], "codeblock_mask": [0, 0, 1, 0]}])
    # a mask of all ones is still a lost selection
    with pytest.raises(ValueError, match="every token"):
        c([{"input_ids": ids, "labels": ids, "codeblock_mask": [1, 1, 1, 1]}])


# ---------------------------------------------------------------- TRL + the user's rows carrying labels

def test_trl_rows_with_labels(repo_root, smol, short_sft_config):
    from datasets import Dataset

    path, tok = smol
    rows = [span_labels(tok, r) for r in CODE_ROWS]
    ns = run_snippet(repo_root, "trl-labels", model=load_model(path), tok=tok, rows=Dataset.from_list(rows))
    trainer = ns["trainer"]
    assert_batches_supervise(trainer, rows)
    assert logged_fraction(trainer) == pytest.approx(labels_fraction(rows), abs=1e-6)


# ---------------------------------------------------------------- TRL + build_sft_dataset / a prepare folder

@pytest.fixture(scope="module")
def prepared(smol, chat_jsonl, tmp_path_factory):
    """`codeblock prepare` on the training rows with SmolLM2 as the trained and the scoring model."""
    from codeblock.cli import main

    path, _ = smol
    out = tmp_path_factory.mktemp("prep")
    argv = ["prepare", "--data", str(chat_jsonl), "--model", str(path), "--out", str(out), "--budget", "0.2",
            "--pair-selector", "none", "--score-cache", "none", "--quiet"]
    assert main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    rows = [json.loads(line) for line in (out / "train.jsonl").open()]
    return out, stats, rows


def assert_matches_prepare(trainer, stats, rows):
    assert_batches_supervise(trainer, rows)
    # what prepare reports: supervised_tokens (+ one EOS per row when supervised) == the labels the trainer sees
    assert sum(sum(v != -100 for v in r["labels"]) for r in rows) == stats["supervised_tokens"] + stats["eos"]["supervised"]
    frac = labels_fraction(rows)
    assert 0 < frac < 1
    assert logged_fraction(trainer) == pytest.approx(frac, abs=1e-6)


def test_trl_prepare_folder(repo_root, smol, prepared, short_sft_config):
    path, tok = smol
    out, stats, rows = prepared
    ns = run_snippet(repo_root, "trl-prepared", model=load_model(path), tok=tok, prepared_dir=str(out))
    assert_matches_prepare(ns["trainer"], stats, rows)


def test_trl_build_sft_dataset(repo_root, smol, prepared, short_sft_config):
    from codeblock.config import CodeBlockConfig

    path, tok = smol
    _, stats, rows = prepared
    raw = [dict(r) for r in CODE_ROWS]
    config = CodeBlockConfig(budget_ratio=0.2, pair_selector="none")
    ns = run_snippet(repo_root, "trl-build", model=load_model(path), tok=tok, raw_rows=raw, config=config,
                     scoring_model=path)
    assert_matches_prepare(ns["trainer"], stats, rows)


def test_trl_packing(repo_root, smol, prepared, short_sft_config):
    path, tok = smol
    out, stats, rows = prepared
    ns = run_snippet(repo_root, "trl-packing", model=load_model(path), tok=tok, prepared_dir=str(out))
    trainer = ns["trainer"]
    assert trainer.args.packing
    batch = next(iter(trainer.get_train_dataloader()))
    assert "position_ids" in batch and batch["input_ids"].shape[0] == 1
    assert_matches_prepare(trainer, stats, rows)


# ---------------------------------------------------------------- `codeblock train` on a prepare folder

def test_codeblock_train_on_prepare_folder(smol, prepared, tmp_path):
    import yaml

    from codeblock.cli import main

    path, _ = smol
    out, stats, rows = prepared
    conf = {"model_name_or_path": str(path), "prepared_path": str(out), "output_dir": str(tmp_path / "adapter"),
            "dtype": "float32", "use_peft": True, "lora_r": 4, "lora_alpha": 8, "lora_target_modules": "all-linear",
            "max_length": None, "per_device_train_batch_size": 2, "num_train_epochs": 1, "use_cpu": True,
            "bf16": False, "gradient_checkpointing": False, "report_to": "none", "save_strategy": "no",
            "logging_steps": 1000, "seed": 0, "codeblock": {"loss_reduction": "mean_global"}}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(conf))
    assert main(["train", "--config", str(tmp_path / "train.yaml")]) == 0
    m = json.loads((tmp_path / "adapter" / "train_metrics.json").read_text())
    assert m["global_step"] == 2 and m["n_rows"] == len(rows)
    assert m["supervised_tokens"] == stats["supervised_tokens"] + stats["eos"]["supervised"]
    assert m["logged_supervised_fractions"] == [pytest.approx(labels_fraction(rows), abs=1e-6)]
    assert m["supervised_fraction_of_attended"] == pytest.approx(labels_fraction(rows), abs=1e-6)


# ---------------------------------------------------------------- TRL + QLoRA (4-bit NF4 base, LoRA adapter)

def test_trl_qlora(repo_root, smol, prepared, short_sft_config):
    """bitsandbytes (the pinned 0.50) quantizes and trains NF4 on CPU: the README's QLoRA snippet runs here unchanged,
    the base really is 4-bit, only the adapter trains, and the sparse loss sees exactly prepare's labels."""
    pytest.importorskip("bitsandbytes")
    path, tok = smol
    out, stats, rows = prepared
    ns = run_snippet(repo_root, "trl-qlora", tok=tok, model_path=str(path), prepared_dir=str(out))
    trainer = ns["trainer"]
    assert any(type(m).__name__ == "Linear4bit" for m in trainer.model.modules())
    trained = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n for n in trained)
    assert_matches_prepare(trainer, stats, rows)
