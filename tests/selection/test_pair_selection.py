"""Pair-level selection (§2(a)) and its §5(a) oracles."""

import json
import math
import random

import numpy as np
import pytest

from codeblock.scoring.embeddings import embed_texts, knn_mean_cosine_distance, longtail_from_distance
from codeblock.scoring.scorer import ifd_from_ce, make_ifd_fn
from codeblock.selection.pairs import (
    PAIR_SELECTORS,
    n_keep,
    oci_quality,
    quality_level_oci,
    quality_level_rating,
    select_pairs,
)

TOPICS = ["sort", "parse", "merge", "reverse", "count", "filter", "encode", "compress", "search", "hash"]
OBJECTS = ["list", "string", "dictionary", "file", "json", "matrix", "tree", "graph", "csv", "url"]


def make_corpus(n, seed=0):
    rng = random.Random(seed)
    instr = [
        f"Write a Python function to {rng.choice(TOPICS)} a {rng.choice(OBJECTS)} "
        f"and {rng.choice(TOPICS)} the {rng.choice(OBJECTS)} {i % 7}"
        for i in range(n)
    ]
    resp = [f"def f{i}(x):\n    return x * {i}\n" for i in range(n)]
    return instr, resp


def ifd_from_table(table):
    """An ifd_fn over a fixed per-prompt table (stands for a scorer in selector-logic tests)."""
    return lambda pairs: [table[x] for x, _ in pairs]


# ----------------------------------------------------------------------------- quality mapping oracles


def test_oci_mapping_oracles():
    assert quality_level_oci([5, 5, 5], 1.0) == 5
    assert oci_quality([3, 3, 3], 0.5) == pytest.approx(0.25)
    assert quality_level_oci([3, 3, 3], 0.5) == 1  # round(1.25) half up -> 1
    assert quality_level_oci([1, 1, 1], 1.0) == 0
    # round half up exactly at .5: J = 0.5, t = 0.7 -> 5Q = 1.75 -> 2; J=0.75,t=0.4 -> 1.5 -> 2
    assert quality_level_oci([3, 3, 3], 0.7) == 2
    assert quality_level_oci([4, 4, 4], 0.4) == 2


def test_oci_judgement_formats_and_unparsable():
    as_json = json.dumps({k: {"score": 5, "justification": "ok"} for k in ("a", "b", "c")})
    assert quality_level_oci(as_json, "1.0") == 5
    assert quality_level_oci({"a": 3, "b": 3, "c": 3}, 0.5) == 1
    assert quality_level_oci("not json", 1.0) == 0
    assert quality_level_oci([5, 5, 5], None) == 0
    assert quality_level_oci([5, "x", 5], 1.0) == 0


def test_rating_field_maps_linearly():
    assert [quality_level_rating(v, 1, 10) for v in (1, 10, 5.5, "x", None)] == [0, 5, 3, 0, 0]


def test_n_keep_is_floor_and_float_safe():
    assert n_keep(10, 0.4) == 4 and n_keep(7, 0.4) == 2 and n_keep(3, 0.3) == 0 and n_keep(100, 0.29) == 29
    with pytest.raises(ValueError):
        n_keep(10, 1.5)


# ----------------------------------------------------------------------------- long tail


def test_longtail_oracles():
    assert float(longtail_from_distance(0.5)) == pytest.approx(0.244919, abs=1e-6)
    assert float(longtail_from_distance(0.0)) == 0.0
    dup = np.tile(np.array([[0.6, 0.8, 0.0]]), (12, 1))
    d = knn_mean_cosine_distance(dup, k=10)
    assert np.all(np.abs(longtail_from_distance(d)) < 1e-12)


def test_knn_distance_matches_bruteforce_and_chunking():
    rng = np.random.default_rng(3)
    e = rng.normal(size=(57, 8))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    full = 1 - e @ e.T
    np.fill_diagonal(full, np.inf)
    expected = np.sort(full, axis=1)[:, :10].mean(axis=1)
    np.testing.assert_allclose(knn_mean_cosine_distance(e, 10, chunk=7), expected, atol=1e-12)
    assert knn_mean_cosine_distance(e[:1], 10).tolist() == [0.0]
    np.testing.assert_allclose(knn_mean_cosine_distance(e[:3], 10), np.sort(full[:3, :3], 1)[:, :2].mean(1))


