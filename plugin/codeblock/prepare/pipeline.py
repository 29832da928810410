"""The `prepare` pipeline as a library call: rows -> tokenized rows with sparse CodeBlock labels.

    normalise -> render+tokenize once -> pair selection -> structure analysis -> score -> item utilities
    -> gated priorities -> global budget (coverage + fill) -> NL tokens -> labels -> drop rows with nothing supervised

    >>> from codeblock.prepare.pipeline import prepare_dataset               # doctest: +SKIP
    >>> out = prepare_dataset(rows, tokenizer=tok, scorer=Scorer("smollm2-135m-instruct"))  # doctest: +SKIP
    >>> out.rows[0].keys()                                           # doctest: +SKIP
    dict_keys(['input_ids', 'attention_mask', 'labels', 'example_index', 'n_response_tokens', 'n_supervised'])

``scorer`` is anything with ``token_logprobs(list_of_id_lists) -> [float32 array, logp[0] = nan]`` (see
:mod:`codeblock.scoring.scorer`). The output is a pure function of the input rows, the tokenizer, the stored scores and the
config: every sort has a total key, and floats are rounded to 9 decimals before comparison.

``config.supervision`` swaps the selection for a baseline policy (method.md §3, :mod:`codeblock.selection.policies`):
token-level policies (``full``, ``random_tokens``, ``gce_tokens``, ``excess_tokens``) replace the item, budget-split and
NL passes by one token choice over the kept pairs; ``full`` and ``random_tokens`` skip the scoring pass (``scorer`` may
be None unless the pair selector needs IFD); ``random_items`` keeps the item passes with a random priority.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codeblock.config import CodeBlockConfig
from codeblock.data_io import Example, SkipLog, normalize_rows
from codeblock.labels.build import build_labels
from codeblock.labels.render import Renderer, RenderSkip
from codeblock.labels.token_spans import TokenIndex
from codeblock.prepare.report import r9, run_stats, selection_record, structure_summary
from codeblock.scoring.gce import aggregate, token_scores
from codeblock.selection.budget import (
    Candidate,
    CodeSelection,
    code_budget,
    gated_priority,
    percentile_ranks,
    select_items,
    total_budget,
)
from codeblock.selection.nl_tokens import make_units, nl_candidates, select_nl
from codeblock.selection.policies import (
    excess_ce,
    is_token_level,
    needs_reference,
    needs_scores,
    random_priorities,
    select_tokens,
    split_code_nl,
)


@dataclass
class PreparedDataset:
    rows: list[dict]  # input_ids, attention_mask, labels, example_index, n_response_tokens, n_supervised
    selection: list[dict]  # one record per example that reached selection (kept or dropped afterwards)
    stats: dict = field(default_factory=dict)
    pair_scores: list[dict] = field(default_factory=list)  # per pool row: IFD and its two CEs, kept (IFD selectors)


@dataclass
class _Work:
    """Per-example state carried through the stages."""

    example: Example
    rendered: Any
    index: TokenIndex
    analysis: Any = None
    logp: np.ndarray | None = None
    scores: np.ndarray | None = None
    excess: np.ndarray | None = None  # supervision=excess_tokens: logp_ref - logp_base
    items: list[dict] = field(default_factory=list)  # item records (dicts) with token sets and scores


class _Timer:
    def __init__(self):
        self.times: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = round(self.times.get(name, 0.0) + time.perf_counter() - t0, 4)


def _structure_config(config: CodeBlockConfig):
    from codeblock.structure.analysis import StructureConfig

    names = {f.name for f in dataclasses.fields(StructureConfig)}
    wanted = {
        "default_language": config.default_language,
        "unfenced_policy": config.unfenced_policy,
        "return_edges": config.return_edges,
        "bridge_mode": config.bridge_mode,
        "granularity": config.granularity,
        "code_languages": tuple(config.code_languages),
        "block_max_tokens": config.block_max_tokens,
        "exclude_main_body": config.exclude_main_body,
        "merge_units": config.merge_units,
    }
    return StructureConfig(**{k: v for k, v in wanted.items() if k in names})


class _MemoScorer:
    """Remembers log-probs by token ids within one run, so IFD's conditioned pass is reused by the scoring stage."""

    def __init__(self, scorer):
        self.scorer = scorer
        self.memo: dict[tuple, np.ndarray] = {}

    def token_logprobs(self, ids_list):
        keys = [tuple(int(t) for t in ids) for ids in ids_list]
        todo = list(dict.fromkeys(k for k in keys if k not in self.memo))
        if todo:
            for k, lp in zip(todo, self.scorer.token_logprobs([list(k) for k in todo])):
                self.memo[k] = np.asarray(lp, dtype=np.float32)
        return [self.memo[k].copy() for k in keys]


