"""Axolotl 0.21 integration, in-process (frameworks.md §2.4): preprocess + train with `type: codeblock`, loud errors,
hash sensitivity to codeblock_* knobs. The real CLI subprocess run lives in test_axolotl_cli.py."""

from __future__ import annotations

import json
import re

import pytest
import yaml

pytest.importorskip("axolotl")
torch = pytest.importorskip("torch")


def _reset_plugins():
    from axolotl.integrations import base

    base.PluginManager._instance = None
    if hasattr(base, "reset_plugin_entry_points_cache"):
        base.reset_plugin_entry_points_cache()


@pytest.fixture(autouse=True)
def fresh_plugin_manager():
    from axolotl.utils.data import shared

    saved = shared.DATASET_HASH_CONFIG_EXTRA_FIELDS
    _reset_plugins()
    yield
    _reset_plugins()
    shared.DATASET_HASH_CONFIG_EXTRA_FIELDS = saved


def base_yaml(model_dir, data, tmp_path, **over) -> dict:
    cfg = {
        "base_model": str(model_dir), "model_type": "LlamaForCausalLM", "tokenizer_type": "PreTrainedTokenizerFast",
        "datasets": [{"path": str(data), "ds_type": "json", "type": "codeblock"}],
        "dataset_prepared_path": str(tmp_path / "prepared"), "val_set_size": 0, "output_dir": str(tmp_path / "out"),
        "sequence_len": 256, "sample_packing": False, "adapter": "lora", "lora_r": 4, "lora_alpha": 8,
        "lora_dropout": 0.0, "lora_target_linear": True, "micro_batch_size": 2, "gradient_accumulation_steps": 1,
        "num_epochs": 1, "max_steps": 2, "optimizer": "adamw_torch", "learning_rate": 1e-3, "lr_scheduler": "constant",
        "bf16": False, "fp16": False, "tf32": False, "logging_steps": 1, "save_strategy": "no",
        "lora_mlp_kernel": False, "lora_qkv_kernel": False, "lora_o_kernel": False, "lora_embedding_kernel": False,
        "plugins": ["codeblock.CodeBlockPlugin"], "codeblock_pair_selector": "none", "codeblock_budget_ratio": 0.2,
        "codeblock_score_cache_dir": None, "dataset_num_proc": 1,
    }
    cfg.update(over)
    return cfg


