"""Pure modules import no torch/transformers (checked in a fresh interpreter each)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE_MODULES = [
    "codeblock", "codeblock.cli", "codeblock.structure_types", "codeblock.languages", "codeblock.segment",
    "codeblock.items_python", "codeblock.defuse_python", "codeblock.dataflow", "codeblock.analysis",
    "codeblock.analyze_cmd", "codeblock.items_clike", "codeblock.supervision_policies", "codeblock.prepare_report",
    "codeblock.cpu_memory",
]
OPTIONAL_PURE = [
    # Pure modules owned by other stages: checked when present.
    "codeblock.gce", "codeblock.token_spans", "codeblock.budget_selection", "codeblock.nl_tokens",
    "codeblock.pair_selection", "codeblock.hygiene.decontaminate", "codeblock.hygiene.secrets_scan",
    "codeblock.hygiene.dedup", "codeblock.hygiene.splits", "codeblock.hygiene.manifest",
    "codeblock_eval.sandbox", "codeblock_eval.execution", "codeblock_eval.passk", "codeblock_eval.registry",
    "codeblock_eval.sanitize", "codeblock_eval.compare", "codeblock_eval.samples_io", "codeblock_eval.results",
    "codeblock_eval.cli", "codeblock_eval.generation",
]


def _present(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.parametrize("module", PURE_MODULES + [m for m in OPTIONAL_PURE if _present(m)])
def test_module_does_not_import_torch_or_transformers(module):
    code = (
        "import sys, importlib; importlib.import_module(%r); "
        "heavy = sorted(m for m in ('torch', 'transformers', 'trl', 'axolotl') if m in sys.modules); "
        "print(','.join(heavy))" % module
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"
