"""`codeblock prepare`: select pairs and code items under a token budget and write training labels.

    codeblock prepare --data data.jsonl.gz --model smollm2-135m-instruct --output runs/prep [--budget_ratio 0.019]
        [--pair_selector quality_longtail] [--pair_keep_ratio 0.4] [--limit N] [--config cfg.yaml] [--seed 42]
        [--supervision codeblock|full|random_tokens|gce_tokens|excess_tokens|random_items] [--<any knob> VALUE]

Every CodeBlockConfig knob is a flag (generated from :func:`codeblock.config.knobs`, so a new knob is a new flag);
flags override ``--config``. ``--budget`` and ``--keep_ratio`` are the older short names of two of them.

Writes to ``--output``: ``dataset/`` (HF ``save_to_disk``), ``train.jsonl`` (input_ids, attention_mask, labels),
``selection.jsonl`` (per example: selected character spans with item ids and scores, NL tokens, all items),
``stats.json`` (supervision policy, counts, drops by reason, supervised fraction, budget, resolved config, versions,
input sha256, stage timings), ``config.yaml`` and ``manifest.json``. The scoring model defaults to ``--model`` itself;
it is only run when the policy needs scores (``supervision: full`` / ``random_tokens`` load no model unless the pair
selector needs IFD).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from codeblock.cli.arguments import add_knob_arguments, knob_overrides
from codeblock.config import CodeBlockConfig, ConfigError
from codeblock.data_io import DataError, load_rows


# Older short flag names of two knobs (kept working; the knob's own name is documented).
KNOB_ALIASES = {"budget_ratio": ("--budget",), "pair_keep_ratio": ("--keep_ratio",)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="JSON/JSONL(.gz) file or datasets.save_to_disk folder")
    parser.add_argument("--model", required=True, help="model being trained: embedded name (smollm2-135m-instruct), folder or hub id")
    parser.add_argument("--output", dest="out", required=True, help="output folder")
    parser.add_argument("--limit", type=int, help="use only the first N input rows")
    parser.add_argument("--config", help="YAML with CodeBlockConfig keys (flags override it)")
    parser.add_argument("--score_cache", help="folder of the resumable score cache (default: $CODEBLOCK_CACHE_DIR/scores; 'none' disables)")
    parser.add_argument("--device", help="cpu | cuda (default: cuda when available)")
    parser.add_argument("--no_selection_text", dest="selection_text", action="store_false",
                        help="leave the rendered text out of selection.jsonl (spans and scores only; for results that are "
                             "committed without copying the training data; `codeblock inspect` then has no text to show)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary table")
    add_knob_arguments(parser.add_argument_group("CodeBlock knobs (CodeBlockConfig; override --config)"),
                       aliases=KNOB_ALIASES)


def resolve_config(args: argparse.Namespace) -> CodeBlockConfig:
    config = CodeBlockConfig.from_yaml(args.config) if getattr(args, "config", None) else CodeBlockConfig()
    overrides = knob_overrides(args)
    return CodeBlockConfig.from_dict({**config.to_dict(), **overrides}) if overrides else config


def library_versions(extra: tuple[str, ...] = ()) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("codeblock-sft", "torch", "transformers", "tokenizers", "datasets", "numpy", "tree-sitter",
                 "tree-sitter-python", "tree-sitter-javascript", "scikit-learn", "networkx", *extra):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def write_outputs(out_dir: str | Path, prepared, *, config: CodeBlockConfig, extra_stats: dict, data_path=None) -> dict:
    """Write dataset/, train.jsonl, selection.jsonl, stats.json, config.yaml (+ manifest.json). Returns stats."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.jsonl", "w", encoding="utf-8") as fh:
        for row in prepared.rows:
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")
    with open(out / "selection.jsonl", "w", encoding="utf-8") as fh:
        for rec in prepared.selection:
            fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
    if prepared.pair_scores:  # per pool row: IFD, its two mean CEs, kept — what pair selection decided from
        with open(out / "pair_scores.jsonl", "w", encoding="utf-8") as fh:
            for rec in prepared.pair_scores:
                fh.write(json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n")
    from datasets import Dataset

    columns = ("input_ids", "attention_mask", "labels", "example_index", "n_response_tokens", "n_supervised")
    ds = Dataset.from_dict({c: [r[c] for r in prepared.rows] for c in columns})
    ds.save_to_disk(str(out / "dataset"))
    stats = {**prepared.stats, **extra_stats, "config": config.to_dict(), "library_versions": library_versions()}
    (out / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    try:
        from codeblock.hygiene.manifest import write_manifest
    except ImportError:  # manifest module ships with the hygiene area; the stats already carry hashes and versions
        return stats
    inputs = {"data": data_path} if data_path and Path(data_path).exists() else {}
    write_manifest(out, config=config.to_dict(), seeds={"seed": config.seed}, inputs=inputs,
                   extra={"stage": "prepare", "supervised_fraction": stats.get("supervised_fraction")})
    return stats


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    from codeblock.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(model))


def run_prepare(data, model: str, out_dir, config: CodeBlockConfig, *, limit=None, score_cache="default",
                device=None, progress=True, scorer=None, tokenizer=None, selection_text: bool = True) -> dict:
    """Library form of the command (used by the CLI, the demo and benchmarks). Returns stats."""
    from codeblock.prepare.pipeline import prepare_dataset
    from codeblock.training.setup_checks import label_setup

    rows, read_skips, digest = load_rows(data, limit=limit)
    tokenizer = tokenizer or load_tokenizer(model)
    setup = label_setup(config, model=model, tokenizer=tokenizer, check_tokenizer=scorer is None)  # shared with Axolotl
    scoring_name = setup.scoring_model
    if scorer is None:
        from codeblock.scoring.scorer import Scorer, default_score_cache_dir

        cache = None if score_cache in (None, "none") else (default_score_cache_dir() if score_cache == "default" else score_cache)
        scorer = Scorer(scoring_name, batch_size=config.scoring_batch_size, cache_dir=cache, device=device, progress=progress)
    reference = None
    if setup.reference_model:  # excess_* utilities and supervision=excess_tokens
        from codeblock.scoring.scorer import Scorer

        reference = Scorer(setup.reference_model, batch_size=config.scoring_batch_size, device=device, progress=progress)
    prepared = prepare_dataset(rows, tokenizer=tokenizer, scorer=scorer, config=config, progress=progress,
                               reference_scorer=reference, read_skips=read_skips, keep_render=selection_text)
    extra = {"input": {"path": str(data) if isinstance(data, (str, Path)) else None, "sha256": digest, "limit": limit},
             "model": model, "scoring_model": scoring_name,
             # rows run through the scoring model vs served by the score cache (a resumed or packed run shows 0 here)
             "scoring": {"forward_rows": getattr(scorer, "n_forward_rows", None),
                         "cached_rows": getattr(scorer, "n_cached_rows", None)}}
    return write_outputs(out_dir, prepared, config=config, extra_stats=extra,
                         data_path=data if isinstance(data, (str, Path)) else None)


def print_summary(stats: dict, out_dir) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"codeblock prepare -> {out_dir}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    b = stats["budget"]
    for name, value in [
        ("supervision", stats.get("supervision", "codeblock")),
        ("input rows", stats["n_input"]),
        ("valid pairs", stats["n_valid"]),
        ("kept by pair selection", stats["n_pair_selected"]),
        ("rows written (EOS-only)", f"{stats['n_kept']} ({stats['n_eos_only_rows']})"),
        ("dropped", ", ".join(f"{k}={v}" for k, v in stats["n_dropped"].items() if v) or "0"),
        ("response tokens (written)", stats["response_tokens"]),
        ("supervised tokens (code + NL)", f"{stats['supervised_tokens']} ({stats['code_tokens']} + {stats['nl_tokens']})"),
        ("supervised fraction", f"{stats['supervised_fraction']:.3%}"),
        ("budget B / T_den", f"{b['B']} / {b['T_selected_pairs'] if b['denominator'] == 'selected_pairs' else b['T_pool']}"),
        ("ratio vs kept pairs / pool", f"{b['ratio_selected_pairs']:.3%} / {b['ratio_pool']:.3%}"),
        ("EOS supervised (apart from B)", stats["eos"]["supervised"]),
        ("selectable / items", f"{'n/a' if stats['items']['n_selectable'] is None else stats['items']['n_selectable']} / "
                               f"{stats['items']['n_items']}"),
        ("time (s) by stage", ", ".join(f"{k}={v:.1f}" for k, v in stats["timings_s"].items())),
    ]:
        table.add_row(name, str(value))
    Console(stderr=True).print(table)


def run(args: argparse.Namespace) -> int:
    from codeblock.labels.render import RenderError
    from codeblock.models import ModelResolutionError

    try:
        config = resolve_config(args)
        if args.limit is not None and args.limit < 1:
            raise ConfigError("--limit must be >= 1")
        if not Path(args.data).exists():
            raise DataError(f"--data {args.data}: no such file or folder")
        if args.quiet:
            os.environ.setdefault("TQDM_DISABLE", "1")
        stats = run_prepare(args.data, args.model, args.out, config, limit=args.limit,
                            score_cache=args.score_cache or "default", device=args.device, progress=not args.quiet,
                            selection_text=args.selection_text)
    except (ConfigError, DataError, RenderError, ModelResolutionError) as exc:
        print(f"codeblock prepare: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print_summary(stats, args.out)
    if stats["n_kept"] == 0:
        print("codeblock prepare: error: no row has a supervised token; see stats.json n_dropped", file=sys.stderr)
        return 1
    return 0
