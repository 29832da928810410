"""codeblock.training.setup_checks: the one set of setup checks `codeblock prepare`, `codeblock train` and the Axolotl
plugin share (scoring tokenizer, reference need, prepared max length, label fingerprint)."""

from __future__ import annotations

import pytest

from codeblock.config import CodeBlockConfig, ConfigError
from codeblock.training.setup_checks import check_prepared_max_length, label_fingerprint, label_setup


def test_scoring_model_defaults_to_the_trained_model(tiny_model_dir):
    setup = label_setup(CodeBlockConfig(), model=str(tiny_model_dir))
    assert setup.scoring_model == str(tiny_model_dir) and setup.reference_model is None


def test_scoring_model_with_another_tokenizer_is_refused(tiny_model_dir, smollm2_dir):
    with pytest.raises(ConfigError, match="different tokenizer"):
        label_setup(CodeBlockConfig(scoring_model=str(smollm2_dir)), model=str(tiny_model_dir))


@pytest.mark.parametrize("over, needed", [
    ({"utility_mode": "excess_gce", "reference_model": "ref"}, True),
    ({"supervision": "excess_tokens", "reference_model": "ref"}, True),
    ({"supervision": "full", "utility_mode": "excess_gce", "reference_model": "ref"}, False),  # full scores nothing
    ({"reference_model": "ref"}, False),
])
def test_reference_model_only_where_the_policy_scores_with_it(tiny_model_dir, over, needed):
    setup = label_setup(CodeBlockConfig(**over), model=str(tiny_model_dir))
    assert (setup.reference_model == "ref") is needed


def test_run_prepare_uses_the_shared_check(tiny_model_dir, smollm2_dir, chat_jsonl, tmp_path):
    from codeblock.cli.prepare import run_prepare

    with pytest.raises(ConfigError, match="different tokenizer"):
        run_prepare(str(chat_jsonl), str(tiny_model_dir), tmp_path / "out",
                    CodeBlockConfig(scoring_model=str(smollm2_dir)), score_cache=None, progress=False)


def test_prepared_max_length_message_names_real_flags():
    check_prepared_max_length(512, 512, where="p", trainer_key="sequence_len")
    check_prepared_max_length(None, 512, where="p", trainer_key="sequence_len")
    with pytest.raises(ConfigError, match=r"codeblock prepare --config FILE.yaml.*max_seq_length: 256"):
        check_prepared_max_length(1024, 256, where="p", trainer_key="sequence_len")


def test_fingerprint_covers_config_scorer_and_reference(tiny_model_dir, tmp_path):
    base = CodeBlockConfig()
    s = label_setup(base, model=str(tiny_model_dir))
    fps = {
        label_fingerprint(base, s),
        label_fingerprint(base.replace(budget_ratio=0.1), s),
        label_fingerprint(base, s.__class__(scoring_model="hub/other", reference_model=None)),
        label_fingerprint(base, s.__class__(scoring_model=s.scoring_model, reference_model="hub/ref")),
    }
    assert len(fps) == 4