def write(cfg: dict, tmp_path, name="cfg.yml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def load(cfg_path):
    from axolotl.cli.config import load_cfg

    return load_cfg(str(cfg_path))


def preprocess(cfg):
    """What `axolotl preprocess` does: a plugin's load_datasets hook first, else Axolotl's own loader."""
    from axolotl.cli.args import PreprocessCliArgs
    from axolotl.common.datasets import load_datasets
    from axolotl.integrations.base import PluginManager

    return PluginManager.get_instance().load_datasets(cfg, preprocess=True) or load_datasets(
        cfg=cfg, cli_args=PreprocessCliArgs())


def test_preprocess_and_train_labels_equal_codeblock_prepare(tiny_model_dir, chat_jsonl, tmp_path):
    from axolotl.train import train
    from transformers import AutoTokenizer

    from codeblock.cli.prepare import run_prepare
    from codeblock.integrations.axolotl.args import codeblock_config_from_cfg
    from codeblock.scoring.scorer import Scorer

    cfg = load(write(base_yaml(tiny_model_dir, chat_jsonl, tmp_path), tmp_path))
    meta = preprocess(cfg)
    got = [(list(r["input_ids"]), list(r["labels"])) for r in meta.train_dataset]

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = codeblock_config_from_cfg(cfg)
    stats = run_prepare(str(chat_jsonl), str(tiny_model_dir), tmp_path / "cb", config, score_cache=None,
                        progress=False, tokenizer=tok, scorer=Scorer(str(tiny_model_dir), progress=False))
    want = [(r["input_ids"], r["labels"]) for r in map(json.loads, (tmp_path / "cb" / "train.jsonl").open())]
    assert stats["n_kept"] == len(want) > 0
    assert sorted(got) == sorted(want)
    assert any(v == -100 for _, lab in got for v in lab) and any(v != -100 for _, lab in got for v in lab)

    model, _, trainer = train(cfg=cfg, dataset_meta=meta)
    assert type(trainer).__name__ == "CodeBlockSparseTrainer"
    assert trainer.codeblock_loss_reduction == "mean_supervised"  # CodeBlockConfig's default reaches the trainer
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2
    assert all(0 < h["codeblock/supervised_fraction"] < 1 for h in logs)


def test_prepared_folder_as_dataset_path(tiny_model_dir, chat_jsonl, tmp_path):
    """`path:` pointing at `codeblock prepare` output trains on exactly those labels (dense loss switch)."""
    from axolotl.train import train
    from transformers import AutoTokenizer

    from codeblock.cli.prepare import run_prepare
    from codeblock.config import CodeBlockConfig
    from codeblock.scoring.scorer import Scorer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    run_prepare(str(chat_jsonl), str(tiny_model_dir), tmp_path / "cb",
                CodeBlockConfig(pair_selector="none", budget_ratio=0.2, max_seq_length=256), score_cache=None,
                progress=False, tokenizer=tok, scorer=Scorer(str(tiny_model_dir), progress=False))
    want = sorted((r["input_ids"], r["labels"]) for r in map(json.loads, (tmp_path / "cb" / "train.jsonl").open()))
    raw = base_yaml(tiny_model_dir, tmp_path / "cb", tmp_path, codeblock_sparse_loss=False, max_steps=1,
                    codeblock_loss_reduction="mean_global")
    raw["datasets"] = [{"path": str(tmp_path / "cb")}]
    for k in ("codeblock_pair_selector", "codeblock_budget_ratio"):
        raw.pop(k)
    cfg = load(write(raw, tmp_path))
    meta = preprocess(cfg)
    assert sorted((list(r["input_ids"]), list(r["labels"])) for r in meta.train_dataset) == want
    _, _, trainer = train(cfg=cfg, dataset_meta=meta)
    assert type(trainer).__name__ == "CodeBlockDenseTrainer"
    assert trainer.codeblock_loss_reduction == "mean_global"


def test_unknown_codeblock_key_is_an_error(tiny_model_dir, chat_jsonl, tmp_path):
    with pytest.raises(Exception, match="codeblock_budget_ratoi.*did you mean 'codeblock_budget_ratio'"):
        load(write(base_yaml(tiny_model_dir, chat_jsonl, tmp_path, codeblock_budget_ratoi=0.1), tmp_path))


def test_plugin_without_codeblock_dataset_is_an_error(tiny_model_dir, chat_jsonl, tmp_path):
    raw = base_yaml(tiny_model_dir, chat_jsonl, tmp_path)
    raw["datasets"] = [{"path": str(chat_jsonl), "ds_type": "json", "type": "chat_template"}]
    with pytest.raises(Exception, match="no dataset uses CodeBlock"):
        load(write(raw, tmp_path))


def test_bad_knob_value_fails_validation(tiny_model_dir, chat_jsonl, tmp_path):
    with pytest.raises(Exception, match="budget_ratio"):
        load(write(base_yaml(tiny_model_dir, chat_jsonl, tmp_path, codeblock_budget_ratio=3.0), tmp_path))


def test_strategy_without_plugin_is_an_error(tiny_model_dir, chat_jsonl, tmp_path):
    raw = base_yaml(tiny_model_dir, chat_jsonl, tmp_path)
    raw.pop("plugins")
    for k in [k for k in raw if k.startswith("codeblock_")]:
        raw.pop(k)
    raw["datasets"][0]["type"] = "codeblock.integrations.axolotl.strategy"
    cfg = load(write(raw, tmp_path))
    with pytest.raises(Exception, match="needs the plugin"):
        preprocess(cfg)


def _hash(cfg):
    from axolotl.utils.data.shared import generate_dataset_hash_from_config

    from codeblock.integrations.axolotl.plugin import label_fingerprint_in_dataset_hash

    with label_fingerprint_in_dataset_hash(cfg):
        return generate_dataset_hash_from_config(cfg, cfg.datasets, "tok")


def test_label_inputs_change_the_prepared_dataset_hash(tiny_model_dir, chat_jsonl, tmp_path, monkeypatch):
    """Every input that changes the labels changes Axolotl's prepared-dataset hash: a codeblock_* knob, one left at its
    default being set, the scoring model, base_model when it is the scorer, the reference model."""
    import shutil

    from axolotl.utils.data import shared

    original = shared.DATASET_HASH_CONFIG_EXTRA_FIELDS
    other = tmp_path / "other-model"  # same tokenizer, other weights: a different scorer
    shutil.copytree(tiny_model_dir, other)
    (other / "config.json").write_text((other / "config.json").read_text().replace('"rms_norm_eps": 1e-06',
                                                                                      '"rms_norm_eps": 1e-05'))
    variants = {
        "base": {},
        "budget": {"codeblock_budget_ratio": 0.1},
        "default_knob_set": {"codeblock_nl_share": 0.5},
        "scoring_model": {"codeblock_scoring_model": str(other)},
        "reference": {"codeblock_utility_mode": "excess_gce", "codeblock_reference_model": str(tiny_model_dir)},
        "reference2": {"codeblock_utility_mode": "excess_gce", "codeblock_reference_model": str(other)},
    }
    hashes = {}
    for name, over in variants.items():
        _reset_plugins()
        cfg = load(write(base_yaml(tiny_model_dir, chat_jsonl, tmp_path, **over), tmp_path))
        assert shared.DATASET_HASH_CONFIG_EXTRA_FIELDS == original  # registering the plugin patches nothing
        hashes[name] = _hash(cfg)
        assert shared.DATASET_HASH_CONFIG_EXTRA_FIELDS == original  # the scoped extension is undone on exit
    assert len(set(hashes.values())) == len(hashes), hashes
    # base_model is the default scorer: other weights behind the same tokenizer give other labels
    _reset_plugins()
    cfg = load(write(base_yaml(other, chat_jsonl, tmp_path), tmp_path))
    assert _hash(cfg) != hashes["base"]
    # the extension is undone even when the load fails
    from codeblock.integrations.axolotl.plugin import label_fingerprint_in_dataset_hash

    with pytest.raises(RuntimeError, match="boom"):
        with label_fingerprint_in_dataset_hash(cfg):
            raise RuntimeError("boom")
    assert shared.DATASET_HASH_CONFIG_EXTRA_FIELDS == original


def test_preprocess_caches_per_label_fingerprint(tiny_model_dir, chat_jsonl, tmp_path):
    """Two budgets through the plugin's load_datasets hook (what `axolotl preprocess` calls): two cached datasets."""
    for ratio in (0.1, 0.3):
        _reset_plugins()
        preprocess(load(write(base_yaml(tiny_model_dir, chat_jsonl, tmp_path, codeblock_budget_ratio=ratio),
                              tmp_path)))
    assert len([p for p in (tmp_path / "prepared").iterdir() if p.is_dir()]) == 2


def test_scoring_model_with_another_tokenizer_is_refused(tiny_model_dir, chat_jsonl, tmp_path, smollm2_dir):
    """The check `codeblock prepare` runs, run by the plugin before any model is loaded (one shared function)."""
    with pytest.raises(Exception, match="different tokenizer"):
        load(write(base_yaml(tiny_model_dir, chat_jsonl, tmp_path, codeblock_scoring_model=str(smollm2_dir)),
                   tmp_path))


def test_prepared_for_longer_rows_names_real_flags(tiny_model_dir, chat_jsonl, tmp_path):
    import argparse

    from codeblock.cli.prepare import add_arguments
    from codeblock.integrations.axolotl.plugin import _check_prepared_matches

    folder = tmp_path / "cb"
    folder.mkdir()
    (folder / "stats.json").write_text(json.dumps({"config": {"max_seq_length": 1024}}))
    with pytest.raises(Exception, match="sequence_len=256") as err:
        _check_prepared_matches(folder, {"sequence_len": 256})
    flags = re.findall(r"codeblock prepare ((?:--[\w-]+ ?)+)", str(err.value))
    assert flags
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    known = {s for a in parser._actions for s in a.option_strings}
    for group in flags:
        for flag in group.split():
            assert flag in known, flag


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "sample_packing"])
def test_logged_supervised_fraction_equals_labels(tiny_model_dir, chat_jsonl, tmp_path, packing):
    """With sample_packing the multipack collator numbers attention_mask per packed sample (1, 2, 3, ...): the
    logged fraction must count attended tokens, and equal the preprocessed labels' own fraction."""
    from axolotl.train import train

    raw = base_yaml(tiny_model_dir, chat_jsonl, tmp_path, sample_packing=packing, micro_batch_size=1 if packing else 2,
                    logging_steps=1000, sequence_len=512)
    raw.pop("max_steps")  # one epoch; the end-of-training log then carries the whole epoch's fraction
    cfg = load(write(raw, tmp_path))
    meta = preprocess(cfg)
    rows = list(meta.train_dataset)
    sup = sum(sum(v != -100 for v in r["labels"]) for r in rows)
    tot = sum(len(r["input_ids"]) for r in rows)
    _, _, trainer = train(cfg=cfg, dataset_meta=meta)
    batches = list(trainer.get_train_dataloader())
    if packing:
        assert any(int(b["attention_mask"].max()) > 1 for b in batches)  # samples really were packed
    seen_sup = sum(int((b["labels"] != -100).sum()) for b in batches)
    seen_tok = sum(int((b["attention_mask"] != 0).sum()) for b in batches)
    assert (seen_sup, seen_tok) == (sup, tot)
    logs = [h for h in trainer.state.log_history if "codeblock/supervised_fraction" in h]
    assert len(logs) == 1
    assert logs[0]["codeblock/supervised_fraction"] == pytest.approx(sup / tot, abs=1e-6)


def test_full_supervision_fraction_one_stops(tiny_model_dir, tmp_path):
    """A pre-tokenized dataset where every token is a label (masks lost) must stop the run."""
    from datasets import Dataset
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tok("def f(x):\n    return x")["input_ids"]
    folder = tmp_path / "fake"
    Dataset.from_list([{"input_ids": ids, "attention_mask": [1] * len(ids), "labels": ids}] * 4).save_to_disk(
        str(folder / "dataset"))
    (folder / "stats.json").write_text("{}")
    raw = base_yaml(tiny_model_dir, folder, tmp_path, max_steps=1)
    raw["datasets"] = [{"path": str(folder)}]
    cfg = load(write(raw, tmp_path))
    meta = preprocess(cfg)
    from axolotl.train import train

    with pytest.raises(Exception, match="fraction 1.0"):
        train(cfg=cfg, dataset_meta=meta)
