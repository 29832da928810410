"""Pydantic mixin for Axolotl's config: every ``codeblock_*`` key, validated by ``CodeBlockConfig`` itself.

Two kinds of keys:

* one ``codeblock_<name>`` per :class:`codeblock.config.CodeBlockConfig` field (``codeblock_budget_ratio``,
  ``codeblock_nl_share``, ...), generated from the dataclass so the two can never drift apart;
* integration keys that only make sense inside a trainer (:data:`INTEGRATION_KEYS`).

``codeblock_supervision`` is a CodeBlockConfig field: ``codeblock`` or a baseline policy (``full``, ``random_tokens``,
``gce_tokens``, ``excess_tokens``, ``random_items``), so a baseline arm is the same YAML with one key changed.

Each generated key carries the field's type (``Literal`` of its choices where it has some), its CodeBlockConfig default
and help (as the pydantic description), and parses values with CodeBlock's own :func:`codeblock.config.coerce_knob`, so
YAML spellings accepted by ``codeblock prepare --config`` (``code_languages: python, go``) work here too and an
ill-typed value fails with one line naming the key (``codeblock_budget_ratio must be a number, got 'abc'``). Exception:
``codeblock_max_seq_length`` defaults to None (= follow ``sequence_len``). The ``after`` validator builds the
CodeBlockConfig, so cross-field errors use CodeBlock's messages too. Unknown ``codeblock_*`` keys cannot be caught here
(Axolotl drops unknown keys before this model sees them): :func:`check_codeblock_keys` checks them, and every value, on
the raw YAML in the plugin's ``register`` hook, before Axolotl's validation, so users see that one line first.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, create_model, model_validator

from codeblock.config import CodeBlockConfig, ConfigError, Knob, coerce_knob, knobs

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
    return CodeBlockConfig.from_dict({PREFIX + k: v for k, v in data.items()}, prefix=PREFIX)


def _get(cfg, key):
    if isinstance(cfg, dict):
        return cfg.get(key)
    return getattr(cfg, key, None)


def check_codeblock_keys(cfg) -> CodeBlockConfig:
    """Raw-YAML check (the plugin's ``register`` hook): unknown ``codeblock_*`` keys (Axolotl would drop them silently)
    and every knob's type and range, each as one ``ConfigError`` line naming the key. Returns the CodeBlockConfig."""
    known = set(config_keys())
    for key in list(cfg.keys()):
        if key.startswith(PREFIX) and key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(known))}"
            raise ConfigError(f"unknown CodeBlock key {key!r}{hint}")
    return codeblock_config_from_cfg(cfg)


# Knobs whose Axolotl default is None because the plugin derives them from Axolotl's own keys.
DERIVED_FROM_AXOLOTL = {"max_seq_length": "sequence_len"}


def knob_field(knob: Knob) -> tuple[Any, Any]:
    """(annotation, FieldInfo) of the ``codeblock_<name>`` key for one CodeBlockConfig knob."""
    kind = Literal[knob.choices] if knob.choices else (list[str] if knob.type is tuple else knob.type)
    key = PREFIX + knob.name

    def parse(value, _name=knob.name, _key=key):
        value = coerce_knob(_name, value, key=_key)  # ConfigError is a ValueError: pydantic reports it on this key
        return list(value) if isinstance(value, tuple) else value

    default = None if knob.name in DERIVED_FROM_AXOLOTL else knob.default
    text = knob.help
    if knob.name in DERIVED_FROM_AXOLOTL:
        text += f" Unset: follows `{DERIVED_FROM_AXOLOTL[knob.name]}`."
    return (Annotated[kind | None, BeforeValidator(parse)],
            Field(default=list(default) if isinstance(default, tuple) else default, description=text))


def _fields() -> dict[str, tuple[Any, Any]]:
    out: dict[str, tuple[Any, Any]] = {PREFIX + knob.name: knob_field(knob) for knob in knobs()}
    for name, (ann, default, text) in INTEGRATION_KEYS.items():
        out[PREFIX + name] = (ann, Field(default=default, description=text))
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
