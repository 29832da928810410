"""One schema for every CodeBlock knob (method.md §2.0 defaults), shared by `codeblock prepare`, Axolotl and TRL.

Pure: stdlib + PyYAML only. Unknown keys are rejected with a suggestion, values are validated together,
and the resolved config round-trips through YAML/JSON so it can be recorded next to every artifact.

The typed dataclass fields are the one schema: :func:`knobs` describes each (type, default, help, choices), and the
front ends are generated from it: `codeblock prepare`'s knob flags (:mod:`codeblock.cli.prepare`), the Axolotl
``codeblock_*`` keys (:mod:`codeblock.integrations.axolotl.args`), and the ``codeblock:`` mappings of TRL recipes and
experiment arms (:meth:`CodeBlockConfig.from_dict`). Adding a typed field here is all a new knob needs.

    >>> cfg = CodeBlockConfig.from_dict({"budget_ratio": 0.05, "nl_share": 0.0})
    >>> cfg.budget_ratio, cfg.supervise_eos
    (0.05, True)
    >>> CodeBlockConfig.from_yaml(cfg.to_yaml()) == cfg
    True
"""

from __future__ import annotations

import difflib
import functools
import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

CODE_LANGUAGES = ("python", "javascript", "typescript", "java", "c", "cpp", "go", "rust")

CHOICES: dict[str, tuple] = {
    "supervision": ("codeblock", "full", "random_tokens", "gce_tokens", "excess_tokens", "random_items"),
    "pair_selector": ("quality_longtail", "ifd", "kmeans_ifd", "random", "none"),
    "unfenced_policy": ("parse", "nl"),
    "utility_mode": ("gce", "ce", "excess_gce", "excess_ce"),
    "utility_agg": ("mean", "sum", "max", "topk_mean"),
    "bridge_mode": ("betweenness", "articulation"),
    "budget_denominator": ("selected_pairs", "pool"),
    "selection_scope": ("global", "per_example"),
    "granularity": ("statement", "block"),
    "nl_unit": ("token", "word"),
    "loss_reduction": ("mean_supervised", "sum", "mean_global"),
    "template": ("auto", "chat", "plain"),
    "scan_secrets": ("off", "report", "redact", "drop"),
    "scoring_batching": ("row", "padded"),
}

# Knobs added after results were published, at the value that reproduces what ran before they existed. Step
# fingerprints (codeblock.experiments) leave such a knob out while it has this value, so adding a knob never redoes a
# committed step; any other value enters the fingerprint as usual.
FINGERPRINT_NEUTRAL: dict[str, Any] = {"decontaminate": "none", "scan_secrets": "off", "scoring_batching": "padded"}


class ConfigError(ValueError):
    """A config value or key is invalid; the message says which and what to do."""


def _f(default, help_: str, **kw):
    if isinstance(default, (list, dict, tuple)) and not isinstance(default, str):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help_, **kw})
    return field(default=default, metadata={"help": help_, **kw})