def test_ds2_order_with_hand_set_embeddings():
    # levels 5,5,3,3,0,5 ; row 5 is a duplicate of row 0 (so both are "head", LT low); row 1 is isolated
    rows = [
        {"llm_judgement": [5, 5, 5], "average_test_score": 1.0},
        {"llm_judgement": [5, 5, 5], "average_test_score": 1.0},
        {"llm_judgement": [4, 4, 4], "average_test_score": 0.8},
        {"llm_judgement": [4, 4, 4], "average_test_score": 0.8},
        {"llm_judgement": "garbage", "average_test_score": 1.0},
        {"llm_judgement": [5, 5, 5], "average_test_score": 1.0},
    ]
    e = np.array([[1, 0, 0], [0, 0, 1], [0.8, 0.6, 0], [0.6, 0.8, 0], [0, -1, 0], [1, 0, 0]], dtype=float)
    res = select_pairs(rows, "quality_longtail", 0.5, 42, instruction_texts=[""] * 6, embeddings=e, longtail_k=2)
    assert [res.scores[i]["L"] for i in range(6)] == [5, 5, 3, 3, 0, 5]
    # L=5 group: row 1 (isolated) > rows 0 and 5 (duplicates; tie broken by index) -> keep 1, 0, 5
    assert res.kept_indices == [0, 1, 5]
    assert res.scores[1]["LT"] > res.scores[0]["LT"] == res.scores[5]["LT"]
    assert res.stats["quality_source"] == "opencodeinstruct" and res.stats["quality_unparsable"] == 1
    assert res.dropped == {2: "below_keep_ratio:quality_longtail", 3: "below_keep_ratio:quality_longtail",
                           4: "below_keep_ratio:quality_longtail"}
    res2 = select_pairs(rows, "quality_longtail", 4 / 6, 42, instruction_texts=[""] * 6, embeddings=e, longtail_k=2)
    # among the L=3 rows, row 2 is nearer the head cluster (0,5) than row 3 -> row 3 wins
    assert res2.kept_indices == [0, 1, 3, 5]


def test_quality_field_rating_is_used():
    rows = [{"stars": s} for s in (1, 10, 7, None, 4)]
    instr, _ = make_corpus(5)
    res = select_pairs(rows, "quality_longtail", 0.4, 0, instruction_texts=instr, quality_field="stars")
    assert res.stats["quality_source"] == "field:stars" and res.kept_indices == [1, 2]


def test_quality_longtail_falls_back_to_ifd():
    instr, resp = make_corpus(10)
    table = {x: 0.1 * (i + 1) for i, x in enumerate(instr)}
    res = select_pairs([{}] * 10, instruction_texts=instr, response_texts=resp, ifd_fn=ifd_from_table(table))
    assert res.method_used == "ifd" and "fallback" in res.stats
    assert res.kept_indices == [6, 7, 8, 9]
    with pytest.raises(ValueError, match="ifd_fn"):
        select_pairs([{}] * 10, instruction_texts=instr)


# ----------------------------------------------------------------------------- generic properties


@pytest.mark.parametrize("method", PAIR_SELECTORS)
@pytest.mark.parametrize("n", [7, 50])
def test_size_subset_and_determinism(method, n):
    instr, resp = make_corpus(n, seed=n)
    rows = [{"llm_judgement": [1 + i % 5] * 3, "average_test_score": 1.0} for i in range(n)]
    rng = np.random.default_rng(n)
    table = {x: float(v) for x, v in zip(instr, rng.uniform(0.05, 0.95, n))}
    kw = dict(instruction_texts=instr, response_texts=resp, ifd_fn=ifd_from_table(table))
    a = select_pairs(rows, method, 0.4, 42, **kw)
    b = select_pairs(rows, method, 0.4, 42, **kw)
    expected = n if method == "none" else math.floor(0.4 * n)
    assert len(a.kept_indices) == expected
    assert a.kept_indices == sorted(set(a.kept_indices)) and set(a.kept_indices) <= set(range(n))
    assert a.kept_indices == b.kept_indices and a.scores == b.scores
    assert set(a.dropped) == set(range(n)) - set(a.kept_indices)


def test_random_depends_on_seed():
    instr, _ = make_corpus(40)
    a = select_pairs([{}] * 40, "random", 0.4, 1, instruction_texts=instr).kept_indices
    b = select_pairs([{}] * 40, "random", 0.4, 2, instruction_texts=instr).kept_indices
    assert a != b and len(a) == len(b) == 16


# ----------------------------------------------------------------------------- IFD


