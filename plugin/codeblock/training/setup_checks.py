"""The setup checks every way into CodeBlock labels shares (``codeblock prepare``, ``codeblock train``, the Axolotl
``type: codeblock`` strategy and plugin), so the paths cannot drift apart:

* :func:`label_setup`: which scoring model scores the rows (``scoring_model``, default the trained model), whether it
  shares the trained model's tokenizer (scores must use the training tokenization), and whether a reference model is
  needed (``excess_*`` utilities, ``supervision: excess_tokens``; :func:`codeblock.selection.policies.needs_reference`);
* :func:`check_prepared_max_length`: a ``codeblock prepare`` folder was built for a sequence length the trainer keeps;
* :func:`label_fingerprint`: every input that changes the labels, for a prepared-dataset cache key (Axolotl).

Errors are :class:`codeblock.config.ConfigError` with the fix in the message.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from codeblock.config import CodeBlockConfig, ConfigError


@dataclass(frozen=True)
class LabelSetup:
    scoring_model: str
    reference_model: str | None  # None when the policy needs no reference


def _vocab(name_or_tokenizer):
    if hasattr(name_or_tokenizer, "get_vocab"):
        return name_or_tokenizer.get_vocab()
    from transformers import AutoTokenizer

    from codeblock.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(str(name_or_tokenizer))).get_vocab()


def label_setup(config: CodeBlockConfig, *, model: str | None, tokenizer=None, check_tokenizer: bool = True) -> LabelSetup:
    """Resolve and check the models that build the labels for training ``model`` (its ``tokenizer`` if loaded).

    ``check_tokenizer=False`` skips loading the scoring model's tokenizer (the caller brings its own scorer)."""
    from codeblock.selection.policies import needs_reference

    scoring = config.scoring_model or model
    if not scoring:
        raise ConfigError("no scoring model: set scoring_model (codeblock_scoring_model in Axolotl, --scoring_model "
                          "on codeblock prepare) or the trained model (base_model / --model)")
    if check_tokenizer and model and str(scoring) != str(model):
        if _vocab(scoring) != _vocab(tokenizer if tokenizer is not None else model):
            raise ConfigError(f"scoring model {scoring!r} has a different tokenizer than the trained model {model!r}; "
                              "scores must use the training tokenization (pick a scoring model of the same family)")
    reference = None
    if needs_reference(config.supervision, config.utility_mode):
        if not config.reference_model:  # CodeBlockConfig validation normally catches this first
            raise ConfigError(f"supervision={config.supervision!r} with utility_mode={config.utility_mode!r} needs "
                              "reference_model")
        reference = config.reference_model
    return LabelSetup(scoring_model=str(scoring), reference_model=reference)


def check_prepared_max_length(built: int | None, trainer_max: int | None, *, where: str, trainer_key: str) -> None:
    """A prepared dataset built for longer rows than the trainer keeps would be truncated or split behind CodeBlock's
    back (labels past the cut lost, budget accounting wrong)."""
    if built and trainer_max and int(built) > int(trainer_max):
        raise ConfigError(f"{where} was prepared with max_seq_length={built} > {trainer_key}={trainer_max}: the "
                          f"trainer would drop or split rows; re-run `codeblock prepare --config FILE.yaml` with "
                          f"`max_seq_length: {trainer_max}` in FILE.yaml, or raise {trainer_key}")


def label_fingerprint(config: CodeBlockConfig, setup: LabelSetup) -> str:
    """sha256 over everything that changes the labels: the resolved CodeBlockConfig (every ``codeblock_*`` key,
    defaults included), the scoring model actually used (the trained model when it is the scorer) and the reference."""
    from codeblock.models import model_fingerprint

    def fp(name):
        if name is None:
            return None
        try:
            return model_fingerprint(name)
        except Exception:  # a hub id or folder the model registry does not know: its name is the best key we have
            return str(name)

    payload = {"config": config.to_dict(), "scoring_model": fp(setup.scoring_model),
               "reference_model": fp(setup.reference_model)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
