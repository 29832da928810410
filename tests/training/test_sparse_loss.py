"""Sparse LM-head loss == dense masked cross-entropy (fp32, 1e-5), incl. PEFT, gradient accumulation and packing."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from codeblock.labels.packing import pack_rows  # noqa: E402
from codeblock.training.sparse_loss import pick_mode, sparse_causal_lm_loss, sparse_causal_lm_loss_with_stats  # noqa: E402
from support.training_helpers import CODE_ROWS  # noqa: E402
from support.training_helpers import pad_batch, span_labels  # noqa: E402


@pytest.fixture(scope="module")
def tok_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    return tok, model


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_close_grads(a, b, tol=1e-5):
    assert a.keys() == b.keys() and a
    for n in a:
        assert torch.allclose(a[n], b[n], atol=tol, rtol=1e-4), n


def test_sparse_equals_dense_loss_and_grads(tok_model):
    tok, model = tok_model
    batch = pad_batch([span_labels(tok, r) for r in CODE_ROWS], tok.pad_token_id)
    assert 0 < int((batch["labels"] != -100).sum()) < int(batch["attention_mask"].sum())
    model.zero_grad()
    dense = model(**batch).loss
    dense.backward()
    g_dense = _grads(model)
    model.zero_grad()
    res = sparse_causal_lm_loss_with_stats(model, batch, mode="gather")
    res.loss.backward()
    g_sparse = _grads(model)
    assert abs(dense.item() - res.loss.item()) < 1e-5
    _assert_close_grads(g_dense, g_sparse)
    # Only the supervised rows went through the head.
    assert res.n_projected == int((batch["labels"][:, 1:] != -100).sum()) == res.n_supervised
    # keep-mode (logits_to_keep index tensor) agrees too
    keep = sparse_causal_lm_loss(model, batch, mode="keep")
    assert abs(dense.item() - keep.item()) < 1e-5


def test_masked_label_changes_do_not_change_loss(tok_model):
    tok, model = tok_model
    batch = pad_batch([span_labels(tok, r) for r in CODE_ROWS[:2]], tok.pad_token_id)
    base = sparse_causal_lm_loss(model, batch).item()
    ids2 = batch["input_ids"].clone()
    # changing a token's *label* where it is masked changes nothing; changing a supervised target does
    lab = batch["labels"].clone()
    sup = (lab != -100).nonzero()[0]
    lab[tuple(sup)] = (lab[tuple(sup)] + 1) % 300
    changed = sparse_causal_lm_loss(model, {**batch, "input_ids": ids2, "labels": lab}).item()
    assert abs(changed - base) > 1e-4


def test_gradient_accumulation_normalisation(tok_model):
    """Two micro-batches normalised by num_items_in_batch == one full batch (dense and sparse agree)."""
    tok, model = tok_model
    rows = [span_labels(tok, r) for r in CODE_ROWS]
    mbs = [pad_batch(rows[:1], tok.pad_token_id), pad_batch(rows[1:], tok.pad_token_id)]
    n_items = sum(int((m["labels"][:, 1:] != -100).sum()) for m in mbs)
    model.zero_grad()
    dense_total = 0.0
    for m in mbs:
        loss = model(**m, num_items_in_batch=torch.tensor(n_items)).loss
        loss.backward()
        dense_total += loss.item()
    g_dense = _grads(model)
    model.zero_grad()
    sparse_total = 0.0
    for m in mbs:
        loss = sparse_causal_lm_loss(model, m, num_items_in_batch=torch.tensor(n_items))
        loss.backward()
        sparse_total += loss.item()
    g_sparse = _grads(model)
    assert abs(dense_total - sparse_total) < 1e-5
    _assert_close_grads(g_dense, g_sparse)
    # and the accumulated loss equals the token mean over all rows at once
    full = sparse_causal_lm_loss(model, pad_batch(rows, tok.pad_token_id)).item()
    assert abs(full - sparse_total) < 1e-5


def test_packed_sparse_equals_unpacked_dense(tok_model):
    tok, model = tok_model
    rows = [span_labels(tok, r) for r in CODE_ROWS]
    unpacked = pad_batch(rows, tok.pad_token_id)
    model.zero_grad()
    dense = model(**unpacked).loss
    dense.backward()
    g_dense = _grads(model)
    packs = pack_rows(rows, max_length=4096)
    assert len(packs) == 1
    packed = {k: torch.tensor([packs[0][k]]) for k in ("input_ids", "labels", "position_ids")}
    model.zero_grad()
    sparse = sparse_causal_lm_loss(model, packed)
    sparse.backward()
    assert abs(dense.item() - sparse.item()) < 1e-5
    _assert_close_grads(g_dense, _grads(model))


def test_peft_lora_model(tok_model):
    from peft import LoraConfig, get_peft_model

    tok, base = tok_model
    import copy

    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                           init_lora_weights=False))
    assert pick_mode(model) == "gather"
    batch = pad_batch([span_labels(tok, r) for r in CODE_ROWS], tok.pad_token_id)
    model.zero_grad()
    dense = model(**batch).loss
    dense.backward()
    g_dense = _grads(model)
    model.zero_grad()
    sparse = sparse_causal_lm_loss(model, batch)
    sparse.backward()
    g_sparse = _grads(model)
    assert abs(dense.item() - sparse.item()) < 1e-5
    assert all("lora_" in n for n in g_sparse)
    _assert_close_grads(g_dense, g_sparse)


def test_no_labels_is_an_error(tok_model):
    tok, model = tok_model
    batch = pad_batch([span_labels(tok, CODE_ROWS[0])], tok.pad_token_id)
    batch.pop("labels")
    with pytest.raises(ValueError, match="labels"):
        sparse_causal_lm_loss(model, batch)