@dataclass
class CodeBlockConfig:
    """Every knob of the CodeBlock data pipeline. Defaults follow method.md §2.0 except ``supervise_eos`` (see help)."""

    # --- supervision policy (method.md §3 baselines; see codeblock.selection.policies)
    supervision: str = _f(
        "codeblock",
        "Which tokens get labels: codeblock (items + NL), full (all response tokens of the kept pairs, budget ignored), "
        "random_tokens (B3), gce_tokens (B5: top-B by g_t), excess_tokens (B4: top-B by loss_base - loss_ref, needs "
        "reference_model), random_items (B6: random item priority). Same data, rendering, pair selection and budget.",
    )
    # --- (a) pair selection
    pair_selector: str = _f("quality_longtail", "Pair-level selection: quality_longtail (DS2-style), ifd, kmeans_ifd, random, none.")
    pair_keep_ratio: float = _f(0.40, "Fraction of valid pairs kept by the pair selector (floor(ratio*N)).")
    longtail_k: int = _f(10, "k nearest neighbours for the DS2 long-tail score.")
    embedding: str = _f("tfidf_svd256", "Instruction embedding for long-tail/kmeans: tfidf_svd256 (offline) or a sentence-transformers id.")
    quality_field: str | None = _f(None, "Numeric rating column mapped linearly onto quality levels 0..5 (None: OpenCodeInstruct fields or IFD).")
    # --- (b) structure
    code_languages: tuple[str, ...] = _f(CODE_LANGUAGES, "Languages parsed into coding items; other fences are opaque.")
    default_language: str = _f("python", "Language for untagged fences and unfenced responses.")
    unfenced_policy: str = _f("parse", "parse: an unfenced response that parses cleanly is one code unit; nl: always prose.")
    granularity: str = _f("statement", "statement items (default) or block (adds whole-compound candidates, ablation A10).")
    block_max_tokens: int = _f(32, "Max tokens of a granularity=block candidate.")
    exclude_main_body: bool = _f(False, "Treat main() bodies as boilerplate.")
    max_item_tokens: int = _f(64, "Items with more model tokens are never selectable.")
    min_core_tokens: int = _f(1, "Items need at least this many core-logic model tokens to be selectable.")
    # --- (c,d) scoring
    scoring_model: str | None = _f(None, "Scoring model (name or path); None = the model being trained (--model).")
    reference_model: str | None = _f(None, "Reference model for excess_gce/excess_ce (required by those modes).")
    utility_mode: str = _f("gce", "Token score: gce, ce, excess_gce, excess_ce.")
    gce_q: float = _f(0.7, "GCE q in [0, 1]; q=0 is cross-entropy.")
    utility_agg: str = _f("mean", "Aggregate of token scores over an item's core tokens: mean, sum, max, topk_mean (k=3).")
    scoring_batch_size: int = _f(8, "Sequences per scoring forward pass (rows per cache commit with scoring_batching row).")
    scoring_batching: str = _f("row", "row: every row scored alone, unpadded, so its scores never depend on which rows "
                                      "share its batch, worker or cache state (byte-identical selections); padded: "
                                      "length-sorted padded batches, faster (~4x on CPU) but scores move in the 6th "
                                      "decimal with batch composition. Each has its own score-cache identity.")
    # --- (e) structure rerank
    lambda_reach: float = _f(0.25, "Weight of data-flow reach R in the gated priority.")
    lambda_bridge: float = _f(0.25, "Weight of data-flow bridge B in the gated priority.")
    gate_quantile: float = _f(0.5, "Gate tau: the structure bonus applies only when the utility percentile >= tau.")
    return_edges: bool = _f(True, "Add return -> call-site edges to the def-use graph.")
    bridge_mode: str = _f("betweenness", "Bridge signal: betweenness (max-normalised) or articulation.")
    merge_units: bool = _f(False, "Link code fences of one response into one graph.")
    # --- (f) budget
    budget_ratio: float = _f(0.019, "Global token budget rho: B = floor(rho * T_den) supervised response tokens.")
    budget_denominator: str = _f("selected_pairs", "T_den: response tokens of the kept pairs (selected_pairs) or of all valid pairs (pool).")
    nl_share: float = _f(0.20, "Share eta of B reserved for informative natural-language tokens (0 = code only).")
    selection_scope: str = _f("global", "global (coverage pass + fill pass over the whole set) or per_example quotas.")
    max_example_fraction: float = _f(0.10, "Per-example cap: at most ceil(f*N_e) supervised tokens (seed item exempt).")
    nl_unit: str = _f("token", "NL selection unit: token or word (whole whitespace-delimited words).")
    # --- (h) labels and training
    supervise_eos: bool = _f(
        True,
        "Supervise the end-of-turn/EOS token after each response (counted apart from the budget). Default true so "
        "fine-tuned models learn to stop; method.md's faithful-to-abstract setting is false.",
    )
    keep_eos_only_rows: bool = _f(
        True,
        "With supervise_eos, keep rows whose budget gave no item/NL token: their end-of-turn token is still supervised "
        "(counted as n_eos_only_rows). At rho=1.9% most short responses get no item, so dropping them would leave few rows.",
    )
    max_seq_length: int = _f(2048, "Truncate rendered examples to this many tokens (labels stay aligned).")
    template: str = _f("auto", "auto: the tokenizer's chat template if it has one, else plain; chat; plain.")
    system_prompt: str | None = _f(None, "Optional system message for chat templates (None: the template's own default).")
    loss_reduction: str = _f(
        "mean_supervised",
        "Training loss normalisation (applied by CodeBlock's TRL/Axolotl trainers): mean_supervised = mean over each "
        "micro-batch's supervised tokens, micro-batches averaged; mean_global (alias sum, Token Cleaning's name) = "
        "summed token loss / supervised tokens of the whole accumulated batch (transformers' num_items_in_batch), "
        "recommended with gradient accumulation.",
    )
    packing: bool = _f(False, "Pack examples in training (position ids reset per sample): `codeblock train` turns on "
                              "TRL's packing; in Axolotl use sample_packing; `codeblock prepare` output stays unpacked.")
    # --- input fields
    prompt_field: str | None = _f(None, "Prompt column (None: auto-detect instruction/prompt/messages).")
    input_field: str | None = _f(None, "Optional extra input column appended to the prompt (default auto: 'input').")
    response_field: str | None = _f(None, "Response column (None: auto-detect response/output/completion).")
    messages_field: str = _f("messages", "Chat column: a list of {role, content}; the last assistant turn is the response.")
    # --- hygiene before scoring (codeblock.prepare.hygiene_stage; same detectors and reports as the hygiene commands)
    decontaminate: str = _f("auto", "Drop rows overlapping benchmarks before scoring: auto (all six when the benchmark "
                                    "mirror is found, else a warning), all, none, or a comma list (humaneval,mbpp,...).")
    scan_secrets: str = _f("redact", "Credentials in rows before scoring: redact (default), drop, report (keep rows), off.")
    # --- misc
    seed: int = _f(42, "Seed for every random choice (pair sampling, kmeans, SVD).")

    # ------------------------------------------------------------------ construction
    def __post_init__(self) -> None:
        if isinstance(self.code_languages, str):
            self.code_languages = tuple(s.strip() for s in self.code_languages.split(",") if s.strip())
        self.code_languages = tuple(self.code_languages)
        self.validate()

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, *, prefix: str = "") -> "CodeBlockConfig":
        """Build from a mapping; ``prefix`` strips e.g. ``codeblock_`` (Axolotl keys). Unknown keys raise ConfigError."""
        data = dict(data or {})
        names = cls.field_names()
        kwargs = {}
        for key, value in data.items():
            name = key[len(prefix):] if prefix and key.startswith(prefix) else key
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
                hint = f"; did you mean {prefix + close[0]!r}?" if close else f"; valid keys: {', '.join(names)}"
                raise ConfigError(f"unknown CodeBlock config key {key!r}{hint}")
            kwargs[name] = value
        kwargs = {k: coerce_knob(k, v, key=prefix + k if prefix else k) for k, v in kwargs.items()}
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            if not prefix:
                raise
            raise ConfigError(_prefixed(str(exc), prefix)) from None

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> "CodeBlockConfig":
        import yaml

        text = str(text_or_path)
        path = Path(text)
        if "\n" not in text and path.suffix in (".yaml", ".yml", ".json"):
            if not path.exists():
                raise ConfigError(f"config file not found: {path}")
            text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ConfigError("config YAML must be a mapping of key: value")
        data = data.get("codeblock", data) if isinstance(data.get("codeblock"), dict) else data
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["code_languages"] = list(self.code_languages)
        return data

    def fingerprint_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` for step fingerprints: knobs at their :data:`FINGERPRINT_NEUTRAL` value are left out.

            >>> "scan_secrets" in CodeBlockConfig(scan_secrets="off").fingerprint_dict()
            False
            >>> CodeBlockConfig(scan_secrets="drop").fingerprint_dict()["scan_secrets"]
            'drop'
        """
        return {k: v for k, v in self.to_dict().items() if k not in FINGERPRINT_NEUTRAL or v != FINGERPRINT_NEUTRAL[k]}

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, **changes) -> "CodeBlockConfig":
        return replace(self, **changes)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name}={value!r} is not valid; choose one of: {', '.join(allowed)}")
        _range(self, "pair_keep_ratio", 0.0, 1.0, low_open=True)
        _range(self, "budget_ratio", 0.0, 1.0, low_open=True)
        _range(self, "nl_share", 0.0, 1.0)
        _range(self, "max_example_fraction", 0.0, 1.0, low_open=True)
        _range(self, "gce_q", 0.0, 1.0)
        _range(self, "gate_quantile", 0.0, 1.0)
        for name in ("lambda_reach", "lambda_bridge"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0")
        for name in ("longtail_k", "max_item_tokens", "max_seq_length", "scoring_batch_size", "block_max_tokens"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        if not isinstance(self.decontaminate, str) or not self.decontaminate.strip():
            raise ConfigError(f"decontaminate={self.decontaminate!r}: use auto, all, none or a comma list of benchmarks")
        if self.min_core_tokens < 0:
            raise ConfigError(f"min_core_tokens={self.min_core_tokens} must be >= 0")
        unknown = [lang for lang in self.code_languages if lang not in CODE_LANGUAGES]
        if unknown:
            raise ConfigError(f"code_languages has unsupported {unknown}; supported: {', '.join(CODE_LANGUAGES)}")
        if self.default_language not in self.code_languages:
            raise ConfigError(
                f"default_language={self.default_language!r} must be one of code_languages {list(self.code_languages)}; "
                "add it there or pick another default"
            )
        if self.utility_mode.startswith("excess") and not self.reference_model:
            raise ConfigError(f"utility_mode={self.utility_mode!r} needs reference_model (a fine-tuned reference); set it or use gce/ce")
        if self.supervision == "excess_tokens" and not self.reference_model:
            raise ConfigError("supervision=excess_tokens ranks tokens by loss_base - loss_ref and needs reference_model "
                              "(the fine-tuned reference, method.md §2(d)); set it or pick another supervision")
        if self.selection_scope == "per_example" and self.budget_denominator == "pool":
            raise ConfigError("selection_scope=per_example computes quotas on kept pairs; use budget_denominator=selected_pairs")

    @property
    def effective_q(self) -> float:
        return 0.0 if self.utility_mode in ("ce", "excess_ce") else float(self.gce_q)


def _range(cfg, name, lo, hi, low_open=False):
    value = getattr(cfg, name)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if value > hi or value < lo or (low_open and value == lo):
        bracket = "(" if low_open else "["
        raise ConfigError(f"{name}={value} must be in {bracket}{lo}, {hi}]")


@dataclass(frozen=True)
class Knob:
    """One CodeBlockConfig field as every front end sees it.

    ``type`` is bool, int, float, str or tuple (a list of strings); ``optional``: None is allowed (it means "derive
    it", e.g. ``scoring_model`` None = the model being trained); ``choices``: the allowed strings, if any.
    """

    name: str
    type: type
    optional: bool
    default: Any
    help: str
    choices: tuple | None = None


_KNOB_TYPES = (bool, int, float, str, tuple)


@functools.cache
def knobs() -> tuple[Knob, ...]:
    """The schema of every CodeBlock knob, in field order.

        >>> k = {k.name: k for k in knobs()}
        >>> k["budget_ratio"].type, k["budget_ratio"].default, k["scoring_model"].optional, k["nl_unit"].choices
        (<class 'float'>, 0.019, True, ('token', 'word'))
    """
    hints = typing.get_type_hints(CodeBlockConfig)
    out = []
    for f in fields(CodeBlockConfig):
        kind, optional = _unwrap(hints[f.name])
        if kind not in _KNOB_TYPES:  # a new field needs a type every front end can parse
            raise TypeError(f"CodeBlockConfig.{f.name}: type {hints[f.name]!r} is not one of bool, int, float, str, "
                            "tuple[str, ...] (optionally | None)")
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        out.append(Knob(f.name, kind, optional, default, f.metadata.get("help", ""), CHOICES.get(f.name)))
    return tuple(out)


def _unwrap(annotation) -> tuple[type, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        kind = _unwrap(args[0])[0] if len(args) == 1 else annotation
        return kind, len(args) < len(typing.get_args(annotation))
    if annotation is tuple or origin is tuple:
        return tuple, False
    return annotation, False


def _prefixed(message: str, prefix: str) -> str:
    """``budget_ratio=3 must be ...`` -> ``codeblock_budget_ratio=3 must be ...`` (name the key the user wrote)."""
    head = message.split("=", 1)[0].split(" ", 1)[0]
    return prefix + message if head in CodeBlockConfig.field_names() else message


def coerce_knob(name: str, value: Any, *, key: str | None = None) -> Any:
    """Accept YAML/CLI spellings (strings for numbers/bools, comma lists for tuples); reject wrong types in one line
    naming ``key`` (the spelling the user wrote, default ``name``).

        >>> coerce_knob("supervise_eos", "no"), coerce_knob("code_languages", "python, go")
        (False, ('python', 'go'))
    """
    knob = next((k for k in knobs() if k.name == name), None)
    if knob is None:
        raise ConfigError(f"unknown CodeBlock config key {key or name!r}")
    key = key or name
    if value is None:
        return None
    kind = knob.type
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key} must be true/false, got {value!r}")
    if kind is int:
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be an integer, got {value!r}") from None
    if kind is float:
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if kind is tuple:
        if isinstance(value, str):
            return tuple(s.strip() for s in value.split(",") if s.strip())
        if isinstance(value, (list, tuple)):
            return tuple(str(v) for v in value)
        raise ConfigError(f"{key} must be a list, got {value!r}")
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {value!r}")
    if knob.choices and value not in knob.choices:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(knob.choices)}")
    return value
