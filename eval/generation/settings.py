"""What a generation run is (the settings hashed into every sample row), its one error type, and model resolution:
the pieces every backend (HF, vLLM) shares."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from codeblock_eval.generation.samples_io import settings_hash


class GenerationError(ValueError):
    """Generation cannot start (bad model/tokenizer combination, missing chat template, ...)."""


@dataclass(frozen=True)
class GenerationSettings:
    """Everything that changes what a sample *is* (hashed into every row; a resume must match it)."""

    model: str
    adapter: str | None = None
    prompt_style: str = "base"
    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    n_samples: int = 1
    seed: int = 0
    backend: str = "hf"
    dtype: str = "auto"

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def hash(self) -> str:
        # n_samples is left out: asking for more samples later extends a file instead of invalidating it.
        data = self.to_dict()
        data.pop("n_samples")
        return settings_hash(data)


def resolve_model_path(name_or_path: str) -> str:
    """Embedded model names (``qwen2.5-coder-0.5b-instruct``) map to their cached folder; paths/ids pass through."""
    from codeblock.models import resolve_model

    return resolve_model(name_or_path)
