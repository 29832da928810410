"""prepare_dataset end to end on the tiny tokenizer: bad input, truncation, drops, ratios, determinism, tiny model."""

from __future__ import annotations

import gzip
import json

import pytest

from codeblock.config import CodeBlockConfig
from codeblock.data_io import DataError, load_rows, normalize_rows
from codeblock.prepare.pipeline import prepare_dataset
from support.prep_helpers import HashScorer, check_mask_invariants, dumps

GOOD = {"instruction": "Add two numbers.", "response": "def add(a, b):\n    total = a + b\n    return total\n"}


def _cfg(**kw):
    base = dict(pair_selector="none", budget_ratio=0.5, max_example_fraction=1.0, code_languages=("python",))
    base.update(kw)
    return CodeBlockConfig(**base)


def test_bad_rows_are_counted_skips(tiny_tokenizer):
    rows = [
        GOOD,
        {"instruction": "no response"},
        {"instruction": "x", "response": 42},
        {"instruction": "x", "response": "   \n"},
        {"instruction": "x", "response": "bad \udc80 surrogate"},
        "not a dict",
        {"messages": [{"role": "user", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "Add."}, {"role": "assistant", "content": GOOD["response"]}]},
        {"prompt": "Add.", "completion": GOOD["response"]},
    ]
    out = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=_cfg(), progress=False)
    drops = out.stats["n_dropped"]
    assert drops["missing_fields"] == 1 and drops["wrong_type"] == 2 and drops["empty_response"] == 1
    assert drops["non_utf8"] == 1 and drops["no_assistant_turn"] == 1
    assert out.stats["n_input"] == 9 and out.stats["n_valid"] == 3 and out.stats["n_kept"] == 3
    assert out.stats["n_input"] == out.stats["n_kept"] + out.stats["n_dropped_total"]
    check_mask_invariants(out, tiny_tokenizer)


def test_file_formats_and_non_utf8_lines(tmp_path):
    good = json.dumps(GOOD).encode()
    path = tmp_path / "d.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(good + b"\n" + b'{"instruction": "\xff\xfe", "response": "x"}\n' + b"{broken\n" + good + b"\n")
    rows, skips, sha = load_rows(path)
    assert len(rows) == 4 and skips.counts == {"non_utf8": 1, "invalid_json": 1} and len(sha) == 64
    examples, more = normalize_rows(rows)
    assert [e.index for e in examples] == [0, 3]
    (tmp_path / "a.json").write_text(json.dumps([GOOD, GOOD]))
    assert len(load_rows(tmp_path / "a.json")[0]) == 2
    with pytest.raises(DataError, match="not found"):
        load_rows(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="unknown format"):
        (tmp_path / "x.csv").write_text("a,b")
        load_rows(tmp_path / "x.csv")


def test_hf_datasets_input(tmp_path):
    from datasets import Dataset

    ds = Dataset.from_list([GOOD, GOOD, GOOD])
    ds.save_to_disk(str(tmp_path / "ds"))
    rows, _, sha = load_rows(tmp_path / "ds", limit=2)
    assert len(rows) == 2 and rows[0]["response"] == GOOD["response"]
    assert load_rows(ds)[0] == [GOOD] * 3


def test_configurable_field_names(tiny_tokenizer):
    rows = [{"q": "Add.", "a": GOOD["response"]}]
    out = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=_cfg(prompt_field="q", response_field="a"), progress=False)
    assert out.stats["n_kept"] == 1


def test_response_without_code_is_nl_only_or_dropped(tiny_tokenizer):
    prose = {"instruction": "Explain.", "response": "Recursion solves problems by calling itself on smaller inputs."}
    out = prepare_dataset([prose, GOOD], tokenizer=tiny_tokenizer, scorer=HashScorer(), config=_cfg(), progress=False)
    rec = next(r for r in out.selection if r["index"] == 0)
    assert rec["kept"] and rec["n_code_tokens"] == 0 and rec["n_nl_tokens"] > 0
    # default: the row keeps its supervised end-of-turn token (EOS-only row, counted)
    out = prepare_dataset([prose, GOOD], tokenizer=tiny_tokenizer, scorer=HashScorer(), config=_cfg(nl_share=0.0), progress=False)
    assert out.stats["n_eos_only_rows"] == 1 and out.stats["n_kept"] == 2
    eos_row = next(r for r in out.rows if r["example_index"] == 0)
    assert eos_row["n_supervised"] == 0 and sum(v != -100 for v in eos_row["labels"]) == 1
    out = prepare_dataset([prose, GOOD], tokenizer=tiny_tokenizer, scorer=HashScorer(),
                          config=_cfg(nl_share=0.0, keep_eos_only_rows=False), progress=False)
    assert out.stats["n_dropped"]["no_supervised_tokens"] == 1 and [r["example_index"] for r in out.rows] == [1]
    dropped = next(r for r in out.selection if r["index"] == 0)
    assert dropped["kept"] is False and dropped["drop_reason"] == "no_supervised_tokens"


