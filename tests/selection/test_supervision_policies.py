"""Baseline supervision policies (method.md §3): budgets, oracles, determinism, config, TRL and CLI entry points."""

from __future__ import annotations

import doctest
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import codeblock.prepare.report as prepare_report
import codeblock.selection.policies as policies
from codeblock.config import CHOICES, CodeBlockConfig, ConfigError
from codeblock.labels.token_spans import TokenIndex
from codeblock.prepare.pipeline import prepare_dataset
from codeblock.scoring.gce import gce_from_logp
from codeblock.selection.budget import total_budget
from codeblock.training.trl_sft import build_sft_dataset, full_sft_rows
from support.prep_helpers import HashScorer, check_mask_invariants, dumps

REPO = Path(__file__).resolve().parents[2]
ROWS = [json.loads(line) for line in open(REPO / "plugin/codeblock/data/demo_sample.jsonl")]
PROSE = {"instruction": "Explain.", "response": "Recursion solves a problem by calling itself on smaller inputs."}
TOKEN_BUDGETED = ("random_tokens", "gce_tokens", "excess_tokens")


class ShiftedScorer(HashScorer):
    """A second, different deterministic scorer (the 'reference model' of the excess tests)."""

    def token_logprobs(self, ids_list):
        return [np.where(np.isnan(lp), lp, np.log(0.5 + 0.5 * np.exp(lp))).astype(np.float32)
                for lp in super().token_logprobs([list(ids)[::-1] for ids in ids_list])]


def _cfg(**kw):
    base = dict(pair_selector="none", budget_ratio=0.1, max_example_fraction=0.3)
    base.update(kw)
    return CodeBlockConfig(**base)


def _prep(tok, rows=ROWS, scorer="hash", reference=None, **kw):
    scorer = HashScorer() if scorer == "hash" else scorer
    return prepare_dataset(list(rows), tokenizer=tok, scorer=scorer, reference_scorer=reference, config=_cfg(**kw),
                           progress=False)


def _response_tokens(rec) -> list[int]:
    r = rec["response_offset"]
    return TokenIndex(rec["text"], rec["offsets"], r, r + rec["response_chars"]).response_tokens


def _supervised(prepared) -> dict[int, list[int]]:
    """example index -> supervised positions, the end-of-turn token left out."""
    eos = {rec["index"]: rec["eos_index"] for rec in prepared.selection}
    return {row["example_index"]: [t for t, v in enumerate(row["labels"]) if v != -100 and t != eos[row["example_index"]]]
            for row in prepared.rows}


def _oracle_top(prepared, scores_of, budget) -> set[tuple[int, int]]:
    """Independent top-B over (example position, token) of every kept pair, key (-round(s, 9), position, token)."""
    keyed = []
    for pos, rec in enumerate(prepared.selection):
        s = scores_of(rec)
        keyed += [(-round(float(s[t]), 9), pos, t) for t in _response_tokens(rec) if math.isfinite(float(s[t]))]
    return {(prepared.selection[pos]["index"], t) for _, pos, t in sorted(keyed)[:budget]}


def _pairs(prepared) -> set[tuple[int, int]]:
    return {(e, t) for e, ts in _supervised(prepared).items() for t in ts}


# --------------------------------------------------------------------------- pure module


def test_doctests():
    assert doctest.testmod(policies).failed == 0
    assert doctest.testmod(prepare_report).failed == 0


def test_random_tokens_is_exact_and_roughly_uniform():
    pools = [list(range(10)), list(range(3, 13)), []]
    counts = np.zeros((2, 13))
    for seed in range(2000):
        picked = policies.random_tokens(pools, 5, seed)
        assert sum(map(len, picked.values())) == 5 and set(picked) <= {0, 1}
        for k, ts in picked.items():
            assert ts == sorted(set(ts)) and set(ts) <= set(pools[k])
            counts[k, ts] += 1
    freq = np.concatenate([counts[0, :10], counts[1, 3:13]]) / 2000
    assert np.all(np.abs(freq - 0.25) < 0.04), freq  # 5 of 20 tokens each time: every token ~25%
    assert policies.random_tokens(pools, 50, 0) == policies.full_tokens(pools)  # B >= pool: the whole pool


