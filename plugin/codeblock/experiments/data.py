"""Training mixes for experiments: named sources from the data mirror, decontaminated against the benchmarks.

Sources (paths relative to ``--data_dir`` / ``CODEBLOCK_DATA_DIR``, laid out like ``shared/data``):

* ``gpteacher-python``: ``gpteacher-codegen/codegen-instruct-python-subset.jsonl.gz`` (instruction, input, response).
* ``mbpp-train``: the MBPP *training* split, task ids 601-974 of ``mbpp/mbpp.jsonl.gz`` (never the test ids 11-510).
  A row is ``instruction`` = the task text + "Your code should pass these tests:" + the three asserts, ``response`` =
  the reference code in a python fence (CRLF -> LF).

Why an explicit id filter on top of decontamination: EvalPlus's MBPP+ (our ``mbpp`` and ``mbpp+`` benchmarks) draws
108 of its 378 tasks from MBPP ids >= 601, so the "training split" overlaps the test set. Those ids are removed
before decontamination (counted as ``excluded_mbppplus_ids``). Decontamination then runs against all six benchmarks
with :mod:`codeblock.hygiene.decontaminate`; for MBPP it uses the MBPP+ task set, because the index of the full
974-task MBPP file contains the training split itself and would flag every MBPP row.

    >>> mbpp_row({"task_id": 700, "text": "Add.", "code": "def add(a, b):\\r\\n    return a + b",
    ...           "test_list": ["assert add(1, 2) == 3"]})["response"]
    '```python\\ndef add(a, b):\\n    return a + b\\n```'
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from codeblock.hygiene.manifest import sha256_file

SOURCES = {
    "gpteacher-python": "gpteacher-codegen/codegen-instruct-python-subset.jsonl.gz",
    "mbpp-train": "mbpp/mbpp.jsonl.gz",
}
MBPP_TRAIN_IDS = range(601, 975)
MBPP_PLUS_FILE = "mbppplus/MbppPlus-v0.2.0.jsonl.gz"
DECONTAMINATE_AGAINST = ("humaneval", "humanevalplus", "mbppplus", "bigcodebench", "multipl-e")


class MixError(ValueError):
    """A source name, path or option is invalid; the message says what to do."""


def _read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def mbpp_row(task: dict) -> dict:
    tests = "\n".join(task.get("test_list") or [])
    code = str(task["code"]).replace("\r\n", "\n").strip("\n")
    return {
        "instruction": f"{task['text'].strip()}\nYour code should pass these tests:\n\n{tests}",
        "response": f"```python\n{code}\n```",
        "source": "mbpp-train",
        "source_id": f"mbpp/{task['task_id']}",
    }


def mbppplus_ids(data_dir: Path) -> set[int]:
    path = data_dir / MBPP_PLUS_FILE
    if not path.exists():
        raise MixError(f"{path} not found: MBPP+ ids are needed to keep its tasks out of mbpp-train (set --data_dir)")
    return {int(str(r["task_id"]).split("/")[-1]) for r in _read_jsonl(path)}


def load_source(name: str, data_dir: Path) -> tuple[list[dict], dict]:
    """Rows of one named source (plus facts about how they were chosen)."""
    if name not in SOURCES:
        raise MixError(f"unknown training source {name!r}; choose from {', '.join(SOURCES)}")
    path = data_dir / SOURCES[name]
    if not path.exists():
        raise MixError(f"training source {name}: {path} not found (set --data_dir / CODEBLOCK_DATA_DIR)")
    info: dict[str, Any] = {"path": str(SOURCES[name]), "sha256": sha256_file(path)}
    raw = _read_jsonl(path)
    if name == "mbpp-train":
        plus = mbppplus_ids(data_dir)
        train = [t for t in raw if int(t["task_id"]) in MBPP_TRAIN_IDS]
        rows = [mbpp_row(t) for t in train if int(t["task_id"]) not in plus]
        info.update(task_ids="601-974", n_split=len(train), excluded_mbppplus_ids=len(train) - len(rows))
    else:
        rows = []
        for k, r in enumerate(raw):
            row = {key: r[key] for key in ("instruction", "input", "response") if key in r}
            rows.append({**row, "source": name, "source_id": f"{name}/{k}"})
    info["n_rows"] = len(rows)
    return rows, info


def build_training_mix(data_dir: str | Path, sources: list[str], out_path: str | Path, *, decontaminate: bool = True,
                       limit_per_source: int | None = None, progress: bool = True) -> dict:
    """Write ``out_path`` (JSONL, one instruction/response row per line) and return its manifest.

    The row order is: sources in the order given, rows in file order; ``limit_per_source`` keeps the first N rows of
    each source *after* decontamination (so a smoke mix is still clean).
    """
    data_dir = Path(data_dir)
    if not sources:
        raise MixError("an experiment needs at least one training source")
    per_source: dict[str, dict] = {}
    rows: list[dict] = []
    for name in sources:
        src_rows, info = load_source(name, data_dir)
        per_source[name] = info
        rows.extend(src_rows)
    report: list[dict] = []
    decon: dict[str, Any] = {"enabled": decontaminate}
    if decontaminate:
        from codeblock.hygiene.bench_index import load_index
        from codeblock.hygiene.decontaminate import decontaminate_rows

        index = load_index(list(DECONTAMINATE_AGAINST), data_dir, progress=progress)
        before = rows
        rows, report, stats = decontaminate_rows(rows, index, ["instruction", "input", "response"], progress=progress)
        for rec in report:  # name the dropped row by its source, not by its position in the mix
            rec["source_id"] = before[rec["row"]]["source_id"]
        by_source: dict[str, int] = {}
        for rec in report:
            src = before[rec["row"]]["source"]
            by_source[src] = by_source.get(src, 0) + 1
        decon.update(against=list(DECONTAMINATE_AGAINST), dropped_by_source=by_source, **stats)
    if limit_per_source:
        kept, seen = [], {}
        for r in rows:
            seen[r["source"]] = seen.get(r["source"], 0) + 1
            if seen[r["source"]] <= limit_per_source:
                kept.append(r)
        rows = kept
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["source"]] = counts.get(r["source"], 0) + 1
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    if report:
        with open(out.with_name(out.stem + ".contaminated.jsonl"), "w", encoding="utf-8") as fh:
            for rec in report:
                fh.write(json.dumps(rec, sort_keys=True) + "\n")
    return {
        "sources": per_source,
        "decontamination": decon,
        "limit_per_source": limit_per_source,
        "n_rows": len(rows),
        "rows_by_source": counts,
        "output": str(out),
        "sha256": sha256_file(out),
    }
