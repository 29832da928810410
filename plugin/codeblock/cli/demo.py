"""`codeblock demo` (what `make demo` runs): the pipeline on bundled examples with embedded defaults.

Step 1 (pure CPU, instant): analyze a bundled markdown response and print its coding items with
their reach and bridge. Step 2: when the preparation pipeline is available, run
``prepare`` + ``inspect`` on a bundled sample with the embedded SmolLM2-135M model.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="runs/demo", help="where the pipeline demo writes its outputs")
    parser.add_argument("--structure-only", action="store_true", help="only print the structure table (no model)")


def demo_response() -> str:
    return importlib.resources.files("codeblock").joinpath("data/demo_response.md").read_text(encoding="utf-8")


def structure_table(text: str) -> Table:
    from codeblock.structure.analysis import analyze_response

    analysis = analyze_response(text)
    table = Table(title="Coding items of the bundled response (reach R, bridge B from the data-flow graph)")
    for column, justify in (("id", "right"), ("kind", "left"), ("item", "left"), ("selectable", "left"),
                            ("R", "right"), ("B", "right")):
        table.add_column(column, justify=justify, overflow="fold")
    reach, bridge = analysis.reach(), analysis.bridge()
    for item in analysis.items:
        snippet = text[item.start : item.end].replace("\n", " ")
        selectable = "yes" if item.selectable else f"no ({item.reason})"
        table.add_row(str(item.id), item.kind, escape(snippet[:60]), selectable, f"{reach[item.id]:.2f}", f"{bridge[item.id]:.2f}")
    table.caption = f"{len(analysis.items)} items, {len(analysis.edges)} def-use edges"
    return table


def run(args) -> int:
    console = Console()
    console.print(structure_table(demo_response()))
    if args.structure_only:
        return 0
    try:
        from codeblock.prepare.pipeline import run_demo
    except ImportError as error:  # the pipeline is part of the package; a missing piece is a bug, say so
        console.print(f"[red]pipeline demo unavailable: {error}[/red]")
        return 1
    run_demo(Path(args.out))  # returns the stats dict; failures raise
    return 0
