"""Hygiene inside ``prepare``: decontamination and the secrets scan run on the raw rows, before anything is scored.

The detectors and report records are the hygiene commands' own (:func:`codeblock.hygiene.decontaminate.
decontaminate_rows`, :func:`codeblock.hygiene.secrets_scan.scan_rows`); only the plumbing is here. A flagged row keeps
its input index: it becomes a counted skip (``contaminated`` / ``secret``) that the pipeline never renders, selects or
scores, so ``n_input == n_kept + n_dropped_total`` still holds and ``example_index`` still names input rows.

    config.decontaminate  auto | all | none | humaneval,mbpp,...   (auto: all six when the benchmark mirror is found)
    config.scan_secrets   redact | drop | report | off

    >>> from codeblock.config import CodeBlockConfig
    >>> from codeblock.data_io import SkipLog
    >>> rows = [{"instruction": "Add.", "output": 'key = "AKIA' + 'ABCDEFGHIJKLMNOP"'}]
    >>> cfg = CodeBlockConfig(decontaminate="none", scan_secrets="drop")
    >>> kept, result = apply_hygiene(rows, cfg, SkipLog(), progress=False)
    >>> result.stats["scan_secrets"]["rows_by_action"], result.skips.counts["secret"]
    ({'dropped': 1}, 1)

Pure: no torch (the hygiene modules are pure).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from codeblock.config import CodeBlockConfig, ConfigError
from codeblock.data_io import _SKIPPED, SkipLog

LOG = logging.getLogger("codeblock.prepare")
REPORT_FILES = {"decontaminate": "decontaminate_report.jsonl", "scan_secrets": "secrets_report.jsonl"}
CHUNK_ROWS = 1024  # rows checked together; the input is streamed, never held


@dataclass
class HygieneResult:
    stats: dict = field(default_factory=dict)  # per step: the standalone command's stats (+ enabled, benchmarks)
    reports: dict = field(default_factory=dict)  # per step: the standalone command's report records
    skips: SkipLog = field(default_factory=SkipLog)
    overlay: dict = field(default_factory=dict)  # row index -> redacted copy, or the drop placeholder


def resolve_decontaminate(spec: str) -> tuple[list[str], Path | None, str | None]:
    """(benchmarks, data dir, why it is off). ``auto`` without a benchmark mirror is off, with a reason."""
    from codeblock.hygiene.bench_index import default_data_dir, resolve_benchmarks

    spec = spec.strip().lower()
    if spec in ("none", "off", "false", "no"):
        return [], None, "decontaminate=none"
    try:
        benchmarks = resolve_benchmarks("all" if spec == "auto" else spec)
    except ValueError as exc:
        raise ConfigError(f"decontaminate: {exc}") from None
    data_dir = default_data_dir()
    if data_dir is None or not data_dir.is_dir():
        if spec == "auto":
            return [], None, "no benchmark mirror found (set CODEBLOCK_DATA_DIR)"
        raise ConfigError(f"decontaminate={spec} needs the benchmark data: set CODEBLOCK_DATA_DIR to the mirror, or "
                          "pass --decontaminate none")
    return benchmarks, data_dir, None


def apply_hygiene(rows: list[Any], config: CodeBlockConfig, skips: SkipLog, *, progress: bool = True
                  ) -> tuple[list[Any], HygieneResult]:
    """Rows with flagged ones replaced by placeholders (dropped) or redacted copies, and what was done.

    ``skips`` (the reader's) is not modified; the result's ``skips`` holds the new counted skips.
    """
    rows = list(rows)
    result = hygiene_overlay(list(enumerate(rows)), config, progress=progress)
    for i, row in result.overlay.items():
        rows[i] = row
    return rows, result


def hygiene_overlay(pairs: Iterable[tuple[int, Any]], config: CodeBlockConfig, *, progress: bool = True
                    ) -> HygieneResult:
    """One streaming pass over ``(index, raw row)`` pairs (re-iterable): the result's ``overlay`` maps each flagged
    row's index to its redacted copy, or to the drop placeholder. Rows are checked in chunks of CHUNK_ROWS with the
    hygiene commands' own functions (each row is judged alone), so the reports, stats and skips equal one call over
    every row."""
    from tqdm.auto import tqdm

    from codeblock.hygiene.rows import detect_fields

    result = HygieneResult()
    configured = [f for f in (config.messages_field, config.prompt_field, config.input_field, config.response_field) if f]
    benchmarks, data_dir, off = resolve_decontaminate(config.decontaminate)
    policy = config.scan_secrets
    if off:
        if config.decontaminate.strip().lower() == "auto":
            LOG.warning("codeblock prepare: decontamination skipped: %s", off)
        result.stats["decontaminate"] = {"enabled": False, "why": off}
    if policy == "off":
        result.stats["scan_secrets"] = {"enabled": False, "why": "scan_secrets=off"}
    if off and policy == "off":
        return result  # nothing to read
    sample = []  # detect_fields looks at the first 200 rows
    for _, row in pairs:
        if row is not _SKIPPED and isinstance(row, dict):
            sample.append(row)
            if len(sample) == 200:
                break
    fields = list(dict.fromkeys(detect_fields(sample) + configured))
    del sample

    index = None
    if not off:
        from codeblock.hygiene.bench_index import load_index

        index = load_index(benchmarks, data_dir, progress=progress)
    decon: dict = {"report": [], "stats": {}}
    scan: dict = {"report": [], "stats": {}}
    n_live = 0
    live = ((i, r) for i, r in pairs if r is not _SKIPPED and isinstance(r, dict))
    for chunk in _chunks(tqdm(live, desc="hygiene", unit="row", disable=None if progress else True)):
        ids, rows = [i for i, _ in chunk], [r for _, r in chunk]
        if index is not None:
            from codeblock.hygiene.decontaminate import decontaminate_rows

            _, report, stats = decontaminate_rows(rows, index, fields, row_ids=ids, progress=False)
            _merge(decon, report, stats)
            gone = {rec["row"] for rec in report}  # a contaminated row is not scanned, scored or kept
            for rec in report:
                result.overlay[rec["row"]] = _SKIPPED
            ids, rows = [i for i in ids if i not in gone], [r for i, r in zip(ids, rows) if i not in gone]
        n_live += len(ids)
        if policy != "off":
            _scan_chunk(ids, rows, fields, policy, scan, result.overlay)
    if index is not None:
        for rec in decon["report"]:
            result.skips.add(rec["row"], "contaminated", f"{rec['benchmark']} {rec['task_id']} ({rec['reason']})")
        result.stats["decontaminate"] = {"enabled": True, "benchmarks": benchmarks, "fields": fields,
                                         "index_entries": len(index.entries), **_finish(decon["stats"])}
        result.reports["decontaminate"] = decon["report"]
    if policy != "off":
        stats = _finish(scan["stats"])
        if policy == "report":  # flag only: every row stays as it was
            stats["rows_by_action"] = {"reported": len(scan["report"])} if scan["report"] else {}
            stats["n_kept"] = n_live
        else:
            gone = {rec["row"]: rec.get("action", rec["reason"]) for rec in scan["report"] if rec.get("action") != "redacted"}
            for i, why in sorted(gone.items()):
                result.skips.add(i, "secret", f"{why} (see {REPORT_FILES['scan_secrets']})")
        result.stats["scan_secrets"] = {"enabled": True, "policy": policy, "fields": fields, **stats}
        result.reports["scan_secrets"] = scan["report"]
    return result


def _scan_chunk(ids: list[int], rows: list[dict], fields: list[str], policy: str, acc: dict, overlay: dict) -> None:
    from codeblock.hygiene.secrets_scan import scan_rows

    kept, report, stats = scan_rows(rows, fields, policy="drop" if policy == "report" else policy, row_ids=ids,
                                    progress=False)
    if policy == "report":
        for rec in report:
            rec["action"] = "reported"
    else:  # scan_rows keeps redacted copies and clean rows, in order; dropped and unscannable rows are gone
        gone = {rec["row"] for rec in report if rec.get("action") != "redacted"}
        redacted = {rec["row"] for rec in report if rec.get("action") == "redacted"}
        for i, row in zip([i for i in ids if i not in gone], kept):
            if i in redacted:
                overlay[i] = row
        for i in gone:
            overlay[i] = _SKIPPED
    _merge(acc, report, stats)


def _chunks(pairs) -> Iterator[list]:
    """Lists of CHUNK_ROWS pairs; one empty list for no rows (the steps still report their zero counts)."""
    part, any_yielded = [], False
    for pair in pairs:
        part.append(pair)
        if len(part) == CHUNK_ROWS:
            yield part
            part, any_yielded = [], True
    if part or not any_yielded:
        yield part


def _merge(acc: dict, report: list[dict], stats: dict) -> None:
    """Add one chunk's report and stats (counts summed, per-key count tables added)."""
    acc["report"].extend(report)
    for key, value in stats.items():
        if isinstance(value, dict):
            acc["stats"].setdefault(key, Counter()).update(value)
        else:
            acc["stats"][key] = acc["stats"].get(key, 0) + value


def _finish(stats: dict) -> dict:
    return {k: dict(sorted(v.items())) if isinstance(v, Counter) else v for k, v in stats.items()}
