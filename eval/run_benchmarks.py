#!/usr/bin/env python
"""Entry point for ``python eval/run_benchmarks.py ...`` from a checkout; same flags as ``codeblock-eval``.

Run as a script, Python puts ``eval/`` itself first on ``sys.path``, which would make our modules importable under
bare names (``results``, ``compare``, ...) next to the real package. We drop that entry and import the package
``codeblock_eval``; when the project is not installed, the package is registered from this folder directly.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _import_cli():
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
    try:
        from codeblock_eval import cli
    except ModuleNotFoundError as exc:
        if exc.name != "codeblock_eval":
            raise
        spec = importlib.util.spec_from_file_location(
            "codeblock_eval", _HERE / "__init__.py", submodule_search_locations=[str(_HERE)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["codeblock_eval"] = module
        spec.loader.exec_module(module)
        plugin = _HERE.parent / "plugin"
        if plugin.is_dir() and str(plugin) not in sys.path:
            sys.path.append(str(plugin))  # `codeblock` (embedded model names) from the same checkout
        from codeblock_eval import cli
    return cli


if __name__ == "__main__":
    sys.exit(_import_cli().main())