def _select_pairs(works: list[_Work], config: CodeBlockConfig, scorer, renderer: Renderer
                  ) -> tuple[list[int], dict, list[dict]]:
    """Positions (into ``works``) kept by the configured pair selector, in input order, selector stats, and the
    per-row IFD record (``pair_scores.jsonl``; empty when the selector computed no IFD)."""
    n = len(works)
    if config.pair_selector == "none" or n == 0:
        return list(range(n)), {"method_used": "none"}, []
    from codeblock.scoring.scorer import ifd_details
    from codeblock.selection.pairs import select_pairs

    details: list[dict] = []

    def ifd_fn(pairs):
        # IFD over the exact training tokenization: conditioned = the rendered example itself, unconditioned = the
        # same template with an empty prompt (method.md §2(a)); both averaged over the response characters that
        # survive truncation in both renderings.
        passes = []
        for w in works:
            empty = Example(w.example.index, [{"role": "user", "content": ""}], w.example.response, "")
            rd = renderer.render(empty)
            idx = TokenIndex(rd.text, rd.offsets, rd.response_start, rd.response_end, rd.special)
            common = min(w.rendered.kept_response_chars, rd.kept_response_chars)
            passes.append((w.rendered.input_ids, w.index.response_tokens_before(common),
                           rd.input_ids, idx.response_tokens_before(common)))
        details[:] = ifd_details(scorer, passes)
        return [d["ifd"] for d in details]

    result = select_pairs(
        [w.example.extra for w in works],
        config.pair_selector,
        config.pair_keep_ratio,
        config.seed,
        instruction_texts=[w.example.instruction for w in works],
        response_texts=[w.example.response for w in works],
        ifd_fn=ifd_fn if scorer.scorer is not None else None,  # no scorer: select_pairs says IFD needs one
        quality_field=config.quality_field,
        embedding=config.embedding,
        longtail_k=config.longtail_k,
    )
    info = {"method_used": result.method_used, **{k: v for k, v in result.stats.items() if isinstance(v, (int, float, str))}}
    kept = set(result.kept_indices)
    pair_scores = [{"example_index": w.example.index, "kept": k in kept, **{key: r9(v) for key, v in d.items()}}
                   for k, (w, d) in enumerate(zip(works, details))]
    return list(result.kept_indices), info, pair_scores


