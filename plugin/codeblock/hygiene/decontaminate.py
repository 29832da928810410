"""Drop training rows that overlap benchmark prompts, canonical solutions or tests.

Three detectors, each reported with the benchmark task it hit and why:

* ``ngram_code`` / ``ngram_text``: a row field shares >= ``min_hits`` distinct code 10-grams (or text
  13-grams) with one benchmark field, covering >= ``min_fraction`` of the shorter of the two. N-grams that
  occur in more than ``max_df`` distinct benchmark problems are boilerplate (``import unittest``,
  ``if __name__ == "__main__":``) and ignored;
* ``prompt_exact``: a benchmark prompt of 8-12 words (MBPP style) occurs verbatim (as words) in the row;
* ``function_ast``: a Python function in the row is the same function as a benchmark solution after
  removing docstrings/comments/annotations/formatting and renaming identifiers canonically.

    $ codeblock decontaminate --data train.jsonl --benchmarks all --output runs/decon

Library use (``prepare`` and the experiment runner)::

    idx = load_index("all", data_dir)
    kept, report, stats = decontaminate_rows(rows, idx, fields=["instruction", "response"])
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from codeblock.hygiene import common
from codeblock.hygiene.bench_index import (BenchIndex, IndexParams, default_cache_dir, default_data_dir, load_index,
                                           resolve_benchmarks)
from codeblock.hygiene.normalize import (code_tokens, function_fingerprints, ngram_hashes, ngram_hashes_range,
                                         text_tokens)
from codeblock.hygiene.rows import HygieneInputError, iter_text_fields

_REASON_RANK = {"function_ast": 0, "ngram_code": 1, "ngram_text": 2, "prompt_exact": 3}
MAX_MATCHES_REPORTED = 10


@dataclass(frozen=True)
class DecontamConfig:
    min_hits: int = 5
    min_fraction: float = 0.6  # of the benchmark field's (non-boilerplate) n-grams
    long_hits: int = 50  # this many shared n-grams flag a row whatever the fraction (long BCB fields)
    max_df: int = 3
    min_field_grams: int = 2
    functions: bool = True
    short_prompts: bool = True


class Matcher:
    """Scans texts against a :class:`BenchIndex` with one :class:`DecontamConfig`."""

    def __init__(self, index: BenchIndex, config: DecontamConfig = DecontamConfig()):
        self.index, self.config = index, config
        n = len(index.entries)
        self.sizes = {k: pi.entry_sizes(n, config.max_df) for k, pi in index.grams.items()}
        self.short_keys = np.array(sorted(index.short), dtype=np.uint64)

    def _gram_matches(self, kind: str, hashes: np.ndarray) -> list[dict]:
        pi = self.index.grams[kind]
        if not len(hashes) or not len(pi.keys):
            return []
        pos = np.searchsorted(pi.keys, hashes)
        pos[pos >= len(pi.keys)] = 0
        hit = pi.keys[pos] == hashes
        hit_pos = pos[hit]
        boiler = pi.df[hit_pos] > self.config.max_df
        counts: dict[int, int] = defaultdict(int)
        for p in hit_pos[~boiler]:
            for e in pi.postings[pi.offsets[p]:pi.offsets[p + 1]]:
                counts[int(e)] += 1
        out = []
        for e, c in counts.items():
            # Coverage of the *benchmark* field: a short training snippet inside a long benchmark test
            # (e.g. the list ['apple', 'banana', 'orange']) is not that test leaking into training.
            size = int(self.sizes[kind][e])
            cov = c / max(size, 1)
            # A benchmark field with fewer than min_hits n-grams (a 14-word MBPP prompt has 2 text 13-grams)
            # still counts when the row covers it, as long as it has at least min_field_grams.
            need = max(min(self.config.min_hits, size), self.config.min_field_grams)
            if (c >= need and cov >= self.config.min_fraction) or c >= self.config.long_hits:
                out.append({"entry": e, "reason": f"ngram_{kind}", "hits": c, "coverage": round(min(cov, 1.0), 4)})
        return out

    def scan_text(self, text: str) -> list[dict]:
        """Matches of one text: [{"benchmark", "task_id", "bench_field", "reason", ...}]."""
        found: list[dict] = []
        words = text_tokens(text)
        found += self._gram_matches("code", ngram_hashes(code_tokens(text), self.index.params.n_code))
        found += self._gram_matches("text", ngram_hashes(words, self.index.params.n_text))
        if self.config.short_prompts and len(self.short_keys):
            hs = ngram_hashes_range(words, self.index.params.short_min, self.index.params.n_text - 1)
            for h in np.unique(hs[np.isin(hs, self.short_keys)]):
                for e in self.index.short[int(h)]:
                    found.append({"entry": e, "reason": "prompt_exact", "hits": 1, "coverage": 1.0})
        out = []
        for f in found:
            ent = self.index.entries[f.pop("entry")]
            out.append({"benchmark": ent["benchmark"], "task_id": ent["task_id"], "bench_field": ent["field"], **f})
        if self.config.functions and "def " in text:
            for fp, name, nodes in function_fingerprints(text, self.index.params.min_fn_nodes):
                for rec in self.index.functions.get(fp, ()):
                    out.append({"benchmark": rec["benchmark"], "task_id": rec["task_id"],
                                "bench_field": "canonical_solution", "reason": "function_ast",
                                "function": name, "bench_function": rec["name"], "nodes": nodes})
        return out

    def scan_row(self, row: dict, fields: list[str]) -> list[dict]:
        """Best match per (benchmark, task_id) over the row's text fields, strongest first."""
        best: dict[tuple[str, str], dict] = {}
        for path, text in iter_text_fields(row, fields):
            for m in self.scan_text(text):
                m["row_field"] = path
                key = (m["benchmark"], m["task_id"])
                rank = (_REASON_RANK[m["reason"]], -m.get("coverage", 1.0))
                if key not in best or rank < (_REASON_RANK[best[key]["reason"]], -best[key].get("coverage", 1.0)):
                    best[key] = m
        return sorted(best.values(), key=lambda m: (_REASON_RANK[m["reason"]], -m.get("coverage", 1.0),
                                                    m["benchmark"], m["task_id"]))


