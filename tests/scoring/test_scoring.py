"""Scorer: exact against a full-softmax reference, order/batching, resumable cache, real SmolLM2."""

import math

import numpy as np
import pytest

from codeblock.scoring.scorer import Scorer, plan_batches


def reference_logprobs(model, ids):
    """Direct full-softmax computation, one row at a time, no padding."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)[:-1].gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
    return np.concatenate([[np.nan], lp.numpy()]).astype(np.float32)


@pytest.fixture(scope="module")
def rows(tiny_tokenizer, tiny_corpus):
    texts = tiny_corpus + [tiny_corpus[0] * 6, "x", "def g():\n    pass\n"]
    return [tiny_tokenizer(t)["input_ids"] for t in texts]


@pytest.mark.parametrize("batching", ["row", "padded"])
def test_matches_full_softmax_with_padding_and_chunks(tiny_model, rows, batching):
    # small batches with very different lengths (padding) and a chunk of 7 positions (many head chunks)
    vocab = tiny_model.config.vocab_size
    scorer = Scorer(None, model=tiny_model, batch_size=3, max_tokens_per_batch=200, chunk_bytes=4 * vocab * 7,
                    progress=False, batching=batching)
    out = scorer.token_logprobs(rows)
    assert len(out) == len(rows)
    for ids, lp in zip(rows, out):
        assert lp.dtype == np.float32 and lp.shape == (len(ids),) and np.isnan(lp[0])
        ref = reference_logprobs(tiny_model, ids)
        np.testing.assert_allclose(lp[1:], ref[1:], atol=1e-5, rtol=0)
        assert np.all(lp[1:] <= 0)


def test_input_order_duplicates_and_trivial_rows(tiny_model, rows):
    scorer = Scorer(None, model=tiny_model, batch_size=4, progress=False)
    batch = [rows[2], [], rows[0], [5], rows[2], rows[1]]
    out = scorer.token_logprobs(batch)
    assert out[1].shape == (0,) and out[3].shape == (1,) and np.isnan(out[3][0])
    np.testing.assert_array_equal(out[0], out[4])
    assert scorer.n_forward_rows == 3  # duplicates and trivial rows never reach the model
    single = Scorer(None, model=tiny_model, batch_size=1, progress=False).token_logprobs([rows[0], rows[1]])
    np.testing.assert_allclose(out[2], single[0], atol=1e-5)
    np.testing.assert_allclose(out[5], single[1], atol=1e-5)


def test_plan_batches_respects_caps_and_is_deterministic():
    lengths = [5, 50, 7, 50, 3, 12, 12, 40]
    plan = plan_batches(lengths, batch_size=3, max_tokens_per_batch=100)
    assert sorted(i for b in plan for i in b) == list(range(8))
    for b in plan:
        assert len(b) <= 3 and (len(b) == 1 or len(b) * lengths[b[0]] <= 100)
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)
    assert plan[0] == [1, 3]  # longest first, ties by index
    assert plan == plan_batches(lengths, batch_size=3, max_tokens_per_batch=100)
    assert plan_batches([500], 4, 10) == [[0]]  # an over-long row still gets scored, alone


def test_loads_from_folder_and_equals_loaded_model(tiny_model_dir, tiny_model, rows):
    lazy = Scorer(str(tiny_model_dir), device="cpu", progress=False)
    assert lazy._model is None  # loaded only when needed
    a = lazy.token_logprobs(rows[:3])
    b = Scorer(None, model=tiny_model, progress=False).token_logprobs(rows[:3])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("batching", ["row", "padded"])
def test_cache_resumes_after_interruption(tiny_model_dir, rows, tmp_path, batching):
    fresh = Scorer(str(tiny_model_dir), device="cpu", batch_size=2, progress=False, batching=batching).token_logprobs(rows)

    class Interrupted(Exception):
        pass

    first = Scorer(str(tiny_model_dir), device="cpu", batch_size=2, cache_dir=tmp_path, progress=False, batching=batching)
    calls = {"n": 0}
    real_forward = first._forward

    def flaky(batch_rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Interrupted  # e.g. Ctrl-C during the third forward pass
        return real_forward(batch_rows)

    first._forward = flaky
    with pytest.raises(Interrupted):
        first.token_logprobs(rows)
    first.close()

    again = Scorer(str(tiny_model_dir), device="cpu", batch_size=2, cache_dir=tmp_path, progress=False, batching=batching)
    out = again.token_logprobs(rows)
    n_rows = len([r for r in rows if len(r) > 1])
    # row: one row per forward, so the first committed batch (2 rows) survived; padded: two whole batches (4 rows)
    assert again.n_forward_rows == n_rows - (2 if batching == "row" else 4)
    for x, y in zip(out, fresh):
        np.testing.assert_array_equal(x, y)  # byte-identical to an uninterrupted run
    third = Scorer(str(tiny_model_dir), device="cpu", batch_size=2, cache_dir=tmp_path, progress=False, batching=batching)
    assert [a.tobytes() for a in third.token_logprobs(rows)] == [a.tobytes() for a in out]
    assert third.n_forward_rows == 0 and third._model is None  # fully cached: the model is never loaded


def test_cache_is_keyed_by_model_identity(tiny_model_dir, tmp_path, rows):
    import json

    a = Scorer(str(tiny_model_dir), device="cpu", cache_dir=tmp_path / "c", progress=False)
    other = tmp_path / "other"
    other.mkdir()
    for f in tiny_model_dir.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((other / "config.json").read_text())
    cfg["rms_norm_eps"] = 1e-5
    (other / "config.json").write_text(json.dumps(cfg))
    b = Scorer(str(other), device="cpu", cache_dir=tmp_path / "c", progress=False)
    assert a.identity != b.identity
    a.token_logprobs(rows[:2])
    b.token_logprobs(rows[:2])
    assert b.n_forward_rows == 2  # nothing reused across models


def test_mean_ce(tiny_model, rows):
    scorer = Scorer(None, model=tiny_model, progress=False)
    lp = scorer.token_logprobs([rows[0]])[0]
    [ce] = scorer.mean_ce([rows[0]], [[0, 2, 3]])  # position 0 is ignored
    assert ce == pytest.approx(-float(np.mean(lp[[2, 3]].astype(np.float64))))
    assert math.isnan(scorer.mean_ce([rows[0]], [[0]])[0])


@pytest.mark.gpu
def test_cuda_bf16_close_to_cpu_fp32(tiny_model_dir, rows):
    cpu = Scorer(str(tiny_model_dir), device="cpu", progress=False).token_logprobs(rows)
    gpu = Scorer(str(tiny_model_dir), device="cuda", progress=False).token_logprobs(rows)
    for x, y in zip(cpu, gpu):
        np.testing.assert_allclose(x[1:], y[1:], atol=0.1)


@pytest.mark.slow
def test_smollm2_end_to_end(smollm2_dir):
    """Real SmolLM2-135M: exact vs full softmax, and a sensible response is far likelier than its shuffle."""
    from transformers import AutoTokenizer

    from codeblock.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(smollm2_dir, device="cpu")
    msgs = [{"role": "user", "content": "Write a Python function that returns the sum of a list."},
            {"role": "assistant", "content": "def total(xs):\n    return sum(xs)\n"}]
    text = tok.apply_chat_template(msgs, tokenize=False)
    ids = tok(text)["input_ids"]
    rng = np.random.default_rng(0)
    shuffled = ids[:5] + rng.permutation(ids[5:]).tolist()
    scorer = Scorer("smollm2-135m-instruct", model=model, batch_size=2, chunk_bytes=64 << 20, progress=False)
    lp, lp_shuf = scorer.token_logprobs([ids, shuffled])
    np.testing.assert_allclose(lp[1:], reference_logprobs(model, ids)[1:], atol=1e-4)
    assert lp[1:].mean() > lp_shuf[1:].mean() + 1.0
    assert isinstance(AutoTokenizer.from_pretrained(smollm2_dir).chat_template, str)


def test_score_packs_round_trip_append_only_and_refuse_damage(tmp_path):
    import gzip

    from codeblock.scoring.scorer import ScoreCache, export_score_packs, import_score_packs

    first = {"a": np.array([np.nan, -1.5, -0.25], np.float32), "b": np.array([np.nan, -3.0], np.float32)}
    cache = ScoreCache(tmp_path / "cache", "model-x|float32|cpu|v1")
    cache.put_many(list(first.items()))
    cache.close()
    [pack] = export_score_packs(tmp_path / "cache", tmp_path / "packs")
    assert export_score_packs(tmp_path / "cache", tmp_path / "packs") == []  # nothing new: no file written
    before = pack.read_bytes()
    cache = ScoreCache(tmp_path / "cache", "model-x|float32|cpu|v1")
    cache.put_many([("c", np.array([np.nan, -2.0], np.float32))])
    cache.close()
    [second] = export_score_packs(tmp_path / "cache", tmp_path / "packs")
    assert pack.read_bytes() == before and second != pack  # append-only: the first pack is never rewritten
    assert import_score_packs(tmp_path / "packs", tmp_path / "fresh") == 3
    got = ScoreCache(tmp_path / "fresh", "model-x|float32|cpu|v1").get_many(["a", "b", "c"])
    assert set(got) == {"a", "b", "c"} and all(np.array_equal(got[k], v, equal_nan=True) for k, v in first.items())
    assert ScoreCache(tmp_path / "fresh", "other-model").get_many(["a"]) == {}  # a pack serves only its model
    raw = gzip.decompress(second.read_bytes())
    second.write_bytes(gzip.compress(raw[:-4]))
    with pytest.raises(ValueError, match="damaged"):
        import_score_packs(tmp_path / "packs", tmp_path / "fresh2")
