"""Dynamic pack: labels survive, boundaries are isolated (eager + sdpa), padding shrinks."""

from __future__ import annotations

import pytest

from codeblock.labels.packing import pack_rows, padding_report

torch = pytest.importorskip("torch")


def test_pack_rows_keeps_every_label_and_resets_positions():
    rows = [{"input_ids": list(range(1, n + 1)), "labels": [-100] + list(range(2, n + 1))} for n in (5, 3, 7, 2, 6)]
    packs = pack_rows(rows, max_length=10)
    assert sorted(i for p in packs for i in p["source_rows"]) == list(range(5))
    for p in packs:
        assert len(p["input_ids"]) <= 10 and sum(p["seq_lengths"]) == len(p["input_ids"])
        starts = [i for i, v in enumerate(p["position_ids"]) if v == 0]
        assert all(p["labels"][s] == -100 for s in starts)
    assert sum(sum(v != -100 for v in p["labels"]) for p in packs) == sum(sum(v != -100 for v in r["labels"]) for r in rows)
    assert pack_rows(rows, 10) == pack_rows(rows, 10)  # deterministic
    with pytest.raises(ValueError, match="truncate"):
        pack_rows(rows, max_length=4)


def test_first_label_of_every_member_is_forced_to_ignore():
    """Rows whose first label is a real target (a user's own labels): packing must still ignore it, or the loss
    would predict one member's first token from the previous member's last one."""
    rows = [{"input_ids": [7, 8, 9], "labels": [7, 8, 9]}, {"input_ids": [4, 5], "labels": [4, -100]}]
    [pack] = pack_rows(rows, max_length=8)
    starts = [i for i, v in enumerate(pack["position_ids"]) if v == 0]
    assert len(starts) == 2 and all(pack["labels"][s] == -100 for s in starts)
    assert sorted(v for v in pack["labels"] if v != -100) == [8, 9]  # only the two boundary targets were dropped


def test_padding_report():
    rep = padding_report([100, 10, 90, 20, 80, 30], max_length=128, batch_size=2)
    assert rep.n_packs == 3 and rep.padding_unpacked > rep.padding_packed
    assert 0 < rep.padding_reduction <= 1


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_packed_per_token_loss_equals_unpacked(tiny_model_dir, attn):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from codeblock import CodeBlockCollator
    from support.training_helpers import CODE_ROWS
    from support.training_helpers import span_labels

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation=attn)
    rows = [span_labels(tok, r) for r in CODE_ROWS]
    packs = pack_rows(rows, max_length=160)
    assert len(packs) < len(rows)
    batch = CodeBlockCollator(tok)(packs)  # padded packed rows: position_ids, no attention_mask
    assert "position_ids" in batch and "attention_mask" not in batch
    with torch.no_grad():
        logp_packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits.log_softmax(-1)
        for b, p in enumerate(packs):
            off = 0
            for src, n in zip(p["source_rows"], p["seq_lengths"]):
                ids = torch.tensor([rows[src]["input_ids"]])
                ref = model(input_ids=ids).logits.log_softmax(-1)[0]
                assert torch.allclose(logp_packed[b, off:off + n], ref, atol=1e-5), (attn, src)
                off += n
