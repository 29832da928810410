"""Exact and near-duplicate removal (MinHash + LSH), and balanced sampling across languages or sources.

* exact: sha256 of the row text with whitespace collapsed and case folded;
* near: MinHash signatures (``num_perm`` multiply-shift hashes of word ``shingle``-grams, seeded) bucketed by
  LSH bands; candidate pairs whose estimated Jaccard similarity is >= ``threshold`` are merged (union-find) and
  each cluster keeps its first row in input order;
* balance: at most ``cap`` rows per group (a row field such as ``source``, or ``language`` guessed from the
  instruction and code), chosen with a seeded RNG, input order kept.

Same input + config + seed => the same rows kept, byte for byte.

    >>> rows = [{"instruction": "Add two numbers a and b in python please", "output": "return a + b"}] * 2
    >>> kept, report, stats = dedup_rows(rows, ["instruction", "output"], progress=False)
    >>> len(kept), report[0]["reason"]
    (1, 'exact_duplicate')
"""

from __future__ import annotations

import argparse
import hashlib
import re
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass

import numpy as np

from codeblock.hygiene import common
from codeblock.hygiene.normalize import ngram_hashes, text_tokens
from codeblock.hygiene.rows import HygieneInputError, row_text

_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class DedupConfig:
    threshold: float = 0.85
    num_perm: int = 128
    # 16 bands x 8 rows: the LSH S-curve knee is (1/16)**(1/8) ~ 0.71, so a 0.85 pair is a candidate with p ~ 0.99
    bands: int = 16
    shingle: int = 5
    seed: int = 0
    near: bool = True


def exact_key(text: str) -> str:
    return hashlib.sha256(_WS.sub(" ", text).strip().casefold().encode("utf-8")).hexdigest()


class MinHasher:
    """Seeded MinHash over uint64 shingle hashes (multiply-shift family, top 32 bits)."""

    def __init__(self, num_perm: int = 128, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self.b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)

    def signature(self, shingles: np.ndarray) -> np.ndarray:
        if not len(shingles):
            return np.full(len(self.a), np.iinfo(np.uint32).max, dtype=np.uint32)
        with np.errstate(over="ignore"):
            mixed = (self.a[:, None] * shingles[None, :] + self.b[:, None]) >> np.uint64(32)
        return mixed.min(axis=1).astype(np.uint32)


def shingles_of(text: str, k: int) -> np.ndarray:
    words = text_tokens(text)
    return ngram_hashes(words, min(k, len(words))) if words else np.empty(0, np.uint64)


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def dedup_rows(rows: list[dict], fields: list[str], config: DedupConfig = DedupConfig(),
               row_ids: list[int] | None = None, progress: bool = True) -> tuple[list[dict], list[dict], dict]:
    """(kept rows, report of dropped duplicates, stats); the first row of each cluster is kept."""
    from tqdm.auto import tqdm

    if config.num_perm % config.bands:
        raise ValueError(f"num_perm ({config.num_perm}) must be a multiple of bands ({config.bands})")
    row_ids = row_ids if row_ids is not None else list(range(len(rows)))
    texts = [row_text(r, fields) for r in rows]
    parent = list(range(len(rows)))
    reason: dict[int, tuple[str, float]] = {}
    first_of: dict[str, int] = {}
    for i, t in enumerate(texts):
        j = first_of.setdefault(exact_key(t), i)
        if j != i:
            parent[i] = j
            reason[i] = ("exact_duplicate", 1.0)
    n_exact = len(reason)
    n_pairs = 0
    if config.near:
        hasher = MinHasher(config.num_perm, config.seed)
        r = config.num_perm // config.bands
        live = [i for i in range(len(rows)) if i not in reason]
        sigs = {}
        buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
        for i in tqdm(live, desc="minhash", unit="row", disable=None if progress else True):
            sig = hasher.signature(shingles_of(texts[i], config.shingle))
            sigs[i] = sig
            for b in range(config.bands):
                buckets[(b, sig[b * r:(b + 1) * r].tobytes())].append(i)
        seen_pairs: set[tuple[int, int]] = set()
        for members in buckets.values():
            for x in range(1, len(members)):
                for y in range(x):
                    i, j = members[y], members[x]  # i < j: bucket lists are in input order
                    if (i, j) in seen_pairs:
                        continue
                    seen_pairs.add((i, j))
                    sim = float(np.mean(sigs[i] == sigs[j]))
                    if sim >= config.threshold:
                        ri, rj = _find(parent, i), _find(parent, j)
                        if ri != rj:
                            parent[max(ri, rj)] = min(ri, rj)
                        if j not in reason or reason[j][0] != "exact_duplicate":
                            reason[j] = ("near_duplicate", max(sim, reason.get(j, ("", 0.0))[1]))
        n_pairs = len(seen_pairs)
    kept, report = [], []
    for i, row in enumerate(rows):
        root = _find(parent, i)
        if root == i:
            kept.append(row)
        else:
            why, sim = reason.get(i, ("near_duplicate", config.threshold))
            report.append({"row": row_ids[i], "reason": why, "duplicate_of": row_ids[root], "similarity": round(sim, 4)})
    stats = {"n_scanned": len(rows), "n_exact_duplicates": n_exact,
             "n_near_duplicates": len(report) - n_exact, "n_duplicates": len(report),
             "n_candidate_pairs": n_pairs, "n_kept": len(kept)}
    return kept, report, stats


