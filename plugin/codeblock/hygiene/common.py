"""Shared CLI plumbing of the data hygiene subcommands: load, type-check, write outputs, summarise.

Every data subcommand writes to ``--output DIR``: ``data.jsonl`` (kept rows), ``report.jsonl`` (one line per
flagged or skipped row, ``row`` = 0-based index in the input), ``stats.json`` and ``manifest.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from codeblock.hygiene.manifest import write_manifest
from codeblock.hygiene.rows import HygieneInputError, check_row_types, load_rows, parse_fields, write_json, write_jsonl


@dataclass
class Prepared:
    rows: list[dict]
    index: list[int]  # input position of each row
    fields: list[str]
    skips: list[dict]  # {"row", "reason"} for bad JSON, non-objects, wrong field types
    n_input: int


def add_io_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="training rows: .json, .jsonl(.gz), .parquet or a datasets.save_to_disk folder")
    parser.add_argument("--out", required=True, help="output directory (created)")
    parser.add_argument("--fields", default=None,
                        help="comma-separated text fields to scan (default: auto-detect instruction/input/output, "
                             "instruction/response, prompt/completion, messages, ...)")


def usage_error(prog: str, message: str) -> int:
    print(f"codeblock {prog}: error: {message}", file=sys.stderr)
    return 2


def prepare(path: str, fields_spec: str | None) -> Prepared:
    """Load rows, pick fields and turn wrongly-typed rows into counted skips."""
    loaded = load_rows(path)
    if not loaded.rows:
        raise HygieneInputError(f"{path}: no usable rows ({loaded.skip_counts or 'empty file'})")
    fields = parse_fields(fields_spec, loaded.rows)
    rows, index, skips = [], [], list(loaded.skips)
    for row, i in zip(loaded.rows, loaded.index):
        reason = check_row_types(row, fields)
        if reason:
            skips.append({"row": i, "reason": reason})
        else:
            rows.append(row)
            index.append(i)
    skips.sort(key=lambda s: s["row"])
    n_input = len(loaded.rows) + len(loaded.skips)
    return Prepared(rows=rows, index=index, fields=fields, skips=skips, n_input=n_input)


def skip_counts(skips: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in skips:
        out[s["reason"]] = out.get(s["reason"], 0) + 1
    return dict(sorted(out.items()))


def write_outputs(out: str | Path, *, command: str, kept: list[dict] | None, report: list[dict], stats: dict,
                  config: dict, seeds: dict, inputs: dict[str, str], extra_files: dict[str, list[dict]] | None = None,
                  extra: dict | None = None) -> Path:
    """Write data.jsonl/report.jsonl/stats.json (+ extra jsonl files), then the manifest last."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if kept is not None:
        write_jsonl(out / "data.jsonl", kept)
    for name, records in (extra_files or {}).items():
        write_jsonl(out / name, records)
    write_jsonl(out / "report.jsonl", sorted(report, key=lambda r: (r["row"], r.get("reason", ""))))
    write_json(out / "stats.json", stats)
    return write_manifest(out, config={"command": command, **config}, seeds=seeds, inputs=inputs, extra=extra)


def print_summary(title: str, stats: dict, started: float) -> None:
    """Rich table of the flat numeric counters in ``stats`` (nested dicts are shown one level deep)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=True)
    table.add_column("count")
    table.add_column("value", justify="right")
    for key, value in stats.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, (int, float)):
                    table.add_row(f"{key}.{sub}", f"{v}")
        elif isinstance(value, (int, float)):
            table.add_row(key, f"{value}")
    table.add_row("wall seconds", f"{time.perf_counter() - started:.1f}")
    Console(stderr=True).print(table)
