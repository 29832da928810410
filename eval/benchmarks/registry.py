"""Benchmark registry: name -> factory. Constructing a benchmark reads nothing; data loads in ``load_problems``.

    >>> get_benchmark("humaneval").name
    'humaneval'
"""

from __future__ import annotations

import importlib
from typing import Callable

from codeblock_eval.benchmarks.base import Benchmark


def _lazy(module: str, attr: str, **kwargs) -> Callable[[], Benchmark]:
    def make() -> Benchmark:
        return getattr(importlib.import_module(f"codeblock_eval.benchmarks.{module}"), attr)(**kwargs)

    make.__qualname__ = f"{attr}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    return make


BENCHMARKS: dict[str, Callable[[], Benchmark]] = {
    "humaneval": _lazy("humaneval", "HumanEval"),
    "humaneval+": _lazy("humanevalplus", "HumanEvalPlus"),
    "mbpp": _lazy("mbpp", "Mbpp"),
    "mbpp+": _lazy("mbppplus", "MbppPlus"),
    "bigcodebench": _lazy("bigcodebench", "BigCodeBench", split="complete"),
    "bigcodebench-instruct": _lazy("bigcodebench", "BigCodeBench", split="instruct"),
    "multipl-e-cpp": _lazy("multipl_e", "MultiPLE", language="cpp"),
    "multipl-e-java": _lazy("multipl_e", "MultiPLE", language="java"),
    "multipl-e-js": _lazy("multipl_e", "MultiPLE", language="js"),
    "multipl-e-rs": _lazy("multipl_e", "MultiPLE", language="rs"),
}


def list_benchmarks() -> list[str]:
    return list(BENCHMARKS)


def get_benchmark(name: str) -> Benchmark:
    try:
        factory = BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; valid names: {', '.join(BENCHMARKS)}") from None
    return factory()
