"""Packaging: every package directory is listed in pyproject, every CLI subcommand imports."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from codeblock.cli import SUBCOMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = set()
    for init in (ROOT / "plugin").rglob("__init__.py"):
        found.add(".".join(init.parent.relative_to(ROOT / "plugin").parts))
    for init in (ROOT / "eval").rglob("__init__.py"):
        found.add(".".join(("codeblock_eval",) + init.parent.relative_to(ROOT / "eval").parts))
    assert found <= listed, f"add to pyproject [tool.setuptools] packages: {sorted(found - listed)}"


def test_perf_scripts_are_not_packaged():
    """eval/perf/ holds scripts run as files (bench_*.py): no __init__.py, so setuptools never ships them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert not (ROOT / "eval" / "perf" / "__init__.py").exists()
    assert not any(p.startswith("codeblock_eval.perf") for p in config["tool"]["setuptools"]["packages"])
    assert sorted(p.name for p in (ROOT / "eval" / "perf").glob("bench_*.py"))


def test_python_m_codeblock_eval_cli_runs():  # how the experiment runner calls the harness
    result = subprocess.run([sys.executable, "-m", "codeblock_eval.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "codeblock-eval" in result.stdout, result.stderr


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_subcommand_builds_its_parser(name):
    parser, module = build_parser(name)
    assert callable(module.run)
    assert parser.format_help()


def test_unknown_command_lists_valid_ones(capsys):
    assert main(["frobnicate"]) == 2
    assert "valid commands: analyze" in capsys.readouterr().err


def test_console_script_help_runs():
    result = subprocess.run([sys.executable, "-m", "codeblock.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "analyze" in result.stdout
