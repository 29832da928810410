"""The two-pass `prepare` (issue 16): bounded row state, outputs byte-identical to the one-pass pipeline it replaced.

The golden hashes were printed by the one-pass pipeline (main before the two-pass change) on the rows and configs
below, with the tiny tokenizer and HashScorer; the two-pass code must reproduce them, whatever its chunk sizes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import weakref
from pathlib import Path

import pytest
from support.prep_helpers import HashScorer

import codeblock.prepare.collect as collect_mod
import codeblock.prepare.hygiene_stage as hygiene_mod
import codeblock.prepare.pipeline as pipeline_mod
from codeblock.cli.prepare import run_prepare
from codeblock.config import CodeBlockConfig
from codeblock.data_io import RowStream, SkipLog
from codeblock.prepare.hygiene_stage import apply_hygiene
from codeblock.prepare.pipeline import ListRows, prepare_dataset
from codeblock_eval.perf.bench_prepare_memory import synthetic_row  # the benchmark's rows, so test and bench agree

REPO = Path(__file__).resolve().parents[2]


def rows() -> list:
    demo = [json.loads(line) for line in open(REPO / "plugin/codeblock/data/demo_sample.jsonl")]
    return demo + [synthetic_row(k) for k in range(25)] + [
        {"instruction": "x"}, "bad", {"instruction": "Long " * 200, "output": "```python\nx = 1\n```"}]


BASE = dict(budget_ratio=0.2, max_seq_length=256, pair_selector="random", pair_keep_ratio=0.7, seed=3)
GOLDEN = {  # config -> sha256[:16] of rows + selection + stats (no timings) + pair scores, from the one-pass pipeline
    "codeblock": ({}, "445a9a2765ddc983"),
    "block_per_example_word": (dict(granularity="block", selection_scope="per_example", nl_unit="word"),
                               "8778521bd02947b2"),
    "gce_tokens": (dict(supervision="gce_tokens"), "267e16d739352989"),
    "random_items": (dict(supervision="random_items"), "da32f51f38c29b87"),
    "full": (dict(supervision="full"), "bebde5447b16fb39"),
    "ifd": (dict(pair_selector="ifd", pair_keep_ratio=0.6), "e2748423e113d96b"),
    "excess_tokens": (dict(supervision="excess_tokens", reference_model="x"), "ebfc1d59a8255061"),
    "excess_gce": (dict(utility_mode="excess_gce", reference_model="x"), "4915f1dc43a9abb3"),
    "no_pair_selection_no_nl": (dict(pair_selector="none", nl_share=0.0), "ba44fc5dab2a38fb"),
}


def digest(out) -> str:
    stats = dict(out.stats)
    stats.pop("timings_s")
    blob = json.dumps({"rows": out.rows, "selection": out.selection, "stats": stats, "pairs": out.pair_scores},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run(name, tokenizer, **kw):
    extra, _ = GOLDEN[name]
    reference = HashScorer() if "reference_model" in extra else None
    return prepare_dataset(rows(), tokenizer=tokenizer, scorer=HashScorer(), config=CodeBlockConfig(**{**BASE, **extra}),
                           progress=False, reference_scorer=reference, **kw)


@pytest.mark.parametrize("name", list(GOLDEN))
def test_outputs_equal_the_one_pass_pipeline(name, tiny_tokenizer):
    assert digest(run(name, tiny_tokenizer)) == GOLDEN[name][1]


@pytest.mark.parametrize("name", ["codeblock", "block_per_example_word", "gce_tokens", "ifd"])
def test_chunk_size_does_not_change_a_byte(name, tiny_tokenizer, monkeypatch):
    monkeypatch.setattr(collect_mod, "CHUNK_ROWS", 3)
    monkeypatch.setattr(pipeline_mod, "CHUNK_ROWS", 2)
    assert digest(run(name, tiny_tokenizer)) == GOLDEN[name][1]


def test_row_state_is_bounded_by_the_chunk(tiny_tokenizer, monkeypatch):
    """At most one chunk of full row state (rendering, token index, analysis) is alive at any time, and the compact
    state kept for the global steps holds none of it: a one-pass pipeline keeps every row's state alive."""
    monkeypatch.setattr(collect_mod, "CHUNK_ROWS", 4)
    alive: weakref.WeakSet = weakref.WeakSet()
    peak = [0]

    class CountedWork(collect_mod.Work):
        __hash__ = object.__hash__  # a dataclass with eq is unhashable; the WeakSet needs identity

        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            alive.add(self)
            peak[0] = max(peak[0], len(alive))

    monkeypatch.setattr(collect_mod, "Work", CountedWork)
    states = []
    real_collect = pipeline_mod.collect

    def spy(*args, **kw):
        states.append(real_collect(*args, **kw))
        return states[-1]

    monkeypatch.setattr(pipeline_mod, "collect", spy)
    out = run("codeblock", tiny_tokenizer)
    assert out.stats["n_pair_selected"] > 12 and 0 < peak[0] <= 4 + 1  # one chunk (+ the row being made)

    state = states[0]
    forbidden = (collect_mod.Work, collect_mod.TokenIndex)
    seen, todo = set(), [v for k, v in vars(state).items() if k != "spill"]
    while todo:  # everything reachable from the compact state
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type(None))):
            continue
        seen.add(id(obj))
        assert not isinstance(obj, forbidden), f"compact state holds a {type(obj).__name__}"
        assert type(obj).__name__ not in ("Rendered", "Analysis", "Example"), f"compact state holds {type(obj)}"
        if isinstance(obj, dict):
            todo.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            todo.extend(obj)
        elif hasattr(obj, "__dict__") or hasattr(obj, "__dataclass_fields__"):
            todo.extend(getattr(obj, f) for f in getattr(obj, "__dataclass_fields__", vars(obj)))


