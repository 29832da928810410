"""Experiment YAML: arms, base model, training data, benchmarks, seeds. Pure (stdlib + PyYAML), validated up front.

One file describes a whole comparison; every arm shares the data, the tokenization, the training recipe and the
evaluation, and differs only in its ``supervision`` policy and CodeBlock knobs::

    name: qwen0.5b-cpu
    base_model: qwen2.5-coder-0.5b-instruct
    data: {sources: [gpteacher-python, mbpp-train]}
    benchmarks: [humaneval, humaneval+, mbpp, mbpp+]
    seeds: [42]
    training: {max_steps: 60, learning_rate: 0.0001, ...}     # trl SFTConfig + ModelConfig keys
    arms:
      - {name: base, train: false}
      - {name: full, supervision: full, codeblock: {pair_selector: none}}
      - {name: codeblock}
      - {name: token_cleaning, supervision: excess_tokens}

    >>> cfg = ExperimentConfig.from_dict({"name": "t", "base_model": "m", "data": {"path": "x.jsonl"},
    ...     "benchmarks": ["humaneval"], "arms": [{"name": "full", "supervision": "full"}]})
    >>> cfg.arms[0].sparse_loss, cfg.baseline_arm
    (False, 'full')
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from codeblock.config import CHOICES, CodeBlockConfig, ConfigError

# Keys the runner owns in the training YAML; an experiment that sets them would silently be overridden.
RUNNER_OWNED_TRAINING_KEYS = ("model_name_or_path", "output_dir", "seed", "data_path", "prepared_path", "supervision",
                              "codeblock", "sparse_loss", "merged_output_dir", "metrics_file")
DEFAULT_TRAINING = {
    "use_peft": True, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "lora_target_modules": "all-linear",
    "dtype": "float32", "max_length": 512, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
    "num_train_epochs": 1, "learning_rate": 1e-4, "lr_scheduler_type": "linear", "warmup_steps": 0.03,
    "logging_steps": 1, "save_strategy": "no", "report_to": "none", "bf16": False, "use_cpu": True,
    "gradient_checkpointing": False,
}
DEFAULT_EVAL = {"limit": None, "batch_size": 1, "max_new_tokens": 512, "prompt_style": "base", "parallel": None,
                "timeout_scale": 1.0, "backend": "hf", "dynamic_slots": 0}


def _strict(cls, data: dict, where: str) -> dict:
    names = [f.name for f in fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            raise ConfigError(f"{where}: unknown key {key!r}" + (f"; did you mean {close[0]!r}?" if close else
                                                                 f"; valid keys: {', '.join(names)}"))
    return data


@dataclass
class DataSpec:
    sources: list = field(default_factory=list)  # names in codeblock.experiments.data.SOURCES
    path: str | None = None  # or one ready JSONL/JSON file
    limit_per_source: int | None = None
    decontaminate: bool = True


@dataclass
class ArmSpec:
    name: str
    train: bool = True  # false: evaluate the base model as is (B0)
    supervision: str = "codeblock"
    codeblock: dict = field(default_factory=dict)  # CodeBlockConfig overrides for this arm
    training: dict = field(default_factory=dict)  # training overrides for this arm
    sparse_loss: bool | None = None  # None: on for sparse policies, off for full (what a user of each would run)

    def __post_init__(self):
        if self.sparse_loss is None:
            self.sparse_loss = self.supervision != "full"


@dataclass
class ReferenceSpec:
    """Token Cleaning's reference model: a LoRA warm-up on a seeded subset with full-token labels, then merged."""

    fraction: float = 0.2
    training: dict = field(default_factory=dict)