def prepare_dataset(
    rows: list[Any],
    *,
    tokenizer,
    scorer,
    config: CodeBlockConfig | None = None,
    progress: bool = True,
    reference_scorer=None,
    read_skips: SkipLog | None = None,
    keep_render: bool = True,
) -> PreparedDataset:
    """Run the whole CodeBlock data pipeline on raw ``rows`` (dicts in any supported shape).

    ``read_skips``: skips found while reading the file (from :func:`codeblock.data_io.load_rows`), merged into stats.
    ``keep_render``: store the rendered text + token offsets in each selection record (needed by ``inspect``).
    """
    from tqdm.auto import tqdm

    config = config or CodeBlockConfig()
    timer = _Timer()
    drops: Counter = Counter()
    skip_log = SkipLog()
    if read_skips is not None:
        skip_log.merge(read_skips)

    with timer.stage("load"):
        examples, norm_skips = normalize_rows(rows, config)
        skip_log.merge(norm_skips)
    drops.update(skip_log.counts)

    with timer.stage("render_tokenize"):
        renderer = Renderer(tokenizer, template=config.template, max_seq_length=config.max_seq_length, system_prompt=config.system_prompt)
        works: list[_Work] = []
        for ex in tqdm(examples, desc="render+tokenize", unit="row", disable=None if progress else True):
            try:
                rendered = renderer.render(ex)
            except RenderSkip as skip:
                drops[skip.reason] += 1
                skip_log.add(ex.index, skip.reason, skip.detail)
                continue
            idx = TokenIndex(rendered.text, rendered.offsets, rendered.response_start, rendered.response_end, rendered.special)
            if idx.n_response == 0:
                drops["response_truncated"] += 1
                skip_log.add(ex.index, "response_truncated", f"prompt fills max_seq_length={config.max_seq_length}")
                continue
            works.append(_Work(ex, rendered, idx))
    t_pool = sum(w.index.n_response for w in works)

    with timer.stage("pair_selection"):
        scorer = _MemoScorer(scorer)
        kept_pos, pair_info, pair_scores = _select_pairs(works, config, scorer, renderer)
        drops["pair_selection"] += len(works) - len(kept_pos)
        works = [works[i] for i in kept_pos]
    t_kept = sum(w.index.n_response for w in works)

    with timer.stage("analyze"):
        scfg = _structure_config(config)
        from codeblock.structure.analysis import analyze_response

        for w in tqdm(works, desc="analyzing responses", unit="row", disable=None if progress else True):
            w.analysis = analyze_response(w.rendered.response, scfg)

    sup = config.supervision
    token_level = is_token_level(sup)
    with timer.stage("score"):
        if needs_scores(sup) and works:
            _score(works, config, scorer, reference_scorer)

    with timer.stage("utilities"):
        item_stats = structure_summary(works) if token_level else _build_items(works, config)
        selectable = [(k, it) for k, w in enumerate(works) for it in w.items if it["selectable"]]
        pis = percentile_ranks([it["u"] for _, it in selectable])
        # B6 (random_items): the same passes below, ordered by a seeded random rank instead of the gated priority.
        rand_p = random_priorities(len(selectable), config.seed) if sup == "random_items" else None
        candidates = []
        for n, ((k, it), pi) in enumerate(zip(selectable, pis)):
            it["pi"] = pi
            it["P"] = (rand_p[n] if rand_p is not None else
                       gated_priority(pi, it["R"], it["B"], config.lambda_reach, config.lambda_bridge, config.gate_quantile))
            candidates.append(Candidate(k, it["id"], it["start"], tuple(it["tokens"]), it["P"], tuple(it.get("conflicts", ()))))

    with timer.stage("budget"):
        t_den = t_kept if config.budget_denominator == "selected_pairs" else t_pool
        budget = total_budget(config.budget_ratio, t_den)
        b_code = code_budget(budget, config.nl_share)
        n_resp = {k: w.index.n_response for k, w in enumerate(works)}
        if token_level:
            ranking = [w.excess if sup == "excess_tokens" else w.scores for w in works] if needs_scores(sup) else None
            picked = select_tokens(sup, [w.index.response_tokens for w in works], budget=budget, seed=config.seed, scores=ranking)
            sel = CodeSelection()
        else:
            sel = select_items(
                candidates, n_resp, b_code, max_example_fraction=config.max_example_fraction, scope=config.selection_scope,
                quota_ratio=(budget / t_kept if t_kept else 0.0), nl_share=config.nl_share,
            )

    with timer.stage("nl_tokens"):
        nl_taken: dict[int, list[int]] = {}
        if token_level:  # no NL pass: split the picked tokens into code / not-code for the stats
            for k, toks in picked.items():
                code_spans = [(s.start + works[k].rendered.response_start, s.end + works[k].rendered.response_start)
                              for s in works[k].analysis.segments if s.kind == "code"]
                code, nl_taken[k] = split_code_nl(toks, works[k].index.offsets, code_spans)
                sel.tokens[k] = set(code)
        elif config.nl_share > 0:
            units = []
            for k, w in enumerate(works):
                cands = nl_candidates(w.index, w.analysis.nl_spans())
                units.extend(make_units(k, w.index, cands, w.scores, config.nl_unit))
            used = {k: sel.count(k) for k in n_resp}
            if config.selection_scope == "per_example":
                nl_taken = {}
                for k in n_resp:
                    quota = max(sel.caps.get(k, 0), used[k])
                    mine = [u for u in units if u.example == k]
                    nl_taken.update(select_nl(mine, max(0, quota - used[k]), {k: quota}, {k: used[k]}))
            else:
                nl_taken = select_nl(units, max(0, budget - sel.used), sel.caps, used)

    with timer.stage("labels"):
        out_rows, records = [], []
        totals = Counter()
        eos_logps = []
        for k, w in enumerate(works):
            code_tokens = sel.tokens.get(k, set())
            nl = nl_taken.get(k, [])
            chosen = sorted(code_tokens | set(nl))
            rd = w.rendered
            eos_ok = config.supervise_eos and rd.eos_index is not None
            lp = w.logp  # None when the policy skipped scoring
            if lp is not None and rd.eos_index is not None and rd.eos_index < len(lp) and math.isfinite(float(lp[rd.eos_index])):
                eos_logps.append(float(lp[rd.eos_index]))
            record = selection_record(w, sel.selected.get(k, []), nl, chosen, eos_ok, keep_render)
            eos_only = not chosen and eos_ok and config.keep_eos_only_rows
            if not chosen and not eos_only:
                drops["no_supervised_tokens"] += 1
                skip_log.add(w.example.index, "no_supervised_tokens",
                             f"{sup} selected no token" if token_level else "no item or NL token selected")
                record["kept"], record["drop_reason"] = False, "no_supervised_tokens"
                records.append(record)
                continue
            labels = build_labels(rd.input_ids, chosen, eos_index=rd.eos_index, supervise_eos=config.supervise_eos)
            out_rows.append({
                "input_ids": list(rd.input_ids),
                "attention_mask": [1] * len(rd.input_ids),
                "labels": labels,
                "example_index": w.example.index,
                "n_response_tokens": w.index.n_response,
                "n_supervised": len(chosen),
            })
            records.append(record)
            totals["response_tokens"] += w.index.n_response
            totals["supervised_tokens"] += len(chosen)
            totals["code_tokens"] += len(code_tokens)
            totals["nl_tokens"] += len(nl)
            totals["eos_tokens"] += int(eos_ok)
            totals["eos_only_rows"] += int(eos_only)
            totals["eos_missing"] += int(rd.eos_index is None)
            totals["truncated_rows"] += int(rd.truncated)

    stats = run_stats(
        config, n_input=len(rows), n_valid=len(examples), n_pair_selected=len(works), n_kept=len(out_rows), drops=drops,
        totals=totals, eos_logps=eos_logps, t_kept=t_kept, t_pool=t_pool, budget=None if sup == "full" else budget,
        b_code=None if token_level else b_code, code_used=totals["code_tokens"] if token_level else sel.used,
        seed_overshoot=sel.seed_overshoot, item_stats=item_stats, pair_info=pair_info, template=renderer.mode,
        skip_samples=skip_log.samples, timings=timer.times,
    )
    return PreparedDataset(out_rows, records, stats, pair_scores)


