"""Helpers for the prepare-pipeline tests: a deterministic varied stub scorer and the mask-invariant checker."""

from __future__ import annotations

import json
import math

import numpy as np

from codeblock.labels.build import IGNORE_INDEX
from codeblock.labels.token_spans import uncovered_nonws


class HashScorer:
    """p_t depends on (token id, previous id) through a fixed hash, so utilities vary but runs are reproducible."""

    def __init__(self):
        self.calls = 0

    def token_logprobs(self, ids_list):
        self.calls += 1
        out = []
        for ids in ids_list:
            arr = np.empty(len(ids), dtype=np.float32)
            for t, tid in enumerate(ids):
                prev = ids[t - 1] if t else 0
                h = ((int(tid) * 2654435761) ^ (int(prev) * 40503)) % 9973
                arr[t] = math.log(0.02 + 0.96 * h / 9973)
            if len(arr):
                arr[0] = np.nan
            out.append(arr)
        return out


def dumps(prepared) -> str:
    return json.dumps({"rows": prepared.rows, "selection": prepared.selection}, sort_keys=True)


def check_mask_invariants(prepared, tokenizer=None, *, supervise_eos=True) -> None:
    """Soundness, completeness and prompt-safety of every written row (method.md §5(h))."""
    recs = {r["index"]: r for r in prepared.selection if r["kept"]}
    assert len(recs) == len(prepared.rows)
    total = 0
    for row in prepared.rows:
        rec = recs[row["example_index"]]
        text, offsets, labels, ids = rec["text"], rec["offsets"], row["labels"], row["input_ids"]
        assert len(labels) == len(ids) == len(row["attention_mask"]) == len(offsets)
        r = rec["response_offset"]
        resp_end = r + rec["response_chars"]
        response = text[r:resp_end]
        nl = set(rec["nl_token_indices"])
        spans = [(s["start"], s["end"]) for s in rec["selected_spans"]]
        sup = [t for t, v in enumerate(labels) if v != IGNORE_INDEX]
        assert all(labels[t] == ids[t] for t in sup)
        eos = rec.get("eos_index")
        for t in sup:
            s, e = offsets[t]
            if t == eos:
                assert supervise_eos, "EOS supervised although supervise_eos is off"
                assert s >= resp_end
                continue
            # inside the response, never prompt/template
            assert r <= s and e <= resp_end, f"supervised token {t} {text[s:e]!r} outside the response"
            if t in nl:
                nl_regions = [(a, b) for k, a, b, _ in rec["segments"] if k == "nl"]
                assert all(any(a <= i - r < b for a, b in nl_regions) for i in range(s, e) if not text[i].isspace())
            else:
                assert any(max(s, a + r) < min(e, b + r) and text[max(s, a + r):min(e, b + r)].strip() for a, b in spans), (
                    f"code token {t} {text[s:e]!r} touches no selected span"
                )
        # completeness: every non-whitespace char of every selected span is covered by a supervised token
        for a, b in spans:
            assert uncovered_nonws(text, offsets, sup, a + r, b + r) == 0
        # decoding each supervised run gives text contained in the response
        runs, cur = [], []
        for t in sup:
            if t == eos:
                continue
            if cur and t != cur[-1] + 1:
                runs.append(cur)
                cur = []
            cur.append(t)
        if cur:
            runs.append(cur)
        for run in runs:
            piece = text[offsets[run[0]][0]:offsets[run[-1]][1]]
            assert piece in response
            if tokenizer is not None:
                decoded = tokenizer.decode([ids[t] for t in run])
                if "\ufffd" not in decoded:
                    assert decoded.strip() in response, f"decoded {decoded!r} not in response"
        assert row["n_supervised"] == len([t for t in sup if t != eos])
        total += row["n_supervised"]
    assert total == prepared.stats["supervised_tokens"]