def test_top_tokens_skips_nan_and_breaks_ties_by_position():
    pools = [[1, 2, 3], [1, 2]]
    scores = [np.array([np.nan, 0.5, np.nan, 0.5]), np.array([np.nan, 0.5, 0.7])]
    assert policies.top_tokens(pools, scores, 2) == {0: [1], 1: [2]}
    assert policies.top_tokens(pools, scores, 10) == {0: [1, 3], 1: [1, 2]}  # the NaN token 2 is never taken
    # scores equal after rounding to 9 decimals are ties: the earlier example wins
    assert policies.top_tokens([[1], [1]], [np.array([0, 0.1 + 1e-12]), np.array([0, 0.1 + 2e-12])], 1) == {0: [1]}
    with pytest.raises(ValueError, match="token-level"):
        policies.select_tokens("random_items", pools, budget=1, seed=0)


def test_policy_names_match_the_config_choices():
    assert CHOICES["supervision"] == policies.SUPERVISIONS
    assert set(policies.DESCRIPTIONS) == set(policies.SUPERVISIONS)
    assert CodeBlockConfig().supervision == "codeblock"


@pytest.mark.parametrize("bad, match", [
    ({"supervision": "random"}, "choose one of: codeblock, full, random_tokens"),
    ({"supervision": "excess_tokens"}, "needs reference_model"),
])
def test_config_validation(bad, match):
    with pytest.raises(ConfigError, match=match):
        CodeBlockConfig.from_dict(bad)
    assert CodeBlockConfig.from_dict({"supervision": "excess_tokens", "reference_model": "ref"}).reference_model == "ref"


# --------------------------------------------------------------------------- pipeline


@pytest.mark.parametrize("supervision", TOKEN_BUDGETED)
def test_token_policies_take_exactly_B_response_tokens(tiny_tokenizer, supervision):
    ref = ShiftedScorer() if supervision == "excess_tokens" else None
    kw = dict(reference_model="ref") if supervision == "excess_tokens" else {}
    out = _prep(tiny_tokenizer, reference=ref, supervision=supervision, pair_selector="random", pair_keep_ratio=0.75, **kw)
    st, b = out.stats, out.stats["budget"]
    t_kept = sum(rec["n_response_tokens"] for rec in out.selection)
    assert st["supervision"] == supervision and st["n_pair_selected"] == len(out.selection) == 9
    assert b["T_selected_pairs"] == t_kept and b["B"] == total_budget(0.1, t_kept) > 0
    assert st["supervised_tokens"] == b["B"] == b["code_used"] + b["nl_used"] == st["code_tokens"] + st["nl_tokens"]
    recs = {rec["index"]: rec for rec in out.selection}
    total = 0
    for e, ts in _supervised(out).items():
        assert set(ts) <= set(_response_tokens(recs[e])), "a supervised token outside the response"
        total += len(ts)
    assert total == b["B"]
    row = out.rows[0]
    assert all(v in (-100, i) for v, i in zip(row["labels"], row["input_ids"]))
    pool = _prep(tiny_tokenizer, reference=ref, supervision=supervision, pair_selector="random", pair_keep_ratio=0.75,
                 budget_denominator="pool", **kw)
    assert pool.stats["supervised_tokens"] == pool.stats["budget"]["B"] == total_budget(0.1, pool.stats["budget"]["T_pool"])


@pytest.mark.parametrize("supervision", ("random_tokens", "random_items"))
def test_random_policies_are_seeded(tiny_tokenizer, supervision):
    a = _prep(tiny_tokenizer, supervision=supervision, budget_ratio=0.2)
    b = _prep(tiny_tokenizer, supervision=supervision, budget_ratio=0.2)
    c = _prep(tiny_tokenizer, supervision=supervision, budget_ratio=0.2, seed=7)
    assert dumps(a) == dumps(b)
    assert _pairs(a) != _pairs(c)


@pytest.mark.parametrize("mode", ("gce", "ce"))
def test_gce_tokens_picks_the_highest_token_scores(tiny_tokenizer, mode):
    out = _prep(tiny_tokenizer, supervision="gce_tokens", utility_mode=mode, gce_q=0.7)
    q = 0.7 if mode == "gce" else 0.0
    scores = {}

    def g(rec):
        ids = next(r["input_ids"] for r in out.rows if r["example_index"] == rec["index"])
        scores[rec["index"]] = gce_from_logp(HashScorer().token_logprobs([ids])[0], q)
        return scores[rec["index"]]

    want = _oracle_top(out, g, out.stats["budget"]["B"])
    got = _pairs(out)
    assert got == want
    taken = min(scores[e][t] for e, t in got)
    left = max(scores[e][t] for e, rec in ((r["index"], r) for r in out.selection)
               for t in _response_tokens(rec) if (e, t) not in got)
    assert taken >= left
    # the structure-free top-B differs from CodeBlock's items at the same budget
    assert got != _pairs(_prep(tiny_tokenizer, utility_mode=mode))