def test_file_run_writes_what_the_library_call_returns(tmp_path, tiny_tokenizer):
    data = tmp_path / "d.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as fh:
        for row in rows():
            fh.write(json.dumps(row) + "\n")
        fh.write("{not json\n")
    config = CodeBlockConfig(**BASE, decontaminate="none", scan_secrets="redact")
    stats = run_prepare(str(data), "tiny", tmp_path / "a", config, scorer=HashScorer(), tokenizer=tiny_tokenizer,
                        progress=False)
    run_prepare(str(data), "tiny", tmp_path / "b", config, scorer=HashScorer(), tokenizer=tiny_tokenizer, progress=False)
    mem = run_prepare(rows() + [None], "tiny", tmp_path / "m", config, scorer=HashScorer(), tokenizer=tiny_tokenizer,
                      progress=False)
    assert stats["n_input"] == len(rows()) + 1 and stats["n_dropped"]["invalid_json"] == 1
    assert mem["n_dropped"].get("wrong_type") == stats["n_dropped"]["wrong_type"] + 1  # None row vs unreadable line
    lines = (tmp_path / "a" / "train.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [json.loads(x) for x in (tmp_path / "m" / "train.jsonl").read_text().splitlines()]
    assert stats["n_kept"] == len(lines) > 0
    from datasets import load_from_disk

    ds = load_from_disk(str(tmp_path / "a" / "dataset"))
    assert [dict(r) for r in ds] == [json.loads(x) for x in lines]
    for f in sorted((tmp_path / "a").rglob("*")):  # rerun: the same bytes everywhere (dataset/ fingerprint included)
        if f.is_file() and f.name not in ("stats.json", "manifest.json"):
            assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes(), f.name


def test_a_failed_run_leaves_no_half_written_train_file(tmp_path):
    from codeblock.prepare.write import FileSink

    sink = FileSink(tmp_path)
    sink.row({"input_ids": [1, 2], "attention_mask": [1, 1], "labels": [-100, 2], "example_index": 0,
              "n_response_tokens": 1, "n_supervised": 1})
    sink.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_input_that_changes_between_passes_is_a_clear_error(tiny_tokenizer):
    class Shifting(ListRows):
        passes = 0

        def __iter__(self):
            Shifting.passes += 1
            return enumerate(self.rows if Shifting.passes == 1 else self.rows[1:])  # every row moved up

    with pytest.raises(RuntimeError, match="input changed between passes"):
        pipeline_mod.prepare_stream(Shifting(rows()), tokenizer=tiny_tokenizer, scorer=HashScorer(),
                                    config=CodeBlockConfig(**BASE), sink=pipeline_mod.ListSink(), progress=False)


def test_row_stream_logs_each_unreadable_line_once(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_bytes(b'{"a": 1}\n{oops\n\xff\n{"a": 2}\n')
    stream = RowStream(data)
    assert next(iter(stream))[0] == 0  # a pass that stops early
    assert [i for i, _ in stream] == [0, 1, 2, 3] and [i for i, _ in stream] == [0, 1, 2, 3]
    assert dict(stream.skips.counts) == {"invalid_json": 1, "non_utf8": 1} and stream.n_rows == 4


def test_streamed_hygiene_equals_one_call(monkeypatch):
    secret = "ghp_" + "a1B2" * 9
    data = [synthetic_row(k) for k in range(9)]
    data[2] = {"instruction": "Call it.", "output": f'```python\ntoken = "{secret}"\nprint(len(token))\n```\n'}
    data[6] = {"instruction": "Broken.", "output": f'```python\ntoken = "{secret}"\n'}
    cfg = CodeBlockConfig(decontaminate="none", scan_secrets="redact")
    whole = apply_hygiene(data, cfg, SkipLog(), progress=False)
    monkeypatch.setattr(hygiene_mod, "CHUNK_ROWS", 2)
    chunked = apply_hygiene(data, cfg, SkipLog(), progress=False)
    assert whole[0] == chunked[0] and whole[0][2] != data[2]  # redacted copy
    assert whole[1].stats == chunked[1].stats and whole[1].reports == chunked[1].reports
    assert whole[1].skips.samples == chunked[1].skips.samples
