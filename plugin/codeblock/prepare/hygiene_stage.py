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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeblock.config import CodeBlockConfig, ConfigError
from codeblock.data_io import _SKIPPED, SkipLog

LOG = logging.getLogger("codeblock.prepare")
REPORT_FILES = {"decontaminate": "decontaminate_report.jsonl", "scan_secrets": "secrets_report.jsonl"}


@dataclass
class HygieneResult:
    stats: dict = field(default_factory=dict)  # per step: the standalone command's stats (+ enabled, benchmarks)
    reports: dict = field(default_factory=dict)  # per step: the standalone command's report records
    skips: SkipLog = field(default_factory=SkipLog)


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
    from codeblock.hygiene.rows import detect_fields

    result = HygieneResult()
    rows = list(rows)
    live = [i for i, r in enumerate(rows) if r is not _SKIPPED and isinstance(r, dict)]
    configured = [f for f in (config.messages_field, config.prompt_field, config.input_field, config.response_field) if f]
    fields = list(dict.fromkeys(detect_fields([rows[i] for i in live]) + configured))

    benchmarks, data_dir, off = resolve_decontaminate(config.decontaminate)
    if off:
        if config.decontaminate.strip().lower() == "auto":
            LOG.warning("codeblock prepare: decontamination skipped: %s", off)
        result.stats["decontaminate"] = {"enabled": False, "why": off}
    else:
        from codeblock.hygiene.bench_index import load_index
        from codeblock.hygiene.decontaminate import decontaminate_rows

        index = load_index(benchmarks, data_dir, progress=progress)
        _, report, stats = decontaminate_rows([rows[i] for i in live], index, fields, row_ids=live, progress=progress)
        for rec in report:
            rows[rec["row"]] = _SKIPPED
            result.skips.add(rec["row"], "contaminated", f"{rec['benchmark']} {rec['task_id']} ({rec['reason']})")
        live = [i for i in live if rows[i] is not _SKIPPED]  # a contaminated row is not scanned, scored or kept
        result.stats["decontaminate"] = {"enabled": True, "benchmarks": benchmarks, "fields": fields,
                                         "index_entries": len(index.entries), **stats}
        result.reports["decontaminate"] = report

    policy = config.scan_secrets
    if policy == "off":
        result.stats["scan_secrets"] = {"enabled": False, "why": "scan_secrets=off"}
    else:
        from codeblock.hygiene.secrets_scan import scan_rows

        run_policy = "drop" if policy == "report" else policy
        kept, report, stats = scan_rows([rows[i] for i in live], fields, policy=run_policy, row_ids=live,
                                        progress=progress)
        if policy == "report":  # flag only: every row stays as it was
            for rec in report:
                rec["action"] = "reported"
            stats["rows_by_action"] = {"reported": len(report)} if report else {}
            stats["n_kept"] = len(live)
        else:  # scan_rows keeps redacted copies and clean rows, in order; dropped and unscannable rows are gone
            gone = {rec["row"]: rec.get("action", rec["reason"]) for rec in report if rec.get("action") != "redacted"}
            for i, row in zip([i for i in live if i not in gone], kept):
                rows[i] = row
            for i, why in sorted(gone.items()):
                rows[i] = _SKIPPED
                result.skips.add(i, "secret", f"{why} (see {REPORT_FILES['scan_secrets']})")
        result.stats["scan_secrets"] = {"enabled": True, "policy": policy, "fields": fields, **stats}
        result.reports["scan_secrets"] = report
    return rows, result