def test_excess_tokens_ranks_by_reference_minus_base_logp(tiny_tokenizer):
    out = _prep(tiny_tokenizer, reference=ShiftedScorer(), supervision="excess_tokens", reference_model="ref", gce_q=0.3)

    def excess(rec):
        ids = next(r["input_ids"] for r in out.rows if r["example_index"] == rec["index"])
        base = HashScorer().token_logprobs([ids])[0].astype(np.float64)
        return ShiftedScorer().token_logprobs([ids])[0].astype(np.float64) - base

    assert _pairs(out) == _oracle_top(out, excess, out.stats["budget"]["B"])
    # plain CE: independent of gce_q and of utility_mode's q
    other = _prep(tiny_tokenizer, reference=ShiftedScorer(), supervision="excess_tokens", reference_model="ref", gce_q=0.9)
    assert dumps(other) == dumps(out)
    assert _pairs(out) != _pairs(_prep(tiny_tokenizer, supervision="gce_tokens", utility_mode="ce"))
    with pytest.raises(ValueError, match="needs reference_scorer"):
        _prep(tiny_tokenizer, supervision="excess_tokens", reference_model="ref")


def test_random_items_keeps_caps_budget_and_nl_policy(tiny_tokenizer):
    kw = dict(budget_ratio=0.2, max_example_fraction=0.15, nl_share=0.2)
    out = _prep(tiny_tokenizer, supervision="random_items", **kw)
    check_mask_invariants(out, tiny_tokenizer)
    st, b = out.stats, out.stats["budget"]
    assert st["supervised_tokens"] <= b["B"] and b["code_used"] <= b["B_code"] == math.floor(0.8 * b["B"])
    assert st["nl_tokens"] > 0 and st["code_tokens"] > 0
    # P is a seeded permutation of the selectable items, in (example, item) order
    sel_items = [it for rec in out.selection for it in rec["items"] if it["selectable"]]
    assert [it["P"] for it in sel_items] == policies.random_priorities(len(sel_items), 42)
    for rec in out.selection:
        items = [it for it in rec["items"] if it["selectable"]]
        if not items:
            continue
        seed = max(items, key=lambda it: it["P"])
        cap = max(math.ceil(0.15 * rec["n_response_tokens"]), seed["n_tokens"])
        assert rec["n_supervised"] <= cap
    codeblock = _prep(tiny_tokenizer, **kw)
    assert b["B"] == codeblock.stats["budget"]["B"]
    picked = lambda o: {(r["index"], s["item_id"]) for r in o.selection for s in r["selected_spans"]}  # noqa: E731
    assert picked(out) != picked(codeblock)


def test_full_equals_full_sft_rows_and_skips_scoring(tiny_tokenizer, stub_scorer_cls):
    rows = ROWS + [PROSE]
    scorer = stub_scorer_cls()
    out = _prep(tiny_tokenizer, rows=rows, scorer=scorer, supervision="full")
    ref, _ = full_sft_rows(rows, tokenizer=tiny_tokenizer)
    assert [(r["input_ids"], r["labels"]) for r in out.rows] == [(r["input_ids"], r["labels"]) for r in ref]
    st = out.stats
    assert scorer.calls == 0 and st["budget"]["B"] is None and st["items"]["n_selectable"] is None
    assert st["supervised_tokens"] == st["response_tokens"] and st["supervised_fraction"] == 1.0
    assert st["eos"]["supervised"] == len(rows) and st["eos"]["mean_logp_under_scorer"] is None
    prose = next(rec for rec in out.selection if rec["index"] == len(ROWS))
    assert prose["n_code_tokens"] == 0 and prose["n_nl_tokens"] == prose["n_response_tokens"]
    assert 0 < st["code_tokens"] < st["supervised_tokens"] == st["code_tokens"] + st["nl_tokens"]
    # with a pair selector (B2/B7/B8): the same labels on the kept pairs only; no scorer needed for random
    kept = prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=None, progress=False,
                           config=_cfg(supervision="full", pair_selector="random", pair_keep_ratio=0.5))
    assert len(kept.rows) == 7
    assert all(r["labels"] == ref[r["example_index"]]["labels"] for r in kept.rows)
    with pytest.raises(ValueError, match="needs a scoring model"):  # IFD needs the model, even for full tokens
        prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=None, config=_cfg(supervision="full", pair_selector="ifd"))
    with pytest.raises(ValueError, match="needs a scorer"):
        prepare_dataset(rows, tokenizer=tiny_tokenizer, scorer=None, config=_cfg(supervision="gce_tokens"))


