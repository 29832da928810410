"""`codeblock demo` (what `make demo` runs): the pipeline on bundled examples with embedded defaults.

Step 1 (pure CPU, instant): analyze a bundled markdown response and print its coding items with
their reach and bridge. Step 2 (:func:`run_demo`): ``prepare`` + ``inspect`` on a bundled sample with the
embedded SmolLM2-135M model.
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


DEMO_SAMPLE = "data/demo_sample.jsonl"


def run_demo(out_dir, *, model: str = "smollm2-135m-instruct", budget_ratio: float = 0.10, progress: bool = True) -> dict:
    """prepare + inspect on the bundled sample (13 Python/JS pairs) with SmolLM2; prints a rich summary table.

    The demo keeps every pair (``pair_selector=none``) and uses a 10% budget: at the paper's 1.9% a dozen short
    examples would leave only a handful of supervised tokens to look at. Returns the stats dict.
    """
    from codeblock.cli.prepare import print_summary, run_prepare
    from codeblock.config import CodeBlockConfig
    from codeblock.prepare.inspect_html import build_html

    out = Path(out_dir)
    data = Path(str(importlib.resources.files("codeblock").joinpath(DEMO_SAMPLE)))
    config = CodeBlockConfig(pair_selector="none", budget_ratio=budget_ratio)
    stats = run_prepare(data, model, out, config, score_cache="none", progress=progress)
    (out / "inspect.html").write_text(build_html(out, n=20), encoding="utf-8")
    print_summary(stats, out)
    print(f"inspect: {out / 'inspect.html'}")
    return stats


def run(args) -> int:
    console = Console()
    console.print(structure_table(demo_response()))
    if args.structure_only:
        return 0
    try:
        import codeblock.prepare.pipeline  # noqa: F401
    except ImportError as error:  # the pipeline is part of the package; a missing piece is a bug, say so
        console.print(f"[red]pipeline demo unavailable: {error}[/red]")
        return 1
    run_demo(Path(args.out))  # returns the stats dict; failures raise
    return 0