def test_ifd_drops_above_one_and_nonfinite():
    instr, resp = make_corpus(10)
    vals = [1.5, 0.2, float("nan"), 0.9, 1.01, float("inf"), 0.3, 0.95, 0.5, 2.0]
    res = select_pairs([{}] * 10, "ifd", 0.4, 0, instruction_texts=instr, response_texts=resp,
                       ifd_fn=ifd_from_table(dict(zip(instr, vals))))
    assert res.kept_indices == [3, 6, 7, 8]
    for i in (0, 4, 9):
        assert res.dropped[i] == "ifd_gt_1"
    assert res.dropped[2] == res.dropped[5] == "ifd_non_finite"
    # only 5 valid rows: keeping 80% (8) must still never admit IFD > 1
    res = select_pairs([{}] * 10, "ifd", 0.8, 0, instruction_texts=instr, response_texts=resp,
                       ifd_fn=ifd_from_table(dict(zip(instr, vals))))
    assert res.kept_indices == [1, 3, 6, 7, 8] and res.stats["shortfall"] == 3


def test_kmeans_ifd_never_keeps_ifd_above_one():
    instr, resp = make_corpus(60, seed=5)
    vals = np.random.default_rng(5).uniform(0.5, 1.5, 60)
    res = select_pairs([{}] * 60, "kmeans_ifd", 0.4, 42, instruction_texts=instr, response_texts=resp,
                       ifd_fn=ifd_from_table(dict(zip(instr, vals.tolist()))), max_clusters=6)
    assert len(res.kept_indices) == 24
    assert all(vals[i] <= 1.0 for i in res.kept_indices)
    assert len({res.scores[i]["cluster"] for i in range(60)}) == 6


class CondStub:
    """Scorer stub: every scored token of a row gets p = e^-1 (CE 1.0) when the row contains the prompt marker
    token 7 (the conditioned render), else p = e^-2 (CE 2.0)."""

    def token_logprobs(self, ids_list):
        return [np.array([np.nan] + [-1.0 if 7 in ids else -2.0] * (len(ids) - 1)) for ids in ids_list]


def test_ifd_stub_oracle_half():
    def render(prompt, response):
        ids = ([7] if prompt else []) + [1, 2, 3]
        return ids, list(range(len(ids) - 3, len(ids)))

    fn = make_ifd_fn(CondStub(), render)
    assert fn([("do it", "ok"), ("again", "fine")]) == [0.5, 0.5]
    assert ifd_from_ce(1.0, 2.0) == 0.5 and math.isinf(ifd_from_ce(1.0, 0.0)) and math.isnan(ifd_from_ce(math.nan, 1))


def test_ifd_with_real_tiny_model(tiny_model, tiny_tokenizer):
    from codeblock.scoring.scorer import Scorer

    def render(prompt, response):
        msgs = [{"role": "user", "content": prompt}]
        head = tiny_tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        ids_head = tiny_tokenizer(head)["input_ids"]
        ids = ids_head + tiny_tokenizer(response)["input_ids"] + [tiny_tokenizer.eos_token_id]
        return ids, list(range(len(ids_head), len(ids)))

    scorer = Scorer(None, model=tiny_model, progress=False)
    instr, resp = make_corpus(6)
    vals = make_ifd_fn(scorer, render)(list(zip(instr, resp)))
    assert len(vals) == 6 and all(math.isfinite(v) and v > 0 for v in vals)
    assert len(set(vals)) > 1  # conditioning on different prompts changes the ratio


def test_embeddings_deterministic_and_normalised():
    instr, _ = make_corpus(300, seed=1)
    a, b = embed_texts(instr, seed=42), embed_texts(instr, seed=42)
    assert a.shape[0] == 300 and 100 < a.shape[1] <= 256 and np.array_equal(a, b)  # dims capped by the vocab
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0)
    small = embed_texts(["a b", "c d", ""], seed=0)
    assert small.shape[0] == 3 and np.all(small[2] == 0)
    with pytest.raises(ValueError, match="sentence-transformers"):
        embed_texts(["x"], method="not-a-local-model/xyz")


def test_quality_longtail_5k_rows_is_fast():
    import time

    instr, _ = make_corpus(5000, seed=2)
    rows = [{"llm_judgement": [1 + i % 5] * 3, "average_test_score": 1.0} for i in range(5000)]
    t0 = time.time()
    res = select_pairs(rows, "quality_longtail", 0.4, 42, instruction_texts=instr)
    assert len(res.kept_indices) == 2000 and time.time() - t0 < 30
    assert {res.scores[i]["L"] for i in res.kept_indices} == {4.0, 5.0}  # the two top levels, 1000 rows each