# ---------------------------------------------------------------- balanced sampling
_LANG_NAMES = [("c++", r"c\+\+|cpp"), ("c#", r"c#|csharp"), ("javascript", r"javascript|node\.?js|js"),
               ("typescript", r"typescript"), ("python", r"python"), ("java", r"java"), ("sql", r"sql"),
               ("php", r"php"), ("ruby", r"ruby"), ("go", r"golang|go"), ("rust", r"rust"),
               ("shell", r"bash|shell script|shell"), ("html", r"html|css"), ("swift", r"swift"),
               ("kotlin", r"kotlin"), ("r", r"r")]
_LANG_MENTION = [(name, re.compile(rf"(?<![\w+#])(?:{pat})(?![\w+#])", re.I)) for name, pat in _LANG_NAMES]
_LANG_CODE = [("php", r"<\?php"), ("c++", r"#include\s*<|std::"), ("c#", r"using System;|Console\.Write"),
              ("java", r"public (?:static )?(?:class|void|int)|System\.out\."),
              ("javascript", r"console\.log|function\s+\w+\s*\(|=>\s*\{|const \w+ ="),
              ("python", r"^\s*(?:def|import|from)\s|print\("), ("sql", r"(?i)\bselect\b[\s\S]+\bfrom\b"),
              ("shell", r"^#!/bin/(?:ba)?sh|\becho\s"), ("go", r"package main|func \w+\("), ("rust", r"fn main|let mut")]
_LANG_CODE_RE = [(name, re.compile(p, re.M)) for name, p in _LANG_CODE]


def guess_language(row: dict, fields: list[str]) -> str:
    """Language named in the prompt fields (first mention wins), else a code-pattern guess, else "other"."""
    text = row_text(row, fields)
    prompt = " ".join(str(row.get(k) or "") for k in ("instruction", "prompt", "question"))
    best = None
    for name, rx in _LANG_MENTION:
        m = rx.search(prompt)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), name)
    if best:
        return best[1]
    for name, rx in _LANG_CODE_RE:
        if rx.search(text):
            return name
    return "other"


def group_key(row: dict, by: list[str], fields: list[str]) -> str:
    parts = []
    for name in by:
        value = row.get(name)
        if value is None and name == "language":
            value = guess_language(row, fields)
        parts.append(str(value) if value is not None else "<missing>")
    return "|".join(parts)


