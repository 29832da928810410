"""What `prepare` records: one selection record per example (selection.jsonl) and the run summary (stats.json).

Split out of :mod:`codeblock.prepare.pipeline` so the stages stay readable; the pipeline fills the counters, this module
only shapes them. Floats are rounded to 9 decimals (:func:`r9`) so the outputs are byte-stable across runs.

    >>> r9(1 / 3), r9(float("nan")), r9(None)
    (0.333333333, None, None)
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np


def r9(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 9)


def selection_record(example_index: int, rd, idx, items: list[dict], segments: list, selected_ids: list[int],
                     nl: list[int], chosen: list[int], eos_ok: bool, keep_render: bool) -> dict:
    """selection.jsonl row for one example: ``rd`` its rendering, ``idx`` its TokenIndex, ``items`` its item records,
    ``segments`` its ``[kind, start, end, language]`` response segments."""
    by_id = {it["id"]: it for it in items}
    sel_set = set(selected_ids)
    spans = []
    for iid in sorted(selected_ids, key=lambda i: (by_id[i]["start"], i)):
        it = by_id[iid]
        spans.append({"item_id": iid, "start": it["start"], "end": it["end"], "kind": it["kind"], "u": r9(it["u"]),
                      "pi": r9(it["pi"]), "R": r9(it["R"]), "B": r9(it["B"]), "P": r9(it["P"])})
    nl_spans = [[max(0, idx.offsets[t][0] - rd.response_start), min(len(rd.response), idx.offsets[t][1] - rd.response_start)] for t in nl]
    record = {
        "index": example_index,
        "kept": True,
        "drop_reason": None,
        "n_response_tokens": idx.n_response,
        "n_supervised": len(chosen),
        "n_code_tokens": len(chosen) - len(nl),
        "n_nl_tokens": len(nl),
        "eos_supervised": eos_ok,
        "truncated": rd.truncated,
        "response_offset": rd.response_start,
        "response_chars": len(rd.response),
        "response_shift": rd.response_shift,
        "selected_spans": spans,
        "nl_token_indices": list(nl),
        "nl_spans": nl_spans,
        "items": [
            {k: (r9(v) if isinstance(v, float) else v) for k, v in it.items() if k not in ("tokens", "conflicts")}
            | {"n_tokens": len(it["tokens"]), "selected": it["id"] in sel_set}
            for it in items
        ],
        "segments": segments,
    }
    if keep_render:
        record["text"] = rd.text[: rd.kept_char_end]
        record["offsets"] = [list(o) for o in rd.offsets]
        record["eos_index"] = rd.eos_index
    return record


def run_stats(config, *, n_input: int, n_valid: int, n_pair_selected: int, n_kept: int, drops: Counter,
              totals: Counter, eos_logps: list[float], t_kept: int, t_pool: int, budget: int | None,
              b_code: int | None, code_used: int, seed_overshoot: int, item_stats: dict, pair_info: dict,
              template: str, skip_samples, timings: dict) -> dict:
    """stats.json's counting part (``codeblock.cli.prepare`` adds input hash, config and versions)."""
    resp = totals["response_tokens"]
    nl_used = totals["nl_tokens"]
    return {
        "supervision": config.supervision,
        "n_input": n_input,
        "n_valid": n_valid,
        "n_pair_selected": n_pair_selected,
        "n_kept": n_kept,
        "n_dropped": dict(sorted(drops.items())),
        "n_dropped_total": sum(drops.values()),
        "n_eos_only_rows": totals["eos_only_rows"],
        "response_tokens": resp,
        "supervised_tokens": totals["supervised_tokens"],
        "supervised_fraction": round(totals["supervised_tokens"] / resp, 9) if resp else 0.0,
        "supervised_fraction_with_eos": round((totals["supervised_tokens"] + totals["eos_tokens"]) / resp, 9) if resp else 0.0,
        "code_tokens": totals["code_tokens"],
        "nl_tokens": nl_used,
        "eos": {
            "policy": "supervised" if config.supervise_eos else "not_supervised",
            "supervised": totals["eos_tokens"],
            "rows_without_eos": totals["eos_missing"],
            "mean_logp_under_scorer": r9(float(np.mean(eos_logps))) if eos_logps else None,
            "mean_p_under_scorer": r9(float(np.mean(np.exp(eos_logps)))) if eos_logps else None,
        },
        "budget": {
            "denominator": config.budget_denominator,
            "T_selected_pairs": t_kept,
            "T_pool": t_pool,
            "B": budget,
            "B_code": b_code,
            "code_used": code_used,
            "nl_used": nl_used,
            "ratio_selected_pairs": round((code_used + nl_used) / t_kept, 9) if t_kept else 0.0,
            "ratio_pool": round((code_used + nl_used) / t_pool, 9) if t_pool else 0.0,
            "seed_overshoot": seed_overshoot,
        },
        "items": item_stats,
        "pair_selection": pair_info,
        "truncated_rows": totals["truncated_rows"],
        "template": template,
        "skip_samples": skip_samples,
        "timings_s": timings,
    }