@dataclass
class ExperimentConfig:
    name: str
    base_model: str
    data: DataSpec
    benchmarks: list
    arms: list
    seeds: list = field(default_factory=lambda: [42])
    codeblock: dict = field(default_factory=dict)  # CodeBlockConfig keys shared by every arm
    training: dict = field(default_factory=dict)
    eval: dict = field(default_factory=dict)
    reference: ReferenceSpec = field(default_factory=ReferenceSpec)
    baseline_arm: str | None = None  # McNemar reference; default: the first arm with supervision full

    @classmethod
    def from_dict(cls, data: dict) -> "ExperimentConfig":
        if not isinstance(data, dict):
            raise ConfigError("experiment config must be a mapping")
        data = dict(_strict(cls, data, "experiment"))
        for key in ("name", "base_model", "data", "benchmarks", "arms"):
            if not data.get(key):
                raise ConfigError(f"experiment: {key!r} is required")
        data["data"] = DataSpec(**_strict(DataSpec, data["data"], "data"))
        data["reference"] = ReferenceSpec(**_strict(ReferenceSpec, data.get("reference") or {}, "reference"))
        arms = []
        for k, arm in enumerate(data["arms"]):
            if not isinstance(arm, dict) or "name" not in arm:
                raise ConfigError(f"arms[{k}] needs a name")
            arms.append(ArmSpec(**_strict(ArmSpec, arm, f"arms[{k}] ({arm['name']})")))
        data["arms"] = arms
        if isinstance(data["benchmarks"], str):
            data["benchmarks"] = [b.strip() for b in data["benchmarks"].split(",") if b.strip()]
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> "ExperimentConfig":
        import yaml

        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"experiment config not found: {p}")
        return cls.from_dict(yaml.safe_load(p.read_text(encoding="utf-8")) or {})

    def validate(self) -> None:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ConfigError(f"arm names must be unique: {names}")
        bad = [n for n in names if not n.replace("-", "").replace("_", "").isalnum()]
        if bad:
            raise ConfigError(f"arm names become folder names: use letters, digits, - and _ only ({bad})")
        if bool(self.data.sources) == bool(self.data.path):
            raise ConfigError("data: set exactly one of sources (named mirror sources) and path (a JSONL file)")
        if not self.seeds or not all(isinstance(s, int) for s in self.seeds):
            raise ConfigError("seeds must be a non-empty list of integers")
        allowed = CHOICES.get("supervision", ("codeblock", "full"))
        for arm in self.arms:
            if arm.supervision not in allowed:
                raise ConfigError(f"arm {arm.name}: supervision {arm.supervision!r}; choose from {', '.join(allowed)}")
            try:  # every arm's knobs validate now against the one schema (CodeBlockConfig), not mid-run
                self.codeblock_config(arm, seed=self.seeds[0])
            except ConfigError as exc:
                raise ConfigError(f"arm {arm.name}: codeblock: {exc}") from None
            owned = sorted(set(arm.training) & set(RUNNER_OWNED_TRAINING_KEYS))
            if owned:
                raise ConfigError(f"arm {arm.name}: training keys {owned} are set by the runner")
        owned = sorted(set(self.training) & set(RUNNER_OWNED_TRAINING_KEYS))
        if owned:
            raise ConfigError(f"training keys {owned} are set by the runner (per arm: supervision, codeblock, sparse_loss)")
        unknown = sorted(set(self.eval) - set(DEFAULT_EVAL))
        if unknown:
            raise ConfigError(f"eval: unknown keys {unknown}; valid: {', '.join(DEFAULT_EVAL)}")
        if not 0 < self.reference.fraction <= 1:
            raise ConfigError("reference.fraction must be in (0, 1]")
        if self.baseline_arm is None:
            self.baseline_arm = next((a.name for a in self.arms if a.supervision == "full" and a.train), names[0])
        elif self.baseline_arm not in names:
            raise ConfigError(f"baseline_arm {self.baseline_arm!r} is not an arm ({names})")

    # ------------------------------------------------------------------ derived settings
    def codeblock_config(self, arm: ArmSpec, *, seed: int, reference_model: str | None = None) -> CodeBlockConfig:
        """The arm's CodeBlockConfig. Token Cleaning's reference model is trained by the runner, so until it exists a
        placeholder stands in (validation only)."""
        # The mix is decontaminated when it is built (experiments.data, MBPP+ task set) and was never secret-scanned:
        # prepare's own hygiene stays off unless the YAML asks for it, so every arm trains on the same rows as before.
        data = {"decontaminate": "none", "scan_secrets": "off", **self.codeblock, **arm.codeblock, "seed": seed,
                "supervision": arm.supervision}
        if arm.supervision == "excess_tokens" and not data.get("reference_model"):
            data["reference_model"] = reference_model or "<reference trained by the experiment runner>"
        return CodeBlockConfig.from_dict(data)

    def training_config(self, arm: ArmSpec | None) -> dict:
        return {**DEFAULT_TRAINING, **self.training, **(arm.training if arm else {})}

    def eval_config(self) -> dict:
        return {**DEFAULT_EVAL, **self.eval}

    def needs_reference(self) -> bool:
        return any(a.train and a.supervision == "excess_tokens" for a in self.arms)

    def to_dict(self) -> dict:
        return asdict(self)


def fingerprint(*parts: Any) -> str:
    """Stable hash of JSON-able step inputs: a step reruns exactly when one of them changed."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
