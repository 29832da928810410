"""Shared fixtures and markers.

* ``data_dir``: the offline benchmark/training mirror (``CODEBLOCK_DATA_DIR`` or ``../shared/data``).
  Missing data skips locally but FAILS under CI (``CI=true``): CI always has it.
* ``@pytest.mark.gpu`` tests skip cleanly when CUDA is unavailable.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Prepare-family fixtures (tiny tokenizer/model, stub scorer, SmolLM2) for every folder; the training-family
# folders override tiny_model_dir with their own (see support/training_fixtures.py).
from support.prepare_fixtures import *  # noqa: E402,F401,F403  (fixtures)

REPO_ROOT = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("CODEBLOCK_DATA_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = _data_dir()
    if not (path / "humaneval" / "HumanEval.jsonl.gz").exists():
        message = f"offline data mirror not found at {path} (set CODEBLOCK_DATA_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # torch missing or broken: no GPU either way
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs CUDA (no GPU on this machine)")
        for item in gpu_items:
            item.add_marker(skip)
