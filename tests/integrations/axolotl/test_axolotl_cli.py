"""The one real CLI run: `axolotl train` (subprocess) with the embedded SmolLM2-135M, LoRA, `type: codeblock`;
the labels Axolotl trained on equal `codeblock prepare`'s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("axolotl")

from test_axolotl import base_yaml  # noqa: E402


@pytest.mark.slow
def test_axolotl_cli_train_smollm2(chat_jsonl, tmp_path):
    from codeblock.models import resolve_model

    model_dir = resolve_model("smollm2-135m-instruct")
    raw = base_yaml("smollm2-135m-instruct", chat_jsonl, tmp_path, sequence_len=256)
    raw.pop("model_type")
    raw.pop("tokenizer_type")
    cfg_path = tmp_path / "smol.yml"
    cfg_path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "AXOLOTL_DO_NOT_TRACK": "1", "TQDM_DISABLE": "1"}
    proc = subprocess.run([str(Path(sys.executable).parent / "axolotl"), "train", str(cfg_path), "--launcher", "python"],
                          env=env, capture_output=True, text=True, timeout=420, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "codeblock/supervised_fraction" in log, log[-3000:]

    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from codeblock.cli.prepare import run_prepare
    from codeblock.config import CodeBlockConfig
    from codeblock.scoring.scorer import Scorer

    prepared = [p for p in (tmp_path / "prepared").rglob("dataset_info.json")]
    assert prepared, "axolotl did not write its prepared dataset"
    got = sorted((list(r["input_ids"]), list(r["labels"])) for r in load_from_disk(str(prepared[0].parent)))
    tok = AutoTokenizer.from_pretrained(model_dir)
    run_prepare(str(chat_jsonl), model_dir, tmp_path / "cb",
                CodeBlockConfig(pair_selector="none", budget_ratio=0.2, max_seq_length=256), score_cache=None,
                progress=False, tokenizer=tok, scorer=Scorer(model_dir, progress=False))
    want = sorted((r["input_ids"], r["labels"]) for r in map(json.loads, (tmp_path / "cb" / "train.jsonl").open()))
    assert got == want and len(want) > 0
