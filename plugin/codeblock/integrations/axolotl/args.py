"""Pydantic mixin for Axolotl's config: every ``codeblock_*`` key, validated by ``CodeBlockConfig`` itself.

Two kinds of keys:

* one ``codeblock_<name>`` per :class:`codeblock.config.CodeBlockConfig` field (``codeblock_budget_ratio``,
  ``codeblock_nl_share``, ...), generated from the dataclass so the two can never drift apart;
* integration keys that only make sense inside a trainer (:data:`INTEGRATION_KEYS`).

``codeblock_supervision`` is a CodeBlockConfig field: ``codeblock`` or a baseline policy (``full``, ``random_tokens``,
``gce_tokens``, ``excess_tokens``, ``random_items``), so a baseline arm is the same YAML with one key changed.

A key left unset (None) means "the CodeBlockConfig default". The ``after`` validator builds the CodeBlockConfig, so a bad
value fails Axolotl's config validation with CodeBlock's own message. Unknown ``codeblock_*`` keys cannot be caught here
(Axolotl drops unknown keys before this model sees them); :mod:`codeblock.integrations.axolotl.plugin` checks the raw config.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, model_validator

from codeblock.config import CodeBlockConfig, ConfigError

PREFIX = "codeblock_"

# name -> (annotation, default, help)
INTEGRATION_KEYS: dict[str, tuple[Any, Any, str]] = {
    "sparse_loss": (bool, True, "Project only supervised positions through the LM head (same loss, less compute)."),
    "sparse_mode": (Literal["auto", "gather", "keep"], "auto",
                    "gather: backbone + per-token gather; keep: logits_to_keep index tensor; auto picks."),
    "score_cache_dir": (str | None, None, "SQLite cache of scoring-model log-probs (resumable preprocessing)."),
}


def config_keys() -> list[str]:
    """Every accepted ``codeblock_*`` key (config fields + integration keys)."""
    return [PREFIX + n for n in CodeBlockConfig.field_names()] + [PREFIX + n for n in INTEGRATION_KEYS]


def codeblock_config_from_cfg(cfg) -> CodeBlockConfig:
    """Build the CodeBlockConfig from an Axolotl cfg (dict-like); unset keys keep CodeBlock defaults.

    ``max_seq_length`` follows Axolotl's ``sequence_len`` unless ``codeblock_max_seq_length`` is set, so CodeBlock and
    Axolotl truncate identically.
    """
    data = {}
    for name in CodeBlockConfig.field_names():
        value = _get(cfg, PREFIX + name)
        if value is not None:
            data[name] = value
    if "max_seq_length" not in data and _get(cfg, "sequence_len"):
        data["max_seq_length"] = int(_get(cfg, "sequence_len"))
    return CodeBlockConfig.from_dict(data)


def _get(cfg, key):
    if isinstance(cfg, dict):
        return cfg.get(key)
    return getattr(cfg, key, None)


def _fields() -> dict[str, tuple[Any, Any]]:
    help_ = CodeBlockConfig.help()
    out: dict[str, tuple[Any, Any]] = {}
    for name in CodeBlockConfig.field_names():
        out[PREFIX + name] = (Any, Field(default=None, json_schema_extra={"description": help_[name]}))
    for name, (ann, default, text) in INTEGRATION_KEYS.items():
        out[PREFIX + name] = (ann, Field(default=default, json_schema_extra={"description": text}))
    return out


class _Base(BaseModel):
    @model_validator(mode="after")
    def _check_codeblock(self):
        try:
            cfg = codeblock_config_from_cfg(self.__dict__)
        except ConfigError as exc:
            raise ValueError(f"CodeBlock: {exc}") from None
        if cfg.packing:
            raise ValueError("CodeBlock: codeblock_packing is the TRL/standalone switch; in Axolotl use "
                             "`sample_packing: true` (labels survive multipack unchanged)")
        return self


CodeBlockArgs = create_model("CodeBlockArgs", __base__=_Base, __module__=__name__, **_fields())
CodeBlockArgs.__doc__ = "Axolotl input-args mixin carrying every codeblock_* key."
