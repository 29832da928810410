"""Run manifests (write, verify, tamper detection) and the row loader (formats, counted skips)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest
from support.hyg_helpers import write_jsonl

from codeblock.cli import main
from codeblock.hygiene.manifest import git_commit, library_versions, verify_manifest, write_manifest
from codeblock.hygiene.rows import HygieneInputError, detect_fields, iter_text_fields, load_rows, set_text_field


def _artifact(tmp_path):
    d = tmp_path / "run"
    (d / "sub").mkdir(parents=True)
    (d / "data.jsonl").write_text('{"a": 1}\n')
    (d / "sub" / "adapter_model.safetensors").write_bytes(b"\x00weights")
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"x": 2}\n')
    path = write_manifest(d, config={"lr": 1e-4}, seeds={"seed": 7}, inputs={"train": inp},
                          extra={"note": "t"}, tokenizer_revision="tok@abc", base_model_revision="model@def")
    return d, inp, json.loads(path.read_text())


def test_manifest_contents(tmp_path):
    d, inp, m = _artifact(tmp_path)
    assert set(m["outputs"]) == {"data.jsonl", "sub/adapter_model.safetensors"}
    assert m["inputs"]["train"]["sha256"] and m["seeds"] == {"seed": 7} and m["config"] == {"lr": 1e-4}
    assert m["adapters"] == {"sub/adapter_model.safetensors": m["outputs"]["sub/adapter_model.safetensors"]["sha256"]}
    assert m["tokenizer_revision"] == "tok@abc" and m["base_model_revision"] == "model@def"
    assert "numpy" in m["libraries"] and m["git_commit"]
    assert len(m["run_id"]) == 16
    # same config/seeds/inputs => same run id
    again = json.loads(write_manifest(d, config={"lr": 1e-4}, seeds={"seed": 7}, inputs={"train": inp}).read_text())
    assert again["run_id"] == m["run_id"]
    assert verify_manifest(d) == []


def test_tampering_is_reported(tmp_path, capsys):
    d, inp, _ = _artifact(tmp_path)
    assert main(["verify", str(d)]) == 0
    (d / "data.jsonl").write_text('{"a": 2}\n')
    (d / "sub" / "adapter_model.safetensors").unlink()
    (d / "new.txt").write_text("?")
    kinds = {p["path"]: p["kind"] for p in verify_manifest(d)}
    assert kinds == {"data.jsonl": "modified", "sub/adapter_model.safetensors": "missing", "new.txt": "unexpected"}
    capsys.readouterr()
    assert main(["verify", str(d)]) == 1
    out = capsys.readouterr().out
    assert "3 mismatch" in out and "modified" in out and "data.jsonl" in out
    inp.write_text("changed")
    assert {p["kind"] for p in verify_manifest(d, check_inputs=True)} >= {"input_modified"}
    assert main(["verify", str(tmp_path / "nowhere")]) == 2


def test_git_commit_falls_back(tmp_path):
    assert git_commit(tmp_path) == "unknown"
    assert library_versions(("surely-not-installed-pkg",)) == {"surely-not-installed-pkg": None}


def test_library_versions_do_not_import_torch():
    code = ("import sys; from codeblock.hygiene.manifest import library_versions; library_versions(); "
            "print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "False", res.stderr


@pytest.mark.parametrize("module", ["rows", "row_reader", "common", "normalize", "bench_index", "decontaminate", "secrets_scan",
                                    "dedup", "splits", "manifest"])
def test_hygiene_modules_are_pure(module):
    code = (f"import sys, codeblock.hygiene.{module}; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "[]", res.stderr


def test_loader_formats_and_counted_skips(tmp_path):
    rows = [{"instruction": "a", "output": "b"}, {"prompt": "p", "completion": "c"}]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "b.json").write_text(json.dumps({"data": rows}))
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as fh:
        fh.write(json.dumps(rows[0]) + "\n\n{oops\n" + json.dumps([1]) + "\n" + json.dumps(rows[1]) + "\n")
    assert load_rows(tmp_path / "a.json").rows == rows
    assert load_rows(tmp_path / "b.json").rows == rows
    res = load_rows(tmp_path / "c.jsonl.gz")
    assert res.rows == rows and res.index == [0, 3]
    assert res.skip_counts == {"bad_json": 1, "not_an_object:list": 1}
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(HygieneInputError, match="not valid JSON"):
        load_rows(tmp_path / "bad.json")
    with pytest.raises(HygieneInputError, match="not found"):
        load_rows(tmp_path / "missing.jsonl")


def test_field_detection_and_paths():
    assert detect_fields([{"instruction": "i", "input": "", "response": "r"}]) == ["instruction", "input", "response"]
    assert detect_fields([{"messages": [], "text": "x"}]) == ["messages"]
    row = {"messages": [{"role": "user", "content": "hi"}, {"from": "gpt", "value": "yo"}]}
    paths = iter_text_fields(row, ["messages"])
    assert paths == [("messages[0].content", "hi"), ("messages[1].value", "yo")]
    set_text_field(row, "messages[1].value", "new")
    assert row["messages"][1]["value"] == "new"


def test_cli_rejects_rows_without_text_fields(tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", [{"foo": 1}])
    assert main(["scan-secrets", "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    assert "--fields" in capsys.readouterr().err