def _score(works: list[_Work], config: CodeBlockConfig, scorer, reference_scorer) -> None:
    """One scoring pass: w.logp, w.scores (g_t per utility_mode) and, for excess_tokens, w.excess (plain CE)."""
    if scorer.scorer is None:
        raise ValueError(f"supervision={config.supervision} needs a scorer (codeblock.scoring.scorer.Scorer)")
    logps = scorer.token_logprobs([w.rendered.input_ids for w in works])
    ref_logps = None
    if needs_reference(config.supervision, config.utility_mode):
        if reference_scorer is None:
            raise ValueError(f"utility_mode={config.utility_mode}/supervision={config.supervision} needs reference_scorer "
                             "(the fine-tuned reference model)")
        ref_logps = reference_scorer.token_logprobs([w.rendered.input_ids for w in works])
    for k, w in enumerate(works):
        w.logp = np.asarray(logps[k], dtype=np.float32)
        ref = np.asarray(ref_logps[k], dtype=np.float32) if config.utility_mode.startswith("excess") else None
        w.scores = token_scores(w.logp, config.utility_mode, config.gce_q, ref)
        if config.supervision == "excess_tokens":
            w.excess = excess_ce(w.logp, np.asarray(ref_logps[k], dtype=np.float32))


def _build_items(works: list[_Work], config: CodeBlockConfig) -> dict:
    """Token-level item rules (|tok| bounds, inside the untruncated text, min core tokens) + utilities u_i."""
    reasons: Counter = Counter()
    by_lang: Counter = Counter()
    n_units = n_opaque = 0
    err_bytes = 0.0
    for w in works:
        a = w.analysis
        reach, bridge = a.reach(), a.bridge()
        n_units += len(a.units)
        n_opaque += sum(1 for u in a.units if u.opaque)
        err_bytes += sum(u.error_fraction for u in a.units)
        kept_chars = w.rendered.kept_response_chars
        items = []
        for item in a.items:
            toks = w.index.tok(item.start, item.end)
            core = w.index.tok_spans(item.core_spans)
            rec = {
                "id": item.id, "unit_id": item.unit_id, "kind": item.kind, "language": item.language,
                "start": item.start, "end": item.end, "tokens": toks, "n_core": len(core),
                "R": float(reach.get(item.id, 0.0)), "B": float(bridge.get(item.id, 0.0)),
                "u": math.nan, "pi": None, "P": None, "selectable": bool(item.selectable), "reason": item.reason,
            }
            if rec["selectable"]:
                g = [float(w.scores[t]) for t in core if t < len(w.scores)]
                reason = None
                if item.end > kept_chars:
                    reason = "truncated"
                elif not toks:
                    reason = "no_tokens"
                elif len(toks) > config.max_item_tokens:
                    reason = "too_many_tokens"
                elif item.kind == "block" and len(toks) > config.block_max_tokens:
                    reason = "block_too_long"
                elif len(core) < max(1, config.min_core_tokens):
                    reason = "too_few_core_tokens"
                elif not all(math.isfinite(x) for x in g):
                    reason = "no_score"
                if reason:
                    rec["selectable"], rec["reason"] = False, reason
                else:
                    rec["u"] = aggregate(g, config.utility_agg)  # u_i (method.md §2(d)), scoring.gce
            reasons[rec["reason"] or "selectable"] += 1
            by_lang[item.language] += 1
            items.append(rec)
        if any(it["kind"] == "block" for it in items):
            _block_conflicts(items)
        w.items = items
    return {
        "n_items": sum(reasons.values()),
        "n_selectable": reasons.get("selectable", 0),
        "by_reason": dict(sorted(reasons.items())),
        "by_language": dict(sorted(by_lang.items())),
        "n_units": n_units,
        "n_opaque_units": n_opaque,
        # units over dataflow.MAX_GRAPH_NODES items: reach and bridge skipped (R = B = 0), warned when analysed
        "n_units_graph_skipped": sum(1 for w in works for u in w.analysis.units if u.graph_skipped),
        "mean_unit_error_fraction": round(err_bytes / n_units, 6) if n_units else 0.0,
    }


def _block_conflicts(items: list[dict]) -> None:
    """granularity=block: a block item and the items inside it are mutually exclusive."""
    blocks = [it for it in items if it["kind"] == "block"]
    for b in blocks:
        inner = [it for it in items if it is not b and it["unit_id"] == b["unit_id"] and b["start"] <= it["start"] and it["end"] <= b["end"]]
        b["conflicts"] = [it["id"] for it in inner]
        for it in inner:
            it.setdefault("conflicts", []).append(b["id"])
