"""CodeBlockConfig: defaults table, YAML round trip, unknown keys, cross-field validation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from codeblock.config import CodeBlockConfig, ConfigError

METHOD_DEFAULTS = {
    "pair_selector": "quality_longtail", "pair_keep_ratio": 0.40, "longtail_k": 10, "embedding": "tfidf_svd256",
    "default_language": "python", "unfenced_policy": "parse", "max_item_tokens": 64, "min_core_tokens": 1,
    "utility_mode": "gce", "gce_q": 0.7, "utility_agg": "mean", "lambda_reach": 0.25, "lambda_bridge": 0.25,
    "gate_quantile": 0.5, "return_edges": True, "bridge_mode": "betweenness", "budget_ratio": 0.019,
    "budget_denominator": "selected_pairs", "nl_share": 0.20, "selection_scope": "global",
    "max_example_fraction": 0.10, "max_seq_length": 2048, "loss_reduction": "mean_supervised", "seed": 42,
}


def test_defaults_follow_method_table_except_eos():
    cfg = CodeBlockConfig()
    for key, value in METHOD_DEFAULTS.items():
        assert getattr(cfg, key) == value, key
    assert cfg.code_languages == ("python", "javascript", "typescript", "java", "c", "cpp", "go", "rust")
    assert cfg.supervise_eos is True  # the override of method.md (see the field help)
    assert all(h for h in CodeBlockConfig.help().values())


def test_yaml_round_trip(tmp_path):
    cfg = CodeBlockConfig(budget_ratio=0.05, code_languages=("python", "go"), nl_unit="word")
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert CodeBlockConfig.from_yaml(path) == cfg
    assert CodeBlockConfig.from_yaml("codeblock:\n  budget_ratio: 0.05\n").budget_ratio == 0.05


def test_unknown_key_suggests():
    with pytest.raises(ConfigError, match="did you mean 'budget_ratio'"):
        CodeBlockConfig.from_dict({"budget_ration": 0.1})
    with pytest.raises(ConfigError, match="did you mean 'codeblock_nl_share'"):
        CodeBlockConfig.from_dict({"codeblock_nl_shares": 0.1}, prefix="codeblock_")
    assert CodeBlockConfig.from_dict({"codeblock_nl_share": 0.0}, prefix="codeblock_").nl_share == 0.0


@pytest.mark.parametrize("bad, match", [
    ({"budget_ratio": 0}, "budget_ratio"),
    ({"budget_ratio": 1.5}, "budget_ratio"),
    ({"nl_share": -0.1}, "nl_share"),
    ({"pair_selector": "best"}, "choose one of"),
    ({"utility_mode": "excess_gce"}, "reference_model"),
    ({"default_language": "go", "code_languages": ["python"]}, "default_language"),
    ({"code_languages": ["cobol", "python"]}, "unsupported"),
    ({"selection_scope": "per_example", "budget_denominator": "pool"}, "per_example"),
    ({"max_seq_length": "many"}, "integer"),
    ({"supervise_eos": "maybe"}, "true/false"),
    ({"lambda_reach": -1}, "lambda_reach"),
])
def test_invalid_values_are_actionable(bad, match):
    with pytest.raises(ConfigError, match=match):
        CodeBlockConfig.from_dict(bad)


def test_string_spellings_are_coerced():
    cfg = CodeBlockConfig.from_dict({"budget_ratio": "0.02", "supervise_eos": "false", "code_languages": "python, go", "max_item_tokens": 32.0})
    assert cfg.budget_ratio == 0.02 and cfg.supervise_eos is False and cfg.code_languages == ("python", "go") and cfg.max_item_tokens == 32


def test_pure_modules_do_not_import_torch():
    mods = "codeblock.config, codeblock.labels.token_spans, codeblock.selection.budget, codeblock.selection.nl_tokens, codeblock.labels.build, codeblock.data_io"
    code = f"import sys; import {mods}; bad = [m for m in ('torch', 'transformers') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