def decontaminate_rows(rows: list[dict], index: BenchIndex, fields: list[str],
                       config: DecontamConfig = DecontamConfig(), row_ids: list[int] | None = None,
                       progress: bool = True) -> tuple[list[dict], list[dict], dict]:
    """Split ``rows`` into (kept rows, report records, stats). ``row_ids`` maps positions to input indices."""
    from tqdm.auto import tqdm

    matcher = Matcher(index, config)
    row_ids = row_ids if row_ids is not None else list(range(len(rows)))
    kept, report = [], []
    by_bench: dict[str, int] = defaultdict(int)
    by_reason: dict[str, int] = defaultdict(int)
    for rid, row in zip(row_ids, tqdm(rows, desc="decontaminate", unit="row", disable=None if progress else True)):
        matches = matcher.scan_row(row, fields)
        if not matches:
            kept.append(row)
            continue
        top = matches[0]
        report.append({"row": rid, "reason": top["reason"], "benchmark": top["benchmark"], "task_id": top["task_id"],
                       "n_matches": len(matches), "matches": matches[:MAX_MATCHES_REPORTED]})
        for b in sorted({m["benchmark"] for m in matches}):
            by_bench[b] += 1
        by_reason[top["reason"]] += 1
    stats = {"n_scanned": len(rows), "n_contaminated": len(report), "n_kept": len(kept),
             "rows_by_benchmark": dict(sorted(by_bench.items())), "rows_by_reason": dict(sorted(by_reason.items()))}
    return kept, report, stats


