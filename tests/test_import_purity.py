"""Pure modules import no torch/transformers (checked in a fresh interpreter each)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE_MODULES = [
    "codeblock", "codeblock.cli", "codeblock.cli.analyze", "codeblock.cli.demo",
    # structure
    "codeblock.structure.datatypes", "codeblock.structure.languages", "codeblock.structure.segment",
    "codeblock.structure.dataflow", "codeblock.structure.analysis", "codeblock.structure.python.items",
    "codeblock.structure.python.facts", "codeblock.structure.python.defuse", "codeblock.structure.clike.items",
    "codeblock.structure.clike.walk", "codeblock.structure.clike.handlers",
    # later stages and foundations
    "codeblock.selection.policies", "codeblock.prepare.report", "codeblock.prepare.hygiene_stage",
    "codeblock.hygiene.row_reader", "codeblock.training.cpu_memory",
    "codeblock.training.supervised", "codeblock.integrations.axolotl.strategy", "codeblock.models",
    "codeblock.models.registry", "codeblock.models.resolve", "codeblock.models.load",
]
OPTIONAL_PURE = [
    # Pure modules owned by other stages: checked when present.
    "codeblock.scoring.gce", "codeblock.labels.token_spans", "codeblock.selection.budget", "codeblock.selection.nl_tokens",
    "codeblock.selection.pairs", "codeblock.hygiene.decontaminate", "codeblock.hygiene.secrets_scan",
    "codeblock.hygiene.dedup", "codeblock.hygiene.splits", "codeblock.hygiene.manifest",
    "codeblock_eval.execution.sandbox", "codeblock_eval.execution.evaluate", "codeblock_eval.execution.passk",
    "codeblock_eval.benchmarks.registry", "codeblock_eval.generation.sanitize", "codeblock_eval.report.compare",
    "codeblock_eval.generation.samples_io", "codeblock_eval.report.results", "codeblock_eval.cli",
    "codeblock_eval.arguments", "codeblock_eval.generation", "codeblock_eval.generation.prompts",
    "codeblock_eval.generation.hf_backend",
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
