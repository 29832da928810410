"""Temporal and grouped train/eval splits for users who train on their own repositories.

* ``--by_date FIELD --cutoff DATE``: rows dated before the cutoff train, rows on/after it evaluate, so the
  evaluation data is strictly newer. Dates: ISO 8601 strings (``2024-05-01``, ``2024-05-01T10:00:00Z``) or
  Unix epoch seconds. A row without a parseable date is a counted skip (it cannot be placed safely).
* ``--by_group FIELD --eval_fraction F --seed N``: whole groups (repository, author, file) go to one side;
  groups are shuffled with the seed and moved to eval until it holds >= F of the rows.

Writes ``train.jsonl`` and ``eval.jsonl`` (instead of ``data.jsonl``), ``report.jsonl`` (skipped rows),
``stats.json`` and ``manifest.json``.

    >>> rows = [{"t": "2023-01-01"}, {"t": "2024-06-01"}]
    >>> train, ev, skips = split_by_date(rows, "t", parse_date("2024-01-01"))
    >>> len(train), len(ev), skips
    (1, 1, [])
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

import numpy as np

from codeblock.hygiene import common
from codeblock.hygiene.rows import HygieneInputError, load_rows


def parse_date(value) -> datetime | None:
    """Timezone-aware datetime from ISO 8601 text or epoch seconds; None when unparseable. Naive => UTC."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def split_by_date(rows: list[dict], field: str, cutoff: datetime, row_ids: list[int] | None = None):
    """(train, eval, skips): train = date < cutoff, eval = date >= cutoff."""
    row_ids = row_ids if row_ids is not None else list(range(len(rows)))
    train, ev, skips = [], [], []
    for rid, row in zip(row_ids, rows):
        dt = parse_date(row.get(field))
        if dt is None:
            skips.append({"row": rid, "reason": "missing_date" if row.get(field) in (None, "") else "bad_date"})
        elif dt < cutoff:
            train.append(row)
        else:
            ev.append(row)
    return train, ev, skips


def split_by_group(rows: list[dict], field: str, eval_fraction: float, seed: int = 0,
                   row_ids: list[int] | None = None):
    """(train, eval, skips, eval_groups): whole groups per side; eval gets >= eval_fraction of the rows."""
    row_ids = row_ids if row_ids is not None else list(range(len(rows)))
    groups: dict[str, list[int]] = {}
    skips = []
    for i, (rid, row) in enumerate(zip(row_ids, rows)):
        value = row.get(field)
        if value is None or isinstance(value, (dict, list)) or value == "":
            skips.append({"row": rid, "reason": "missing_group"})
            continue
        groups.setdefault(str(value), []).append(i)
    names = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(names))
    n_total = sum(len(v) for v in groups.values())
    target = eval_fraction * n_total
    eval_groups: set[str] = set()
    n_eval = 0
    for k in order:
        # Keep at least one group for training: an empty train side is never what the user wants.
        if n_eval >= target or len(eval_groups) == len(names) - 1:
            break
        eval_groups.add(names[k])
        n_eval += len(groups[names[k]])
    eval_idx = {i for g in eval_groups for i in groups[g]}
    placed = {i for v in groups.values() for i in v}
    train = [rows[i] for i in range(len(rows)) if i in placed and i not in eval_idx]
    ev = [rows[i] for i in range(len(rows)) if i in eval_idx]
    return train, ev, skips, sorted(eval_groups)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="rows: .json, .jsonl or .jsonl.gz")
    parser.add_argument("--out", required=True, help="output directory (train.jsonl, eval.jsonl, ...)")
    parser.add_argument("--by-date", "--by_date", dest="by_date", default=None, help="date field (ISO 8601 or epoch)")
    parser.add_argument("--cutoff", default=None, help="rows on/after this date go to eval (ISO 8601)")
    parser.add_argument("--by-group", "--by_group", dest="by_group", default=None, help="group field (e.g. repo)")
    parser.add_argument("--eval-fraction", "--eval_fraction", dest="eval_fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if bool(args.by_date) == bool(args.by_group):
        return common.usage_error("split", "give exactly one of --by_date FIELD or --by_group FIELD")
    cutoff = None
    if args.by_date:
        cutoff = parse_date(args.cutoff) if args.cutoff else None
        if cutoff is None:
            return common.usage_error("split", f"--by_date needs --cutoff as an ISO date, got {args.cutoff!r}")
    elif not 0.0 < args.eval_fraction < 1.0:
        return common.usage_error("split", "--eval_fraction must be in (0, 1)")
    try:
        # Only the date/group field matters here (it may be a number), so no text-field type checks.
        loaded = load_rows(args.data)
    except HygieneInputError as exc:
        return common.usage_error("split", str(exc))
    if not loaded.rows:
        return common.usage_error("split", f"{args.data}: no usable rows ({loaded.skip_counts or 'empty file'})")
    rows, ids, loaded_skips = loaded.rows, loaded.index, loaded.skips
    extra_stats: dict = {}
    if args.by_date:
        train, ev, skips = split_by_date(rows, args.by_date, cutoff, row_ids=ids)
        newest_train = max((parse_date(r[args.by_date]) for r in train), default=None)
        oldest_eval = min((parse_date(r[args.by_date]) for r in ev), default=None)
        extra_stats = {"cutoff": cutoff.isoformat(), "newest_train": newest_train and newest_train.isoformat(),
                       "oldest_eval": oldest_eval and oldest_eval.isoformat()}
    else:
        train, ev, skips, eval_groups = split_by_group(rows, args.by_group, args.eval_fraction, args.seed, row_ids=ids)
        train_groups = {str(r[args.by_group]) for r in train}
        extra_stats = {"n_eval_groups": len(eval_groups), "n_train_groups": len(train_groups),
                       "groups_overlap": len(train_groups & set(eval_groups)), "eval_groups": eval_groups}
    skips = sorted(loaded_skips + skips, key=lambda s: s["row"])
    stats = {"n_input": len(rows) + len(loaded_skips), "n_skipped": len(skips), "skipped_by_reason": common.skip_counts(skips),
             "n_train": len(train), "n_eval": len(ev), **extra_stats}
    cfg = {"by_date": args.by_date, "cutoff": args.cutoff, "by_group": args.by_group,
           "eval_fraction": args.eval_fraction if args.by_group else None}
    common.write_outputs(args.out, command="split", kept=None, report=skips, stats=stats, config=cfg,
                         seeds={"seed": args.seed}, inputs={"data": args.data},
                         extra_files={"train.jsonl": train, "eval.jsonl": ev},
                         extra={"runtime_s": round(time.perf_counter() - started, 2)})
    common.print_summary(f"split {args.data}", stats, started)
    return 0
