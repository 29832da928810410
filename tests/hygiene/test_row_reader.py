"""The one row reader: every format streams, indices agree between `prepare` and the hygiene commands."""

from __future__ import annotations

import gzip
import json

import pytest

from codeblock.data_io import DataError
from codeblock.data_io import load_rows as prepare_rows
from codeblock.hygiene.row_reader import RowSourceError, iter_records
from codeblock.hygiene.rows import load_rows as hygiene_rows

ROWS = [{"instruction": f"task {k}", "output": f"x = {k}"} for k in range(5)]


@pytest.fixture()
def sources(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset

    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in ROWS))
    (tmp_path / "a.json").write_text(json.dumps({"rows": ROWS}))
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "a.parquet", row_group_size=2)
    Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "ds"))
    return [tmp_path / n for n in ("a.jsonl", "a.jsonl.gz", "a.json", "a.parquet", "ds")]


def test_every_format_gives_the_same_rows_through_both_consumers(sources):
    for src in sources:
        assert [r.row for r in iter_records(src)] == ROWS, src
        assert prepare_rows(src)[0] == ROWS, src
        loaded = hygiene_rows(src)
        assert loaded.rows == ROWS and loaded.index == list(range(5)), src
        assert [r.row for r in iter_records(src, limit=2)] == ROWS[:2]


def test_bad_lines_are_counted_at_the_same_index_by_both(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(json.dumps(ROWS[0]).encode() + b"\n\n{oops\n" + b'{"instruction": "\xff"}\n'
                     + json.dumps(ROWS[1]).encode() + b"\n")
    records = list(iter_records(path))
    assert [(r.index, r.reason) for r in records] == [(0, None), (1, "invalid_json"), (2, "non_utf8"), (3, None)]
    assert "line 3" in records[1].detail  # the detail names the file line (blank lines counted)
    rows, skips, _ = prepare_rows(path)
    assert len(rows) == 4 and {s["index"] for s in skips.samples} == {1, 2}
    loaded = hygiene_rows(path)
    assert loaded.index == [0, 3] and loaded.skips == [{"row": 1, "reason": "bad_json"}, {"row": 2, "reason": "non_utf8"}]


def test_the_reader_streams(tmp_path, monkeypatch):
    # JSONL is read line by line: records arrive before the file is exhausted (a generator, not a list).
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(ROWS[0]) + "\n" for _ in range(10)))
    it = iter_records(path)
    first = next(it)
    assert first.index == 0 and not isinstance(it, list)


def test_unreadable_sources_are_one_line_errors(tmp_path):
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(RowSourceError, match="unknown format"):
        list(iter_records(tmp_path / "x.csv"))
    with pytest.raises(DataError, match="not found"):
        prepare_rows(tmp_path / "missing.jsonl")
    (tmp_path / "broken.parquet").write_text("nope")
    with pytest.raises(DataError, match="not a readable Parquet"):
        prepare_rows(tmp_path / "broken.parquet")
