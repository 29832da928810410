"""samples.jsonl: append-only writes, torn-last-line repair, resume counts, settings guard, completion/solution rows."""

from __future__ import annotations

import json

import pytest

from codeblock_eval.generation.samples_io import (
    SamplesFileError,
    SamplesWriter,
    check_settings,
    counts_by_task,
    read_samples,
    samples_to_programs,
    settings_hash,
)


def _rows(n, task="T/0"):
    return [{"task_id": task, "sample_index": i, "solution": f"x = {i}\n"} for i in range(n)]


def test_write_read_roundtrip_and_counts(tmp_path):
    path = tmp_path / "s.jsonl"
    with SamplesWriter(path) as writer:
        writer.write_many(_rows(2, "A"))
        writer.write_many(_rows(1, "B"))
        writer.write_many([])
    rows, torn = read_samples(path)
    assert torn == 0
    assert counts_by_task(rows) == {"A": 2, "B": 1}
    assert path.read_bytes().endswith(b"\n")


@pytest.mark.parametrize("tail", [b'{"task_id": "A", "sam', b'{"task_id": "A", "sample_index": 9}', b"\x00\x00garbage\n"])
def test_torn_last_line_is_dropped_and_truncated(tmp_path, tail):
    path = tmp_path / "s.jsonl"
    with SamplesWriter(path) as writer:
        writer.write_many(_rows(3, "A"))
    good = path.read_bytes()
    with path.open("ab") as handle:
        handle.write(tail)
    rows, torn = read_samples(path)
    assert torn == 1 and len(rows) == 3
    assert path.read_bytes() == good  # repaired: the next append starts on a clean line
    with SamplesWriter(path) as writer:
        writer.write_many(_rows(1, "B"))
    rows, torn = read_samples(path)
    assert torn == 0 and counts_by_task(rows) == {"A": 3, "B": 1}


def test_read_without_repair_leaves_file_alone(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"task_id": "A"}\n{"task_id": ')
    before = path.read_bytes()
    rows, torn = read_samples(path, repair=False)
    assert (len(rows), torn) == (1, 1) and path.read_bytes() == before


def test_corrupt_middle_line_is_an_error(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"task_id": "A"}\nnot json\n{"task_id": "B"}\n')
    with pytest.raises(SamplesFileError, match=":2: corrupt JSON"):
        read_samples(path)


def test_missing_file_is_empty(tmp_path):
    assert read_samples(tmp_path / "nope.jsonl") == ([], 0)


def test_settings_hash_is_order_independent_and_guarded(tmp_path):
    h = settings_hash({"model": "m", "max_new_tokens": 5})
    assert h == settings_hash({"max_new_tokens": 5, "model": "m"})
    assert h != settings_hash({"model": "m", "max_new_tokens": 6})
    rows = [{"task_id": "A", "settings_hash": h}]
    check_settings(rows, h, "p")
    with pytest.raises(SamplesFileError, match="settings hash"):
        check_settings(rows, "other", "p")


def test_samples_to_programs_solution_completion_and_unknown():
    prompts = {"T/0": "def f():\n", "T/1": "def g():\n"}
    rows = [
        {"task_id": "T/0", "completion": "    return 1\n"},
        {"task_id": "T/0", "completion": "    return 2\n"},
        {"task_id": "T/1", "solution": "def g():\n    return 3\n", "sample_index": 4},
        {"task_id": "T/9", "solution": "pass"},
    ]
    programs, skipped = samples_to_programs(rows, prompts)
    assert skipped == {"unknown_task": 1}
    assert [(p["task_id"], p["sample_index"], p["solution"]) for p in programs] == [
        ("T/0", 0, "def f():\n    return 1\n"),
        ("T/0", 1, "def f():\n    return 2\n"),
        ("T/1", 4, "def g():\n    return 3\n"),
    ]
    with pytest.raises(SamplesFileError, match="neither 'solution' nor 'completion'"):
        samples_to_programs([{"task_id": "T/0", "raw": "x"}], prompts)
    with pytest.raises(SamplesFileError, match="no 'task_id'"):
        samples_to_programs([{"solution": "x"}], prompts)


def test_rows_are_sorted_json(tmp_path):
    path = tmp_path / "s.jsonl"
    with SamplesWriter(path) as writer:
        writer.write_many([{"b": 1, "a": "ü", "task_id": "A"}])
    assert path.read_text(encoding="utf-8") == json.dumps({"a": "ü", "b": 1, "task_id": "A"}, ensure_ascii=False) + "\n"
