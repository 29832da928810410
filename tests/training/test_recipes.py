"""Every recipe loads and validates with the real validators (Axolotl's config schema + plugin; TRL's SFTConfig)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
AXOLOTL = sorted((RECIPES / "axolotl").glob("*.yml"))
TRL = sorted((RECIPES / "trl").glob("*.yaml"))


def test_recipes_exist_in_twins():
    assert len(AXOLOTL) == 6 and len(TRL) == 6
    for files in (AXOLOTL, TRL):
        for f in files:
            first = f.read_text().splitlines()[:6]
            assert any("Launch" in line for line in first) and any("VRAM" in line or "memory" in line for line in first), f
            if f.stem.endswith("_codeblock"):
                twin = f.with_name(f.name.replace("_codeblock", "_full"))
                a = {k: v for k, v in yaml.safe_load(f.read_text()).items()}
                b = {k: v for k, v in yaml.safe_load(twin.read_text()).items()}
                differ = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
                assert differ <= {"codeblock_supervision", "codeblock_sparse_loss", "supervision", "sparse_loss",
                                  "output_dir", "dataset_prepared_path"}, (f, differ)


@pytest.mark.parametrize("path", AXOLOTL, ids=lambda p: p.name)
def test_axolotl_recipe_validates(path):
    pytest.importorskip("axolotl")
    from axolotl.integrations import base
    from axolotl.utils.config import prepare_plugins, validate_config
    from axolotl.utils.data import shared
    from axolotl.utils.dict import DictDefault

    saved = shared.DATASET_HASH_CONFIG_EXTRA_FIELDS
    base.PluginManager._instance = None
    try:
        cfg = DictDefault(yaml.safe_load(path.read_text()))
        prepare_plugins(cfg)
        out = validate_config(cfg)
        assert out.codeblock_supervision in ("codeblock", "full")
        assert out.codeblock_budget_ratio == 0.019
        assert out.codeblock_loss_reduction == "mean_global"  # gradient accumulation: one mean over the window
    finally:
        base.PluginManager._instance = None
        shared.DATASET_HASH_CONFIG_EXTRA_FIELDS = saved


@pytest.mark.parametrize("path", TRL, ids=lambda p: p.name)
def test_trl_recipe_parses(path):
    pytest.importorskip("trl")
    spec = importlib.util.spec_from_file_location("sft_codeblock", RECIPES / "trl" / "sft_codeblock.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need their module registered
    spec.loader.exec_module(mod)
    argv = ["--config", str(path)]
    raw = yaml.safe_load(path.read_text())
    import torch

    if raw.get("bf16") and not torch.cuda.is_available():
        # GPU recipe on a CPU machine: TrainingArguments itself refuses bf16 without a GPU; validate everything else.
        argv += ["--bf16", "false"]
    script, sft, model = mod.parse(argv)
    assert script.supervision in ("codeblock", "full")
    assert script.codeblock == {"budget_ratio": 0.019, "loss_reduction": "mean_global"}
    assert sft.output_dir and model.model_name_or_path
    if "qlora" in path.name:
        assert model.load_in_4bit and model.use_peft
    else:
        assert sft.bf16 is False and sft.use_cpu
