"""Resumed runs re-derive kept samples from their raw output: a sanitizer fix reaches samples generated before it."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

from codeblock_eval.generation import build_prompt, refresh_samples

PROBLEM = SimpleNamespace(task_id="Mbpp/2", prompt='"""\nWrite similar_elements.\n"""\n', entry_point="similar_elements",
                          stop_sequences=["\nassert", '\n"""'], language="python")
RAW = "def similar_elements(a, b):\n    return set(a) & set(b)\n````\n"


def _row(solution: str, prompt: str) -> dict:
    return {"task_id": PROBLEM.task_id, "sample_index": 0, "prompt_style": "base", "raw": RAW, "completion": RAW,
            "solution": solution, "settings_hash": "h", "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest()[:16]}


def test_stale_solutions_are_rederived_and_the_file_rewritten(tmp_path):
    path = tmp_path / "samples.jsonl"
    prompt = build_prompt(PROBLEM, "base")
    other = _row("", "another prompt") | {"sample_index": 1}  # made from another prompt: left as it is
    path.write_text(json.dumps(_row("", prompt)) + "\n" + json.dumps(other) + "\n")
    assert refresh_samples([PROBLEM], path, "base") == 1
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0]["solution"] == "def similar_elements(a, b):\n    return set(a) & set(b)\n"
    assert rows[0]["raw"] == RAW and rows[1] == other
    before = path.read_bytes()
    assert refresh_samples([PROBLEM], path, "base") == 0 and path.read_bytes() == before