# ---------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_io_arguments(parser)
    parser.add_argument("--benchmarks", default="all",
                        help="comma list of humaneval,humanevalplus,mbpp,mbppplus,bigcodebench,multipl-e or all")
    parser.add_argument("--data_dir", "--data-dir", default=None,
                        help="offline benchmark mirror (default: $CODEBLOCK_DATA_DIR or ../shared/data)")
    parser.add_argument("--cache_dir", "--cache-dir", default=None,
                        help=f"benchmark index cache (default {default_cache_dir()})")
    parser.add_argument("--no_cache", "--no-cache", action="store_true", help="rebuild the index, do not cache")
    p, c = IndexParams(), DecontamConfig()
    parser.add_argument("--n_code", type=int, default=p.n_code, help="code n-gram length")
    parser.add_argument("--n_text", type=int, default=p.n_text, help="text (word) n-gram length")
    parser.add_argument("--min_hits", type=int, default=c.min_hits, help="min distinct shared n-grams")
    parser.add_argument("--min_fraction", type=float, default=c.min_fraction,
                        help="min shared fraction of the benchmark field's n-grams")
    parser.add_argument("--long_hits", type=int, default=c.long_hits,
                        help="shared n-grams that flag a row whatever the fraction")
    parser.add_argument("--max_df", type=int, default=c.max_df,
                        help="n-grams found in more benchmark problems than this are boilerplate")
    parser.add_argument("--min_fn_nodes", type=int, default=p.min_fn_nodes,
                        help="smallest canonical function (AST nodes) used for exact-function matching")
    parser.add_argument("--no_functions", action="store_true", help="disable exact-function (AST) matching")
    parser.add_argument("--no_short_prompts", action="store_true", help="disable whole short-prompt matching")
    parser.add_argument("--report_only", action="store_true", help="flag rows but keep them all in data.jsonl")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        benchmarks = resolve_benchmarks(args.benchmarks)
        data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
        if data_dir is None or not data_dir.is_dir():
            raise HygieneInputError("benchmark data not found; pass --data_dir or set CODEBLOCK_DATA_DIR")
        params = IndexParams(n_code=args.n_code, n_text=args.n_text, min_fn_nodes=args.min_fn_nodes)
        config = DecontamConfig(min_hits=args.min_hits, min_fraction=args.min_fraction, max_df=args.max_df,
                                long_hits=args.long_hits,
                                functions=not args.no_functions, short_prompts=not args.no_short_prompts)
        prep = common.prepare(args.data, args.fields)
        t0 = time.perf_counter()
        index = load_index(benchmarks, data_dir, params, cache_dir=args.cache_dir, use_cache=not args.no_cache)
        index_s = time.perf_counter() - t0
    except (HygieneInputError, ValueError, FileNotFoundError) as exc:
        return common.usage_error("decontaminate", str(exc))
    kept, report, stats = decontaminate_rows(prep.rows, index, prep.fields, config, row_ids=prep.index)
    if args.report_only:
        kept = prep.rows
    report += [dict(s) for s in prep.skips]
    stats = {"n_input": prep.n_input, "n_skipped": len(prep.skips), "skipped_by_reason": common.skip_counts(prep.skips),
             **stats, "n_written": len(kept), "fields": prep.fields, "benchmarks": benchmarks,
             "index_entries": len(index.entries)}
    # Timings live in the manifest, not stats.json: same inputs must give byte-identical data files.
    timing = {"index_built_now": index.built, "index_seconds": round(index_s, 2),
              "runtime_s": round(time.perf_counter() - started, 2)}
    cfg = {"benchmarks": benchmarks, "fields": prep.fields, "index_params": params.key(), **asdict(config),
           "report_only": args.report_only}
    inputs = {"data": args.data, **{f"benchmark:{k}": str(data_dir / k) for k in index.files}}
    common.write_outputs(args.out, command="decontaminate", kept=kept, report=report, stats=stats, config=cfg,
                         seeds={}, inputs=inputs, extra=timing)
    common.print_summary(f"decontaminate {args.data}", stats, started)
    return 0
