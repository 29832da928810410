"""Hygiene inside `prepare`: a benchmark solution never reaches the scorer; secrets are redacted, dropped or reported."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from support.prep_helpers import HashScorer

from codeblock.cli.prepare import run_prepare
from codeblock.config import CodeBlockConfig

REPO = Path(__file__).resolve().parents[2]
SECRET = "ghp_" + "a1B2" * 9


class RecordingScorer(HashScorer):
    """HashScorer that keeps every token-id row it was asked to score."""

    def __init__(self):
        super().__init__()
        self.seen: list[list[int]] = []

    def token_logprobs(self, ids_list):
        self.seen.extend(list(map(int, ids)) for ids in ids_list)
        return super().token_logprobs(ids_list)


@pytest.fixture()
def bench_env(data_dir, monkeypatch):
    monkeypatch.setenv("CODEBLOCK_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture()
def rows(bench_env):
    with gzip.open(bench_env / "humaneval" / "HumanEval.jsonl.gz", "rt") as fh:
        task = json.loads(fh.readline())  # HumanEval/0
    sample = [json.loads(line) for line in open(REPO / "plugin/codeblock/data/demo_sample.jsonl")]
    leaked = {"instruction": "Write has_close_elements.",
              "output": f"```python\n{task['prompt']}{task['canonical_solution']}```\n"}
    secret = {"instruction": "Call the API.", "output": f'```python\ntoken = "{SECRET}"\nprint(len(token))\n```\n'}
    return sample[:6] + [leaked] + sample[6:10] + [secret], task


def _run(tmp_path, rows, tokenizer, **cfg):
    scorer = RecordingScorer()
    config = CodeBlockConfig(pair_selector="ifd", pair_keep_ratio=1.0, budget_ratio=0.3, **cfg)
    stats = run_prepare(rows, "tiny", tmp_path, config, scorer=scorer, tokenizer=tokenizer, progress=False)
    return stats, scorer


def test_a_humaneval_solution_is_never_scored_and_is_reported(tmp_path, rows, tiny_tokenizer):
    data, task = rows
    stats, scorer = _run(tmp_path, data, tiny_tokenizer, decontaminate="humaneval", scan_secrets="off")
    solution_line = task["canonical_solution"].strip().splitlines()[0].strip()
    scored = [tiny_tokenizer.decode(ids) for ids in scorer.seen]
    assert scored and not any(solution_line in text for text in scored)  # the row never reached the scorer
    [rec] = [json.loads(line) for line in open(tmp_path / "decontaminate_report.jsonl")]
    assert (rec["row"], rec["benchmark"], rec["task_id"]) == (6, "humaneval", "HumanEval/0")
    assert stats["n_dropped"]["contaminated"] == 1 and 6 not in {r["example_index"] for r in map(json.loads, open(tmp_path / "train.jsonl"))}
    assert stats["hygiene"]["decontaminate"]["n_contaminated"] == 1
    assert stats["n_input"] == stats["n_kept"] + stats["n_dropped_total"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert json.dumps(manifest).count('"n_contaminated": 1') == 1


def test_without_decontamination_the_solution_is_scored(tmp_path, rows, tiny_tokenizer):
    # The control for the test above: the same row does reach the scorer when the step is off.
    data, task = rows
    stats, scorer = _run(tmp_path, data, tiny_tokenizer, decontaminate="none", scan_secrets="off")
    solution_line = task["canonical_solution"].strip().splitlines()[0].strip()
    assert any(solution_line in tiny_tokenizer.decode(ids) for ids in scorer.seen)
    assert stats["hygiene"]["decontaminate"] == {"enabled": False, "why": "decontaminate=none"}


@pytest.mark.parametrize("policy", ["redact", "drop", "report"])
def test_secrets_policies(tmp_path, rows, tiny_tokenizer, policy):
    data, _ = rows
    stats, scorer = _run(tmp_path, data, tiny_tokenizer, decontaminate="none", scan_secrets=policy)
    [rec] = [json.loads(line) for line in open(tmp_path / "secrets_report.jsonl")]
    assert rec["row"] == 11 and rec["rules"] == ["github_token"] and SECRET not in json.dumps(rec)
    scored = "".join(tiny_tokenizer.decode(ids) for ids in scorer.seen)
    assert (SECRET in scored) == (policy == "report")  # redacted and dropped secrets never reach the scorer
    assert stats["hygiene"]["scan_secrets"]["rows_by_action"] == {
        "redact": {"redacted": 1}, "drop": {"dropped": 1}, "report": {"reported": 1}}[policy]
    assert stats["n_dropped"].get("secret", 0) == (policy == "drop")
    if policy == "redact":
        assert "<REDACTED:github_token>" in scored


def test_explicit_benchmarks_without_the_mirror_is_a_clear_error(tmp_path, rows, tiny_tokenizer, monkeypatch):
    from codeblock.config import ConfigError
    from codeblock.hygiene import bench_index

    monkeypatch.setattr(bench_index, "default_data_dir", lambda: None)
    with pytest.raises(ConfigError, match="CODEBLOCK_DATA_DIR"):
        _run(tmp_path, rows[0], tiny_tokenizer, decontaminate="humaneval")
    stats, _ = _run(tmp_path, rows[0], tiny_tokenizer, decontaminate="auto", scan_secrets="off")
    assert stats["hygiene"]["decontaminate"]["enabled"] is False and "CODEBLOCK_DATA_DIR" in stats["hygiene"]["decontaminate"]["why"]


def test_the_same_keys_reach_axolotl_and_yaml_configs():
    from codeblock.config import ConfigError
    from codeblock.integrations.axolotl.args import codeblock_config_from_cfg, config_keys

    assert {"codeblock_decontaminate", "codeblock_scan_secrets"} <= set(config_keys())
    cfg = codeblock_config_from_cfg({"codeblock_decontaminate": "humaneval,mbpp", "codeblock_scan_secrets": "drop"})
    assert (cfg.decontaminate, cfg.scan_secrets) == ("humaneval,mbpp", "drop")
    assert CodeBlockConfig().to_dict()["decontaminate"] == "auto" and CodeBlockConfig().scan_secrets == "redact"
    with pytest.raises(ConfigError, match="scan_secrets"):
        CodeBlockConfig.from_dict({"scan_secrets": "maybe"})
