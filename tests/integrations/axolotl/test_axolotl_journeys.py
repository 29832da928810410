"""Axolotl journeys as users write them: the README's YAML blocks (``<!-- journey: NAME -->`` ```yaml), run on the
embedded SmolLM2-135M-Instruct the way the CLI runs them.

``axolotl preprocess`` (the plugin's load_datasets hook, which caches the labelled rows under dataset_prepared_path),
then ``axolotl train`` on a freshly loaded config that reads that cache, then one epoch. The test only adds
run-shortening keys (``RUN``) on top of the snippet and runs it in a folder holding ``data/train.jsonl``. It then
checks what the trainer sees against ``codeblock prepare`` with the same knobs: every batch of
``trainer.get_train_dataloader()`` supervises exactly prepare's tokens (per sample, packed or not), the counts equal
prepare's ``stats.json``, and the one logged ``codeblock/supervised_fraction`` equals those labels' fraction.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

pytest.importorskip("axolotl")
torch = pytest.importorskip("torch")

from support.training_helpers import CODE_ROWS  # noqa: E402
from test_axolotl import fresh_plugin_manager, load, preprocess, _reset_plugins  # noqa: E402,F401  (autouse fixture)

pytestmark = pytest.mark.slow

# One epoch with a single log at its end (its fraction then covers every row once); nothing saved.
RUN = {"logging_steps": 1000, "save_strategy": "no", "dataset_num_proc": 1, "seed": 0}


def readme_yaml(repo_root, name: str) -> dict:
    text = (repo_root / "README.md").read_text()
    m = re.search(rf"<!-- journey: {re.escape(name)} -->\s*```yaml\n(.*?)```", text, re.S)
    assert m, f"README has no ```yaml block marked <!-- journey: {name} -->"
    return yaml.safe_load(m.group(1))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A user's project folder: data/train.jsonl (+ a warm-up subset for the reference model); cwd for the run."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in CODE_ROWS))
    (data / "warmup.jsonl").write_text("".join(json.dumps(r) + "\n" for r in CODE_ROWS[:2]))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def axolotl_preprocess_then_train(raw: dict, workdir):
    """`axolotl preprocess cfg.yml` then `axolotl train cfg.yml` (in-process); returns (cfg, trainer)."""
    from axolotl.cli.args import TrainerCliArgs
    from axolotl.common.datasets import load_datasets
    from axolotl.integrations.base import PluginManager
    from axolotl.train import train

    path = workdir / "cfg.yml"
    path.write_text(yaml.safe_dump({**raw, **RUN}))
    preprocess(load(path))
    cached = [p for p in (workdir / raw["dataset_prepared_path"]).iterdir() if p.is_dir()]
    assert len(cached) == 1
    _reset_plugins()  # a new process: fresh plugin manager, config loaded again
    cfg = load(path)
    meta = PluginManager.get_instance().load_datasets(cfg, preprocess=False) or load_datasets(
        cfg=cfg, cli_args=TrainerCliArgs())
    assert [p for p in (workdir / raw["dataset_prepared_path"]).iterdir() if p.is_dir()] == cached  # reused, not redone
    _, _, trainer = train(cfg=cfg, dataset_meta=meta)
    return cfg, trainer


def codeblock_prepare_like(cfg, workdir):
    """What `codeblock prepare` makes of data/train.jsonl with the knobs of this Axolotl config: (stats, rows)."""
    from codeblock.cli.prepare import run_prepare
    from codeblock.integrations.axolotl.args import codeblock_config_from_cfg
    from codeblock.models import resolve_model

    out = workdir / "cb"
    config = codeblock_config_from_cfg(cfg)
    stats = run_prepare("data/train.jsonl", resolve_model("smollm2-135m-instruct"), out, config, score_cache=None,
                        progress=False)
    return stats, [json.loads(line) for line in (out / "train.jsonl").open()]


def supervised_per_sample(trainer) -> list[tuple]:
    """The supervised token ids of every sample in one epoch of the trainer's batches. Axolotl's multipack collator
    numbers attention_mask per packed sample (1, 2, 3, ...); a padded batch has 0/1."""
    got = []
    for batch in trainer.get_train_dataloader():
        ids, labels, am = batch["input_ids"], batch["labels"], batch["attention_mask"]
        sup = labels != -100
        assert torch.equal(labels[sup], ids[sup]), "a supervised label differs from its input token"
        assert not (sup & (am == 0)).any(), "a padding position is supervised"
        for r in range(ids.shape[0]):
            for sample in sorted(set(am[r].tolist()) - {0}):
                where = (am[r] == sample) & sup[r]
                got.append(tuple(ids[r][where].tolist()))
    return got


def assert_trainer_sees_prepare(trainer, stats, rows, *, packed: bool):
    batches = list(trainer.get_train_dataloader())
    assert any(int(b["attention_mask"].max()) > 1 for b in batches) == packed
    want = [tuple(t for t, v in zip(r["input_ids"], r["labels"]) if v != -100) for r in rows]
    assert sorted(supervised_per_sample(trainer)) == sorted(want)
    n_sup = sum(map(len, want))
    assert n_sup == stats["supervised_tokens"] + stats["eos"]["supervised"] > 0
    frac = n_sup / sum(len(r["input_ids"]) for r in rows)
    assert 0 < frac < 1
    assert trainer.state.global_step == len(batches)
    logs = [h for h in trainer.state.log_history if "codeblock/supervised_fraction" in h]
    assert len(logs) == 1
    assert logs[0]["codeblock/supervised_fraction"] == pytest.approx(frac, abs=1e-6)


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "sample_packing"])
def test_axolotl_codeblock_smollm2(repo_root, workdir, packing):
    raw = readme_yaml(repo_root, "axolotl-codeblock")
    if packing:
        raw.update(readme_yaml(repo_root, "axolotl-packing"))
    cfg, trainer = axolotl_preprocess_then_train(raw, workdir)
    assert type(trainer).__name__ == "CodeBlockSparseTrainer" and trainer.codeblock_loss_reduction == "mean_global"
    stats, rows = codeblock_prepare_like(cfg, workdir)
    assert stats["supervision"] == "codeblock"
    assert_trainer_sees_prepare(trainer, stats, rows, packed=packing)


def test_axolotl_excess_tokens_with_reference(repo_root, workdir):
    """Token Cleaning's excess-loss tokens: the reference is trained with `codeblock train` (README YAML), merged,
    and named in the Axolotl YAML; Axolotl's labels are prepare's with that reference."""
    from codeblock.cli import main

    ref = readme_yaml(repo_root, "reference-train")
    (workdir / "reference.yaml").write_text(yaml.safe_dump({**ref, "logging_steps": 1000, "seed": 0}))
    assert main(["train", "--config", "reference.yaml"]) == 0
    merged = workdir / ref["merged_output_dir"]
    assert (merged / "config.json").is_file()
    assert json.loads((workdir / ref["output_dir"] / "train_metrics.json").read_text())["global_step"] == 1

    raw = {**readme_yaml(repo_root, "axolotl-codeblock"), **readme_yaml(repo_root, "axolotl-excess")}
    cfg, trainer = axolotl_preprocess_then_train(raw, workdir)
    stats, rows = codeblock_prepare_like(cfg, workdir)
    assert stats["supervision"] == "excess_tokens"
    assert_trainer_sees_prepare(trainer, stats, rows, packed=False)
    # the reference matters: without it (the base model scoring itself) the excess loss is 0 everywhere
    base_rows = codeblock_prepare_like_with_reference(cfg, workdir, reference=cfg.base_model)
    assert base_rows != rows


def codeblock_prepare_like_with_reference(cfg, workdir, *, reference: str):
    from codeblock.cli.prepare import run_prepare
    from codeblock.integrations.axolotl.args import codeblock_config_from_cfg
    from codeblock.models import resolve_model

    out = workdir / "cb-other-reference"
    shutil.rmtree(out, ignore_errors=True)
    config = codeblock_config_from_cfg(cfg).replace(reference_model=str(reference))
    run_prepare("data/train.jsonl", resolve_model("smollm2-135m-instruct"), out, config, score_cache=None,
                progress=False)
    return [json.loads(line) for line in (out / "train.jsonl").open()]


def test_axolotl_qlora(repo_root, workdir):
    """QLoRA (`adapter: qlora`, `load_in_4bit: true`): the base is NF4 (bitsandbytes 0.50 runs 4-bit on CPU), only
    the adapter trains, and the labels are prepare's."""
    pytest.importorskip("bitsandbytes")
    raw = {**readme_yaml(repo_root, "axolotl-codeblock"), **readme_yaml(repo_root, "axolotl-qlora")}
    cfg, trainer = axolotl_preprocess_then_train(raw, workdir)
    assert any(type(m).__name__ == "Linear4bit" for m in trainer.model.modules())
    trained = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n for n in trained)
    stats, rows = codeblock_prepare_like(cfg, workdir)
    assert_trainer_sees_prepare(trainer, stats, rows, packed=False)
