"""`codeblock prepare`: select pairs and code items under a token budget and write training labels.

    codeblock prepare --data data.jsonl.gz --model smollm2-135m-instruct --output runs/prep [--budget_ratio 0.019]
        [--pair_selector quality_longtail] [--pair_keep_ratio 0.4] [--limit N] [--config cfg.yaml] [--seed 42]
        [--supervision codeblock|full|random_tokens|gce_tokens|excess_tokens|random_items] [--<any knob> VALUE]
        [--decontaminate [BENCHMARKS]] [--scan_secrets off|report|redact|drop] [--num_workers N]

Every CodeBlockConfig knob is a flag (generated from :func:`codeblock.config.knobs`, so a new knob is a new flag);
flags override ``--config``. ``--budget`` and ``--keep_ratio`` are the older short names of two of them.

Writes to ``--output``: ``dataset/`` (HF ``save_to_disk``), ``train.jsonl`` (input_ids, attention_mask, labels),
``selection.jsonl`` (per example: selected character spans with item ids and scores, NL tokens, all items),
``stats.json`` (supervision policy, counts, drops by reason, supervised fraction, budget, resolved config, versions,
input sha256, stage timings, hygiene counts, scoring rows and cache hit rate), ``config.yaml``, ``manifest.json`` and the
hygiene reports (``decontaminate_report.jsonl``, ``secrets_report.jsonl``; :mod:`codeblock.prepare.hygiene_stage`).
``--num_workers N`` or ``accelerate launch`` splits the scoring over processes with byte-identical output
(:mod:`codeblock.prepare.parallel`). The scoring model defaults to ``--model`` itself;
it is only run when the policy needs scores (``supervision: full`` / ``random_tokens`` load no model unless the pair
selector needs IFD).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from codeblock.cli.arguments import add_knob_arguments, knob_overrides
from codeblock.config import CodeBlockConfig, ConfigError
from codeblock.data_io import DataError, load_rows


# Older short flag names of two knobs (kept working; the knob's own name is documented).
KNOB_ALIASES = {"budget_ratio": ("--budget",), "pair_keep_ratio": ("--keep_ratio",)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="JSONL(.gz), JSON or Parquet file, or datasets.save_to_disk folder")
    parser.add_argument("--model", required=True, help="model being trained: embedded name (smollm2-135m-instruct), folder or hub id")
    parser.add_argument("--output", dest="out", required=True, help="output folder")
    parser.add_argument("--limit", type=int, help="use only the first N input rows")
    parser.add_argument("--config", help="YAML with CodeBlockConfig keys (flags override it)")
    parser.add_argument("--score_cache", help="folder of the resumable score cache (default: $CODEBLOCK_CACHE_DIR/scores; 'none' disables)")
    parser.add_argument("--device", help="cpu | cuda (default: cuda when available)")
    parser.add_argument("--no_selection_text", dest="selection_text", action="store_false",
                        help="leave the rendered text out of selection.jsonl (spans and scores only; for results that are "
                             "committed without copying the training data; `codeblock inspect` then has no text to show)")
    parser.add_argument("--decontaminate", nargs="?", const="all", metavar="BENCHMARKS",
                        help="drop rows overlapping benchmarks before scoring: all (the flag alone), none, or a comma "
                             "list (humaneval,humanevalplus,mbpp,mbppplus,bigcodebench,multipl-e). Default auto: all "
                             "six when the benchmark mirror ($CODEBLOCK_DATA_DIR) is found. Report: decontaminate_report.jsonl")
    parser.add_argument("--scan_secrets", dest="scan_secrets", choices=("off", "report", "redact", "drop"),
                        help="credentials in rows before scoring (default redact; report keeps rows). "
                             "Report: secrets_report.jsonl")
    parser.add_argument("--num_workers", type=int, default=1,
                        help="score with N processes on this machine (one per GPU when GPUs are there); the output is "
                             "byte-identical to 1. Under `accelerate launch` the launcher's process count is used")
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


def write_outputs(out_dir: str | Path, prepared, *, config: CodeBlockConfig, extra_stats: dict, data_path=None,
                  reports: dict | None = None) -> dict:
    """Write dataset/, train.jsonl, selection.jsonl, stats.json, config.yaml, the hygiene reports (+ manifest.json).
    Returns stats."""
    from codeblock.prepare.hygiene_stage import REPORT_FILES

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for step, records in (reports or {}).items():  # same records as `codeblock decontaminate` / `scan-secrets`
        with open(out / REPORT_FILES[step], "w", encoding="utf-8") as fh:
            for rec in sorted(records, key=lambda r: (r["row"], r.get("reason", ""))):
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    if prepared.rows is not None:  # else a FileSink wrote train.jsonl, selection.jsonl and dataset/ row by row
        from codeblock.prepare.write import FileSink

        sink = FileSink(out)
        for row in prepared.rows:
            sink.row(row)
        for rec in prepared.selection:
            sink.record(rec)
        sink.close()
    if prepared.pair_scores:  # per pool row: IFD, its two mean CEs, kept — what pair selection decided from
        with open(out / "pair_scores.jsonl", "w", encoding="utf-8") as fh:
            for rec in prepared.pair_scores:
                fh.write(json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n")
    stats = {**prepared.stats, **extra_stats, "config": config.to_dict(), "library_versions": library_versions()}
    (out / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    try:
        from codeblock.hygiene.manifest import write_manifest
    except ImportError:  # manifest module ships with the hygiene area; the stats already carry hashes and versions
        return stats
    inputs = {"data": data_path} if data_path and Path(data_path).exists() else {}
    hygiene = {step: {k: v for k, v in st.items() if k in ("enabled", "why", "policy", "benchmarks", "n_contaminated",
                                                           "rows_by_benchmark", "n_rows_with_secrets", "rows_by_action")}
               for step, st in (stats.get("hygiene") or {}).items()}
    write_manifest(out, config=config.to_dict(), seeds={"seed": config.seed}, inputs=inputs,
                   extra={"stage": "prepare", "supervised_fraction": stats.get("supervised_fraction"), "hygiene": hygiene})
    return stats


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    from codeblock.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(model))


def build_scorers(model: str, config: CodeBlockConfig, tokenizer, *, score_cache="default", device=None,
                  progress=True, check_tokenizer=True):
    """(label setup, scorer, reference scorer or None): the models every prepare process builds the same way."""
    from codeblock.scoring.scorer import Scorer, default_score_cache_dir
    from codeblock.training.setup_checks import label_setup

    setup = label_setup(config, model=model, tokenizer=tokenizer, check_tokenizer=check_tokenizer)  # shared with Axolotl
    cache = None if score_cache in (None, "none") else (default_score_cache_dir() if score_cache == "default" else score_cache)
    scorer = Scorer.for_config(setup.scoring_model, config, cache_dir=cache, device=device, progress=progress)
    reference = None
    if setup.reference_model:  # excess_* utilities and supervision=excess_tokens
        reference = Scorer.for_config(setup.reference_model, config, device=device, progress=progress)
    return setup, scorer, reference


def run_prepare(data, model: str, out_dir, config: CodeBlockConfig, *, limit=None, score_cache="default",
                device=None, progress=True, scorer=None, tokenizer=None, selection_text: bool = True,
                group=None) -> dict:
    """Library form of the command (used by the CLI, the demo and benchmarks). Returns stats.

    ``group``: a connected :class:`codeblock.prepare.parallel.WorkerGroup` (rank 0) to split the scoring over.
    """
    from codeblock.data_io import RowStream, sha256_of_path
    from codeblock.hygiene.row_reader import RowSourceError, source_kind
    from codeblock.prepare.hygiene_stage import hygiene_overlay
    from codeblock.prepare.pipeline import ListRows, prepare_stream
    from codeblock.prepare.write import FileSink
    from codeblock.training.setup_checks import label_setup

    t0 = time.perf_counter()
    if isinstance(data, (str, Path)):  # streamed: read once per pass, never held (prepare.pipeline)
        try:
            source_kind(data)
        except RowSourceError as exc:
            raise DataError(str(exc)) from None
        source = RowStream(data, limit=limit)
        digest = sha256_of_path(data)
    else:  # rows already in memory (a list, a datasets.Dataset)
        rows, list_skips, digest = load_rows(data, limit=limit)
        source = ListRows(rows)
    t1 = time.perf_counter()
    hygiene = hygiene_overlay(source, config, progress=progress)  # before anything is scored
    if isinstance(source, RowStream):
        source.overlay = hygiene.overlay
        read_skips = [source.skips, hygiene.skips]
    else:
        source = ListRows([hygiene.overlay.get(i, r) for i, r in enumerate(source.rows)])
        read_skips = [list_skips, hygiene.skips]
    t2 = time.perf_counter()
    tokenizer = tokenizer or load_tokenizer(model)
    reference = None
    if scorer is None:
        setup, scorer, reference = build_scorers(model, config, tokenizer, score_cache=score_cache, device=device,
                                                 progress=progress and group is None)
    else:
        setup = label_setup(config, model=model, tokenizer=tokenizer, check_tokenizer=False)
    local = {"main": scorer, "reference": reference}
    if group is not None:
        from codeblock.prepare import parallel

        scorer = parallel.ShardedScorer(scorer, group, "main", progress)
        reference = reference and parallel.ShardedScorer(reference, group, "reference", progress)
    ok = False
    sink = FileSink(out_dir)
    try:
        prepared = prepare_stream(source, tokenizer=tokenizer, scorer=scorer, config=config, sink=sink,
                                  progress=progress, reference_scorer=reference, read_skips=read_skips,
                                  keep_render=selection_text)
        sink.close()
        ok = True
    finally:
        if not ok:
            sink.abort()
        if group is not None:
            try:
                workers = parallel.finish(group, local)
            except Exception:
                parallel.abort(group)
                if ok:
                    raise
    forward, cached = getattr(scorer, "n_forward_rows", None), getattr(scorer, "n_cached_rows", None)
    if group is not None:
        forward, cached = sum(workers["forward_rows_by_rank"]), sum(workers["cached_rows_by_rank"])
    extra = {"input": {"path": str(data) if isinstance(data, (str, Path)) else None, "sha256": digest, "limit": limit},
             "model": model, "scoring_model": setup.scoring_model,
             # rows run through the scoring model vs served by the score cache (a resumed or packed run shows 0 here)
             "scoring": {"forward_rows": forward, "cached_rows": cached,
                         "cache_hit_rate": round(cached / (forward + cached), 4) if forward is not None and cached
                         is not None and forward + cached else None,
                         "workers": group.world if group is not None else 1,
                         **({"forward_rows_by_rank": workers["forward_rows_by_rank"]} if group is not None else {})}}
    prepared.stats["timings_s"] = {"read": round(t1 - t0, 4), "hygiene": round(t2 - t1, 4), **prepared.stats["timings_s"]}
    return write_outputs(out_dir, prepared, config=config, extra_stats={**extra, "hygiene": hygiene.stats},
                         data_path=data if isinstance(data, (str, Path)) else None, reports=hygiene.reports)


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
        ("hygiene", _hygiene_line(stats.get("hygiene") or {})),
        ("scoring rows: model / cache (hit rate), workers", _scoring_line(stats.get("scoring") or {})),
        ("time (s) by stage, share", _time_line(stats["timings_s"])),
    ]:
        table.add_row(name, str(value))
    Console(stderr=True).print(table)


def worker_argv(args: argparse.Namespace) -> list[str]:
    """The flags a scoring worker needs to build the same scorers as rank 0 (it reads no data)."""
    argv = ["--data", args.data, "--model", args.model, "--out", args.out, "--quiet"]
    for flag, name in (("--config", "config"), ("--scoring-model", "scoring_model"), ("--score-cache", "score_cache"),
                       ("--device", "device"), ("--supervision", "supervision"), ("--seed", "seed")):
        if getattr(args, name, None) is not None:
            argv += [flag, str(getattr(args, name))]
    return argv


def _hygiene_line(h: dict) -> str:
    d, s = h.get("decontaminate", {}), h.get("scan_secrets", {})
    decon = f"contaminated={d.get('n_contaminated')}" if d.get("enabled") else f"decontaminate off ({d.get('why')})"
    secrets = (f"secrets={s.get('n_rows_with_secrets')} ({s.get('policy')})" if s.get("enabled")
               else "secrets scan off")
    return f"{decon}; {secrets}" if h else "n/a"


def _scoring_line(sc: dict) -> str:
    if sc.get("forward_rows") is None:
        return "n/a"
    rate = sc.get("cache_hit_rate")
    return (f"{sc['forward_rows']} / {sc['cached_rows']} ({'n/a' if rate is None else f'{rate:.0%}'}), "
            f"{sc.get('workers', 1)}")


def _time_line(timings: dict) -> str:
    """Where the time went: every stage with its share of the total, largest first."""
    total = sum(timings.values()) or 1.0
    ranked = sorted(timings.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k}={v:.1f} ({v / total:.0%})" for k, v in ranked if v >= 0.05) or "0"


def run(args: argparse.Namespace) -> int:
    from codeblock.labels.render import RenderError
    from codeblock.models import ModelResolutionError
    from codeblock.prepare import parallel

    group = None
    try:
        config = resolve_config(args)
        if args.limit is not None and args.limit < 1:
            raise ConfigError("--limit must be >= 1")
        if args.num_workers < 1:
            raise ConfigError("--num_workers must be >= 1")
        if not Path(args.data).exists():
            raise DataError(f"--data {args.data}: no such file or folder")
        if args.quiet:
            os.environ.setdefault("TQDM_DISABLE", "1")
        group = parallel.launched_group()  # accelerate launch / torchrun set WORLD_SIZE
        if group is None and args.num_workers > 1:
            group = parallel.start_workers(args.num_workers, worker_argv(args), Path(args.out) / "workers")
        if group is not None:
            parallel.connect(group)
            if not group.is_main:
                _, scorer, reference = build_scorers(args.model, config, load_tokenizer(args.model),
                                                     score_cache=args.score_cache or "default",
                                                     device=group.device(args.device), progress=False)
                return parallel.serve(group, {"main": scorer, "reference": reference})
        stats = run_prepare(args.data, args.model, args.out, config, limit=args.limit,
                            score_cache=args.score_cache or "default",
                            device=group.device(args.device) if group else args.device, progress=not args.quiet,
                            selection_text=args.selection_text, group=group)
    except (ConfigError, DataError, RenderError, ModelResolutionError) as exc:
        if group is not None:
            parallel.abort(group)
        print(f"codeblock prepare: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print_summary(stats, args.out)
    if stats["n_kept"] == 0:
        print("codeblock prepare: error: no row has a supervised token; see stats.json n_dropped", file=sys.stderr)
        return 1
    return 0