def test_truncation_keeps_labels_aligned_and_never_selects_crossing_items(tiny_tokenizer):
    body = "".join(f"    v{i} = v{i - 1} * {i} + 1\n" for i in range(1, 80))
    long = {"instruction": "Long.", "response": "def f(v0):\n" + body + "    return v79\n"}
    out = prepare_dataset([long, GOOD], tokenizer=tiny_tokenizer, scorer=HashScorer(), config=_cfg(max_seq_length=96), progress=False)
    rec = next(r for r in out.selection if r["index"] == 0)
    row = next(r for r in out.rows if r["example_index"] == 0)
    assert rec["truncated"] and len(row["input_ids"]) == len(row["labels"]) == 96
    kept_chars = rec["offsets"][-1][1] - rec["response_offset"]
    assert any(it["reason"] == "truncated" for it in rec["items"])
    assert all(s["end"] <= kept_chars for s in rec["selected_spans"])
    assert not rec["eos_supervised"]  # the end-of-turn token was cut off
    check_mask_invariants(out, tiny_tokenizer)
    # a prompt that fills the whole window leaves no response token: counted, not silently lost
    huge = {"instruction": "word " * 400, "response": "x = 1"}
    out = prepare_dataset([huge], tokenizer=tiny_tokenizer, scorer=HashScorer(), config=_cfg(max_seq_length=64), progress=False)
    assert out.stats["n_dropped"] == {"pair_selection": 0, "response_truncated": 1}


def test_budget_ratio_and_denominators(tiny_tokenizer):
    rows = [GOOD, {"instruction": "Loop.", "response": "for i in range(3):\n    if i % 2:\n        print(i * i)\n"}] * 4
    cfg = _cfg(budget_ratio=0.2, max_example_fraction=0.3, pair_selector="random", pair_keep_ratio=0.5)
    out = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=cfg, progress=False)
    b = out.stats["budget"]
    sup = out.stats["supervised_tokens"]
    assert out.stats["n_pair_selected"] == 4 and out.stats["n_dropped"]["pair_selection"] == 4
    assert sup <= b["B"] == int(0.2 * b["T_selected_pairs"])
    assert b["ratio_selected_pairs"] == round(sup / b["T_selected_pairs"], 9)
    assert b["ratio_pool"] == round(sup / b["T_pool"], 9)
    assert out.stats["supervised_fraction"] == round(sup / out.stats["response_tokens"], 9)
    pool = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=cfg.replace(budget_denominator="pool"), progress=False)
    assert pool.stats["budget"]["B"] == int(0.2 * pool.stats["budget"]["T_pool"])
    per = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=cfg.replace(selection_scope="per_example"), progress=False)
    check_mask_invariants(per, tiny_tokenizer)
    assert per.stats["supervised_tokens"] <= per.stats["budget"]["B"] + per.stats["budget"]["seed_overshoot"]


def test_deterministic_and_timed(tiny_tokenizer):
    rows = [GOOD] * 3
    a = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=_cfg(), progress=False)
    b = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=_cfg(), progress=False)
    assert dumps(a) == dumps(b)
    assert set(a.stats["timings_s"]) >= {"render_tokenize", "analyze", "score", "budget", "nl_tokens", "labels"}


def test_tiny_model_scorer_and_ifd_pair_selection(tiny_model_dir, tiny_tokenizer):
    from codeblock.scoring.scorer import Scorer

    rows = [GOOD, {"instruction": "Sq.", "response": "def sq(x):\n    return x * x\n"},
            {"instruction": "Neg.", "response": "def neg(x):\n    return -x\n"}, {"instruction": "Id.", "response": "def ident(x):\n    return x\n"}]
    scorer = Scorer(str(tiny_model_dir), progress=False)
    cfg = _cfg(pair_selector="ifd", pair_keep_ratio=0.5)
    out = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=scorer, config=cfg, progress=False)
    assert out.stats["pair_selection"]["method_used"] == "ifd"
    assert out.stats["n_pair_selected"] <= 2
    check_mask_invariants(out, tiny_tokenizer)
    # the IFD conditioned pass is reused by the scoring stage: 2 rows per pair, nothing rescored
    assert scorer.n_forward_rows == 2 * len(rows)


def test_item_utilities_follow_the_configured_token_score(tiny_tokenizer):
    """GCE with q = 0.7 is below CE for every p < 1 and bounded by 1/q: the utilities prepare writes must show it
    (a pipeline that ignored utility_mode would write identical values)."""
    rows = [GOOD, {"instruction": "Sq.", "response": "def sq(x):\n    y = x * x\n    return y\n"}]

    def utilities(mode):
        out = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=_cfg(utility_mode=mode),
                              progress=False)
        return {(r["index"], it["id"]): it["u"] for r in out.selection for it in r["items"] if it["u"] is not None}

    gce, ce = utilities("gce"), utilities("ce")
    assert gce and gce.keys() == ce.keys()
    assert all(gce[k] < ce[k] and gce[k] <= 1 / 0.7 for k in gce)
