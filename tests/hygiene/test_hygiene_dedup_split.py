"""Near-duplicate removal, balanced sampling and temporal/grouped splits."""

from __future__ import annotations

import json
import random

from support.hyg_helpers import read_jsonl, write_jsonl

from codeblock.cli import main
from codeblock.hygiene.dedup import DedupConfig, MinHasher, balanced_sample, dedup_rows, guess_language, shingles_of
from codeblock.hygiene.splits import parse_date, split_by_date, split_by_group

WORDS = ("alpha beta gamma delta epsilon zeta theta iota kappa lambda sigma omega list dict sort merge "
         "parse tokens graph node edge weight queue stack heap tree").split()


def _text(rng: random.Random, n: int = 150) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _corpus():
    rng = random.Random(0)
    base = [{"instruction": f"Task {i}: " + _text(rng, 12), "output": _text(rng)} for i in range(40)]
    rows = list(base)
    rows.append(dict(base[3]))  # exact duplicate
    rows.append({"instruction": base[7]["instruction"].upper() + "  ", "output": "  " + base[7]["output"]})  # exact after norm
    near = dict(base[11])
    words = near["output"].split()
    words[75] = "CHANGED"
    near["output"] = " ".join(words)  # one word changed out of ~160
    rows.append(near)
    return rows


def test_exact_and_near_duplicates_are_removed_first_kept():
    rows = _corpus()
    kept, report, stats = dedup_rows(rows, ["instruction", "output"], progress=False)
    by_row = {r["row"]: r for r in report}
    assert set(by_row) == {40, 41, 42}
    assert by_row[40]["reason"] == by_row[41]["reason"] == "exact_duplicate"
    assert (by_row[40]["duplicate_of"], by_row[41]["duplicate_of"]) == (3, 7)
    assert by_row[42]["reason"] == "near_duplicate" and by_row[42]["duplicate_of"] == 11
    assert kept == rows[:40] and stats["n_kept"] == 40


def test_distinct_rows_survive_and_threshold_matters():
    rows = _corpus()
    kept, report, _ = dedup_rows(rows, ["instruction", "output"], DedupConfig(threshold=1.0), progress=False)
    assert {r["row"] for r in report} == {40, 41}  # the near duplicate is below similarity 1.0


def test_minhash_estimates_jaccard_and_is_seeded():
    rng = random.Random(5)
    a = _text(rng, 400)
    b = " ".join(a.split()[:300] + _text(rng, 100).split())
    sa, sb = shingles_of(a, 5), shingles_of(b, 5)
    true = len(set(sa.tolist()) & set(sb.tolist())) / len(set(sa.tolist()) | set(sb.tolist()))
    h = MinHasher(256, seed=1)
    est = float((h.signature(sa) == h.signature(sb)).mean())
    assert abs(est - true) < 0.1
    assert (MinHasher(64, 7).signature(sa) == MinHasher(64, 7).signature(sa)).all()
    assert not (MinHasher(64, 7).signature(sa) == MinHasher(64, 8).signature(sa)).all()


def test_dedup_cli_is_deterministic_and_balances(tmp_path):
    rows = _corpus()
    for i, r in enumerate(rows):
        r["source"] = "big" if i % 4 else "small"
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["dedup", "--data", str(data), "--out", str(out), "--balance_by", "source", "--cap", "12",
                     "--seed", "3"]) == 0
        outs.append(out)
    for f in ("data.jsonl", "report.jsonl", "stats.json"):
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    stats = json.loads((outs[0] / "stats.json").read_text())
    assert stats["balance"]["groups_after"] == {"big": 12, "small": 10}
    kept = read_jsonl(outs[0] / "data.jsonl")
    assert len(kept) == 22
    assert [r for r in read_jsonl(outs[0] / "report.jsonl") if r["reason"] == "over_cap"]
    assert main(["dedup", "--data", str(data), "--out", str(tmp_path / "c"), "--cap", "3"]) == 2


def test_balanced_sample_and_language_guess():
    rows = [{"instruction": "Write a Python function", "output": "def f(): pass"}] * 5 + \
           [{"instruction": "Write a C++ program", "output": "#include <iostream>"}] * 2 + \
           [{"instruction": "Do it", "output": "console.log(1)"}]
    fields = ["instruction", "output"]
    assert [guess_language(r, fields) for r in rows[4:]] == ["python", "c++", "c++", "javascript"]
    kept, report, stats = balanced_sample(rows, ["language"], 2, fields, seed=0)
    assert stats["groups_after"] == {"c++": 2, "javascript": 1, "python": 2} and len(report) == 3


def test_date_split_eval_is_newer():
    rows = [{"t": f"2024-{m:02d}-15"} for m in range(1, 13)] + [{"t": 1717200000}, {"t": "soon"}, {}]
    train, ev, skips = split_by_date(rows, "t", parse_date("2024-06-01"))
    assert max(parse_date(r["t"]) for r in train) < min(parse_date(r["t"]) for r in ev)
    assert len(train) == 5 and len(ev) == 8  # epoch 1717200000 = 2024-06-01T00:00Z goes to eval
    assert skips == [{"row": 13, "reason": "bad_date"}, {"row": 14, "reason": "missing_date"}]
    assert parse_date("2024-01-01T10:00:00Z").tzinfo is not None


def test_group_split_is_disjoint_and_seeded():
    rng = random.Random(2)
    rows = [{"repo": f"r{rng.randint(0, 14)}", "i": i} for i in range(300)]
    train, ev, skips, groups = split_by_group(rows, "repo", 0.25, seed=4)
    assert not ({r["repo"] for r in train} & {r["repo"] for r in ev})
    assert len(ev) >= 75 and len(train) + len(ev) == 300 and not skips
    assert split_by_group(rows, "repo", 0.25, seed=4)[3] == groups
    assert split_by_group(rows, "repo", 0.25, seed=5)[3] != groups


def test_split_cli(tmp_path, capsys):
    rows = [{"instruction": "x", "date": f"2023-{m:02d}-01", "repo": f"r{m % 3}"} for m in range(1, 13)]
    data = write_jsonl(tmp_path / "d.jsonl", rows + ["nope"])
    out = tmp_path / "o"
    assert main(["split", "--data", str(data), "--out", str(out), "--by-date", "date", "--cutoff", "2023-10-01"]) == 0
    assert len(read_jsonl(out / "train.jsonl")) == 9 and len(read_jsonl(out / "eval.jsonl")) == 3
    assert read_jsonl(out / "report.jsonl") == [{"row": 12, "reason": "bad_json"}]
    assert main(["verify", str(out)]) == 0
    out2 = tmp_path / "g"
    assert main(["split", "--data", str(data), "--out", str(out2), "--by-group", "repo", "--eval-fraction", "0.3"]) == 0
    stats = json.loads((out2 / "stats.json").read_text())
    assert stats["groups_overlap"] == 0 and stats["n_train"] + stats["n_eval"] == 12
    assert main(["split", "--data", str(data), "--out", str(out2)]) == 2
    assert main(["split", "--data", str(data), "--out", str(out2), "--by-date", "date", "--cutoff", "tomorrow"]) == 2
    assert "exactly one of" in capsys.readouterr().err
