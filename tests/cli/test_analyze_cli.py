"""`codeblock analyze` CLI contract (issue #2 item 7)."""

from __future__ import annotations

import json
import subprocess
import sys

E1 = "def f(a, b):\n    x = a + 1\n    y = b * 2\n    z = x + y\n    return z\n"


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "codeblock.cli", "analyze", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_file_json_contract(tmp_path):
    path = tmp_path / "e1.py"
    path.write_text(E1)
    result = run_cli(str(path))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"language", "items", "edges", "reach", "bridge"}
    assert data["language"] == "python"
    for item in data["items"]:
        assert set(item) >= {"id", "start", "end", "kind", "text", "selectable", "core_spans"}
        assert item["text"] == E1[item["start"] : item["end"]]
    assert sorted(map(tuple, data["edges"])) == [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)]
    assert data["reach"] == {"0": 1.0, "1": 0.5, "2": 0.5, "3": 0.25, "4": 0.0}
    assert data["bridge"]["3"] == 1.0


def test_stdin_response_mode_offsets_into_whole_input():
    response = "Sure!\n\n```python\n" + E1 + "```\nThat's it."
    result = run_cli("-", "--response", stdin=response)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [i["text"] for i in data["items"]][0] == "def f(a, b):"
    for item in data["items"]:
        assert response[item["start"] : item["end"]] == item["text"]


def test_unparseable_input_is_not_an_error(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("def f(:\n  ))) ((( ???\n")
    result = run_cli(str(path))
    assert result.returncode == 0
    data = json.loads(result.stdout)
    unit = data["units"][0]
    assert unit["opaque"] or any(not i["selectable"] for i in data["items"])
    if unit["opaque"]:
        assert "ERROR" in unit["reason"]


def test_missing_file_and_unknown_language_exit_2(tmp_path):
    missing = run_cli(str(tmp_path / "nope.py"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    path = tmp_path / "x.py"
    path.write_text("x = 1\n")
    unknown = run_cli(str(path), "--lang", "cobol")
    assert unknown.returncode == 2 and "unknown language 'cobol'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_language_from_extension(tmp_path):
    path = tmp_path / "x.js"
    path.write_text("let a = 1;\nlet b = a + 1;\n")
    data = json.loads(run_cli(str(path)).stdout)
    assert data["language"] == "javascript"
    assert [i["text"] for i in data["items"]] == ["let a = 1;", "let b = a + 1;"]