def balanced_sample(rows: list[dict], by: list[str], cap: int, fields: list[str], seed: int = 0,
                    row_ids: list[int] | None = None) -> tuple[list[dict], list[dict], dict]:
    """Keep at most ``cap`` rows per group (seeded choice, input order kept)."""
    row_ids = row_ids if row_ids is not None else list(range(len(rows)))
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[group_key(row, by, fields)].append(i)
    rng = np.random.default_rng(seed)
    keep: set[int] = set()
    report = []
    for name in sorted(groups):
        members = groups[name]
        chosen = members if len(members) <= cap else sorted(rng.choice(members, size=cap, replace=False).tolist())
        keep.update(chosen)
        for i in sorted(set(members) - set(chosen)):
            report.append({"row": row_ids[i], "reason": "over_cap", "group": name})
    kept = [row for i, row in enumerate(rows) if i in keep]
    stats = {"groups_before": {k: len(v) for k, v in sorted(groups.items())},
             "groups_after": dict(sorted(Counter(group_key(r, by, fields) for r in kept).items())),
             "n_over_cap": len(report)}
    return kept, report, stats


# ---------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_io_arguments(parser)
    c = DedupConfig()
    parser.add_argument("--threshold", type=float, default=c.threshold, help="estimated Jaccard for near-duplicates")
    parser.add_argument("--num_perm", type=int, default=c.num_perm, help="MinHash permutations")
    parser.add_argument("--bands", type=int, default=c.bands, help="LSH bands (num_perm must be a multiple)")
    parser.add_argument("--shingle", type=int, default=c.shingle, help="word n-gram size of the shingles")
    parser.add_argument("--seed", type=int, default=c.seed)
    parser.add_argument("--exact_only", action="store_true", help="skip MinHash near-duplicate detection")
    parser.add_argument("--balance_by", default=None,
                        help="comma list of row fields to balance on; 'language' is guessed when absent")
    parser.add_argument("--cap", type=int, default=None, help="max rows per --balance_by group")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if (args.balance_by is None) != (args.cap is None):
        return common.usage_error("dedup", "--balance_by and --cap go together")
    if args.cap is not None and args.cap < 1:
        return common.usage_error("dedup", "--cap must be >= 1")
    if not 0.0 < args.threshold <= 1.0:
        return common.usage_error("dedup", "--threshold must be in (0, 1]")
    config = DedupConfig(threshold=args.threshold, num_perm=args.num_perm, bands=args.bands, shingle=args.shingle,
                         seed=args.seed, near=not args.exact_only)
    try:
        prep = common.prepare(args.data, args.fields)
        kept, report, stats = dedup_rows(prep.rows, prep.fields, config, row_ids=prep.index)
    except (HygieneInputError, ValueError) as exc:
        return common.usage_error("dedup", str(exc))
    if args.balance_by:
        by = [b.strip() for b in args.balance_by.split(",") if b.strip()]
        dropped = {r["row"] for r in report}
        ids = [i for i in prep.index if i not in dropped]
        kept, rep2, bstats = balanced_sample(kept, by, args.cap, prep.fields, args.seed, row_ids=ids)
        report += rep2
        stats["balance"] = {"by": by, "cap": args.cap, **bstats}
    report += [dict(s) for s in prep.skips]
    stats = {"n_input": prep.n_input, "n_skipped": len(prep.skips), "skipped_by_reason": common.skip_counts(prep.skips),
             **stats, "n_written": len(kept), "fields": prep.fields}
    cfg = {**asdict(config), "fields": prep.fields, "balance_by": args.balance_by, "cap": args.cap}
    common.write_outputs(args.out, command="dedup", kept=kept, report=report, stats=stats, config=cfg,
                         seeds={"seed": args.seed}, inputs={"data": args.data},
                         extra={"runtime_s": round(time.perf_counter() - started, 2)})
    common.print_summary(f"dedup {args.data}", stats, started)
    return 0
