"""Pass 2 of ``prepare``: stream the kept rows again and write labels, ``train.jsonl`` rows and selection records.

Rendering is deterministic, so the rows rendered again here are the ones pass 1 scored and selected from
(:mod:`codeblock.prepare.collect`); item records and segments come back from pass 1's spill file, and the global
decisions (selected items and tokens, NL tokens, priorities) from the selection state. Output goes to a sink:
:class:`ListSink` (the library call :func:`codeblock.prepare.pipeline.prepare_dataset`) or :class:`FileSink`
(``codeblock prepare``: ``train.jsonl``, ``selection.jsonl`` and ``dataset/`` written as rows come, never all held).

    >>> sink = ListSink(); sink.row({"input_ids": [1]}); sink.record({"index": 0}); (sink.rows, sink.selection)
    ([{'input_ids': [1]}], [{'index': 0}])
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from codeblock.labels.build import build_labels
from codeblock.prepare.report import selection_record
from codeblock.selection.policies import split_code_nl

COLUMNS = ("input_ids", "attention_mask", "labels", "example_index", "n_response_tokens", "n_supervised")
WRITE_BATCH = 1000  # rows per Arrow record batch: datasets' own save_to_disk batch, so dataset/ is laid out the same


@dataclass
class Decisions:
    """What the global steps decided, by kept-row position ``k``."""

    code_tokens: dict  # k -> selected code (or, token-level, code-split) token indices
    selected_items: dict  # k -> selected item ids, in selection order
    nl_taken: dict  # k -> NL token indices
    pis: list  # percentile rank of every selectable item, in (k, item) order
    priorities: list  # P of every selectable item, same order
    picked: dict | None = None  # token-level: k -> picked token indices (split into code / NL while writing)


class ListSink:
    """Keeps the written rows and records in memory (the library call)."""

    def __init__(self):
        self.rows: list[dict] = []
        self.selection: list[dict] = []

    def row(self, row: dict) -> None:
        self.rows.append(row)

    def record(self, rec: dict) -> None:
        self.selection.append(rec)


class FileSink:
    """Writes ``train.jsonl``, ``selection.jsonl`` and the Arrow rows of ``dataset/`` as they come."""

    def __init__(self, out_dir: str | Path):
        from datasets import Features, List, Value
        from datasets.arrow_writer import ArrowWriter

        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.train = open(self.out / "train.jsonl", "w", encoding="utf-8")
        self.selection_fh = open(self.out / "selection.jsonl", "w", encoding="utf-8")
        # The types Dataset.from_dict infers for these columns (ids int32, mask int8, the rest int64).
        self.features = Features({"input_ids": List(Value("int32")), "attention_mask": List(Value("int8")),
                                  "labels": List(Value("int64")), "example_index": Value("int64"),
                                  "n_response_tokens": Value("int64"), "n_supervised": Value("int64")})
        self.arrow_path = self.out / "dataset.arrow.tmp"
        self.writer = ArrowWriter(features=self.features, path=str(self.arrow_path), writer_batch_size=WRITE_BATCH)
        self.batch: list[dict] = []
        self.digest = hashlib.sha256()
        self.n_rows = 0
        self.rows = self.selection = None  # written, not held

    def row(self, row: dict) -> None:
        line = json.dumps(row, separators=(",", ":")) + "\n"
        self.train.write(line)
        self.digest.update(line.encode())
        self.batch.append(row)
        self.n_rows += 1
        if len(self.batch) == WRITE_BATCH:
            self._flush()

    def record(self, rec: dict) -> None:
        self.selection_fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")

    def _flush(self) -> None:
        if self.batch:
            self.writer.write_batch({c: [r[c] for r in self.batch] for c in COLUMNS})
            self.batch = []

    def abort(self) -> None:
        """The run failed: remove the partial files, so no half-written ``train.jsonl`` passes for a result."""
        self.writer.close()
        for fh in (self.train, self.selection_fh):
            fh.close()
            Path(fh.name).unlink(missing_ok=True)
        self.arrow_path.unlink(missing_ok=True)

    def close(self) -> None:
        """Finish the files and turn the Arrow rows into ``dataset/`` (``save_to_disk`` of a memory-mapped file)."""
        from datasets import Dataset

        self._flush()
        self.writer.finalize()
        self.writer.close()
        self.train.close()
        self.selection_fh.close()
        target = self.out / "dataset"
        if target.exists():
            shutil.rmtree(target)
        if self.n_rows == 0:  # nothing to map; from_dict of empty columns, as before
            ds = Dataset.from_dict({c: [] for c in COLUMNS})
        else:
            ds = Dataset.from_file(str(self.arrow_path))
            # from_file's fingerprint names the file's path; name the content instead, so reruns write the same bytes
            ds._fingerprint = self.digest.hexdigest()[:16]
        ds.save_to_disk(str(target))
        del ds
        self.arrow_path.unlink(missing_ok=True)


@dataclass
class WriteResult:
    n_kept: int = 0
    totals: Counter = field(default_factory=Counter)
    drops: Counter = field(default_factory=Counter)


def write_rows(works: Iterator, spilled: Iterator, decisions: Decisions, config, sink, skip_log, *,
               token_level: bool, keep_render: bool) -> WriteResult:
    """Labels and records of the kept rows: ``works`` (rendered again, in kept order) zipped with pass 1's spill."""
    res = WriteResult()
    sup = config.supervision
    n_sel = 0  # position in the selectable-item order of the priority arrays
    # strict: a second pass that yields fewer or more rows than pass 1 spilled is an error, never a silent truncation
    for k, (w, (items, segments)) in enumerate(zip(works, spilled, strict=True)):
        rd, idx = w.rendered, w.index
        for it in items:
            if it["selectable"]:
                it["pi"], it["P"] = decisions.pis[n_sel], decisions.priorities[n_sel]
                n_sel += 1
        if token_level:
            code_spans = [(s + rd.response_start, e + rd.response_start) for kind, s, e, _ in segments if kind == "code"]
            code, nl = split_code_nl(decisions.picked.get(k, []), idx.offsets, code_spans)
            code_tokens = set(code)
        else:
            code_tokens = decisions.code_tokens.get(k, set())
            nl = decisions.nl_taken.get(k, [])
        chosen = sorted(code_tokens | set(nl))
        eos_ok = config.supervise_eos and rd.eos_index is not None
        record = selection_record(w.example.index, rd, idx, items, segments, decisions.selected_items.get(k, []), nl,
                                  chosen, eos_ok, keep_render)
        eos_only = not chosen and eos_ok and config.keep_eos_only_rows
        if not chosen and not eos_only:
            res.drops["no_supervised_tokens"] += 1
            skip_log.add(w.example.index, "no_supervised_tokens",
                         f"{sup} selected no token" if token_level else "no item or NL token selected")
            record["kept"], record["drop_reason"] = False, "no_supervised_tokens"
            sink.record(record)
            continue
        labels = build_labels(rd.input_ids, chosen, eos_index=rd.eos_index, supervise_eos=config.supervise_eos)
        sink.row({
            "input_ids": list(rd.input_ids),
            "attention_mask": [1] * len(rd.input_ids),
            "labels": labels,
            "example_index": w.example.index,
            "n_response_tokens": idx.n_response,
            "n_supervised": len(chosen),
        })
        sink.record(record)
        res.n_kept += 1
        t = res.totals
        t["response_tokens"] += idx.n_response
        t["supervised_tokens"] += len(chosen)
        t["code_tokens"] += len(code_tokens)
        t["nl_tokens"] += len(nl)
        t["eos_tokens"] += int(eos_ok)
        t["eos_only_rows"] += int(eos_only)
        t["eos_missing"] += int(rd.eos_index is None)
        t["truncated_rows"] += int(rd.truncated)
    return res