def test_rows_without_tokens_follow_eos_only_and_drop_rules(tiny_tokenizer, stub_scorer_cls):
    scorer = stub_scorer_cls()
    out = _prep(tiny_tokenizer, scorer=scorer, supervision="random_tokens", budget_ratio=0.01)
    assert scorer.calls == 0  # random tokens need no scoring pass
    n_empty = sum(1 for rec in out.selection if rec["n_supervised"] == 0)
    assert n_empty > 0 and out.stats["n_eos_only_rows"] == n_empty and out.stats["n_kept"] == len(ROWS)
    dropped = _prep(tiny_tokenizer, supervision="random_tokens", budget_ratio=0.01, keep_eos_only_rows=False)
    assert dropped.stats["n_dropped"]["no_supervised_tokens"] == n_empty
    assert dropped.stats["n_kept"] == len(ROWS) - n_empty and all(r["n_supervised"] > 0 for r in dropped.rows)


def test_codeblock_default_is_unchanged_by_the_key(tiny_tokenizer):
    a = _prep(tiny_tokenizer, budget_ratio=0.2)
    b = _prep(tiny_tokenizer, budget_ratio=0.2, supervision="codeblock")
    assert dumps(a) == dumps(b) and a.stats["supervision"] == "codeblock"
    check_mask_invariants(a, tiny_tokenizer)


# --------------------------------------------------------------------------- entry points


def test_build_sft_dataset_accepts_every_policy(tiny_tokenizer):
    rows = ROWS[:6]
    full = build_sft_dataset(rows, tokenizer=tiny_tokenizer, config=CodeBlockConfig(pair_selector="none"), supervision="full")
    assert full["labels"] == [r["labels"] for r in full_sft_rows(rows, tokenizer=tiny_tokenizer)[0]]
    config = _cfg(budget_ratio=0.2, reference_model="ref")
    for name in policies.SUPERVISIONS:
        ds, stats = build_sft_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), config=config, supervision=name,
                                      reference_scorer=ShiftedScorer(), return_stats=True)
        assert stats["supervision"] == name and ds.column_names == ["input_ids", "attention_mask", "labels"] and len(ds)
    # the config's own key is the default
    ds, stats = build_sft_dataset(rows, tokenizer=tiny_tokenizer, config=_cfg(supervision="random_tokens"), return_stats=True)
    assert stats["supervision"] == "random_tokens"
    with pytest.raises(ValueError, match="one of codeblock, full, random_tokens, gce_tokens, excess_tokens, random_items"):
        build_sft_dataset(rows, tokenizer=tiny_tokenizer, supervision="sparse")
    with pytest.raises(ValueError, match="needs a scorer"):
        build_sft_dataset(rows, tokenizer=tiny_tokenizer, config=config, supervision="gce_tokens")
    with pytest.raises(ConfigError, match="reference_model"):
        build_sft_dataset(rows, tokenizer=tiny_tokenizer, scorer=HashScorer(), supervision="excess_tokens")


def _cli(*args):
    env = {**os.environ, "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "plugin")}
    return subprocess.run([sys.executable, "-m", "codeblock.cli", *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_prepare_with_supervision_full(tiny_model_dir, tiny_tokenizer, tmp_path):
    cfg = tmp_path / "x.yaml"
    cfg.write_text("supervision: full\npair_selector: none\n")
    data = REPO / "plugin/codeblock/data/demo_sample.jsonl"
    proc = _cli("prepare", "--data", str(data), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"),
                "--config", str(cfg), "--score-cache", "none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert stats["supervision"] == stats["config"]["supervision"] == "full" and stats["n_kept"] == len(ROWS)
    assert stats["supervised_fraction"] == 1.0 and "supervision" in proc.stderr
    rows = [json.loads(line) for line in open(tmp_path / "o" / "train.jsonl")]
    assert [r["labels"] for r in rows] == [r["labels"] for r in full_sft_rows(ROWS, tokenizer=tiny_tokenizer)[0]]
    proc = _cli("prepare", "--data", str(data), "--model", str(tiny_model_dir), "--out", str(tmp_path / "r"),
                "--config", str(cfg), "--supervision", "random_tokens", "--budget", "0.1", "--score-cache", "none", "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert stats["supervision"] == "random_tokens" and stats["supervised_tokens"] == stats["budget"]["B"] > 0
