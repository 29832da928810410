"""Fixtures of the hygiene tests: one benchmark index per session (built once, cached in a temp dir)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def index_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("decontam-cache")


@pytest.fixture(scope="session")
def bench_index(data_dir, index_cache):
    from codeblock.hygiene.bench_index import load_index

    return load_index("all", data_dir, cache_dir=index_cache, progress=False)
