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

Bounded memory: the rows are read once per pass, never held (:func:`prepare_stream`; the input must be re-readable:
a list, or a file read through :class:`codeblock.data_io.RowStream`). Pass 1 (:mod:`codeblock.prepare.collect`)
keeps a compact selection state; the global steps (pair selection, priorities, budget, NL pass) run once on it;
pass 2 (:mod:`codeblock.prepare.write`) renders the kept rows again and writes them out one by one.

``config.supervision`` swaps the selection for a baseline policy (method.md §3, :mod:`codeblock.selection.policies`):
token-level policies (``full``, ``random_tokens``, ``gce_tokens``, ``excess_tokens``) replace the item, budget-split and
NL passes by one token choice over the kept pairs; ``full`` and ``random_tokens`` skip the scoring pass (``scorer`` may
be None unless the pair selector needs IFD); ``random_items`` keeps the item passes with a random priority.
"""

from __future__ import annotations

import time
from array import array
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from codeblock.config import CodeBlockConfig
from codeblock.data_io import Example, SkipLog
from codeblock.labels.render import Renderer
from codeblock.labels.token_spans import TokenIndex
from codeblock.prepare.collect import (
    CHUNK_ROWS,
    Collected,
    MemoScorer,
    Pool,
    batch_invariant,
    chunks,
    collect,
    nl_units_by_example,
    read_pool,
    rendered_rows,
)
from codeblock.prepare.report import r9, run_stats
from codeblock.prepare.write import Decisions, ListSink, write_rows
from codeblock.selection.budget import (
    Candidate,
    CodeSelection,
    code_budget,
    gated_priority,
    percentile_ranks,
    select_items,
    total_budget,
)
from codeblock.selection.nl_tokens import select_nl
from codeblock.selection.policies import is_token_level, needs_scores, random_priorities, select_tokens


@dataclass
class PreparedDataset:
    rows: list[dict] | None  # input_ids, attention_mask, labels, example_index, n_response_tokens, n_supervised
    selection: list[dict] | None  # one record per example that reached selection (kept or dropped afterwards)
    stats: dict = field(default_factory=dict)
    pair_scores: list[dict] = field(default_factory=list)  # per pool row: IFD and its two CEs, kept (IFD selectors)
    # rows / selection are None when a FileSink wrote them (codeblock prepare)


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


class ListRows:
    """A list of raw rows as a re-readable ``(index, row)`` source."""

    def __init__(self, rows: Sequence[Any]):
        self.rows = rows

    def __iter__(self):
        return enumerate(self.rows)


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
    """Run the whole CodeBlock data pipeline on raw ``rows`` (dicts in any supported shape); results in memory.

    ``read_skips``: skips found while reading the file (from :func:`codeblock.data_io.load_rows`), merged into stats.
    ``keep_render``: store the rendered text + token offsets in each selection record (needed by ``inspect``).
    """
    rows = list(rows) if not isinstance(rows, (list, tuple)) else rows
    return prepare_stream(ListRows(rows), tokenizer=tokenizer, scorer=scorer, config=config, sink=ListSink(),
                          progress=progress, reference_scorer=reference_scorer,
                          read_skips=[read_skips] if read_skips is not None else [], keep_render=keep_render)


def prepare_stream(source: Iterable, *, tokenizer, scorer, config: CodeBlockConfig | None, sink, progress: bool = True,
                   reference_scorer=None, read_skips: Sequence[SkipLog] = (), keep_render: bool = True
                   ) -> PreparedDataset:
    """The pipeline over a re-readable ``source`` of ``(index, raw row)`` pairs, output to ``sink``
    (:mod:`codeblock.prepare.write`). ``read_skips`` are merged, in order, after the first pass (a
    :class:`~codeblock.data_io.RowStream` fills its own ``skips`` during that pass)."""
    config = config or CodeBlockConfig()
    timer = _Timer()
    drops: Counter = Counter()
    skip_log, norm_skips, render_skips = SkipLog(), SkipLog(), SkipLog()
    renderer = Renderer(tokenizer, template=config.template, max_seq_length=config.max_seq_length, system_prompt=config.system_prompt)

    with timer.stage("render_tokenize"):
        pool = read_pool(source, config, renderer, norm_skips, render_skips, progress)
    n_input = len(source.rows) if isinstance(source, ListRows) else source.n_rows
    n_valid = pool.n_valid
    for log in (*read_skips, norm_skips, render_skips):
        skip_log.merge(log)
        drops.update(log.counts)
    t_pool = sum(pool.n_response)

    def works(wanted):
        return lambda: rendered_rows(source, config, renderer, wanted=wanted)

    with timer.stage("pair_selection"):
        scorer = MemoScorer(scorer)
        kept_pos, pair_info, pair_scores = _select_pairs(pool, config, scorer, works(set(pool.index)), renderer)
        drops["pair_selection"] += len(pool.index) - len(kept_pos)
        kept = {pool.index[i] for i in kept_pos}
        kept_rows = (array("q", (pool.index[i] for i in kept_pos)), array("l", (pool.n_response[i] for i in kept_pos)))
        t_kept = sum(kept_rows[1])
        n_pair_selected = len(kept_pos)
        del pool, kept_pos

    sup = config.supervision
    token_level = is_token_level(sup)
    reference = MemoScorer(reference_scorer) if reference_scorer is not None else None
    state = collect(_checked(works(kept), *kept_rows), n_pair_selected, config, scorer, reference, progress, timer)
    del kept_rows

    with timer.stage("utilities"):
        candidates, pis, priorities = _priorities(state, config)

    with timer.stage("budget"):
        t_den = t_kept if config.budget_denominator == "selected_pairs" else t_pool
        budget = total_budget(config.budget_ratio, t_den)
        b_code = code_budget(budget, config.nl_share)
        picked = None
        if token_level:
            picked = select_tokens(sup, state.pools, budget=budget, seed=config.seed,
                                   scores=state.ranking if needs_scores(sup) else None)
            state.pools = state.ranking = None
            sel = CodeSelection()
        else:
            sel = select_items(
                candidates, state.n_resp, b_code, max_example_fraction=config.max_example_fraction,
                scope=config.selection_scope, quota_ratio=(budget / t_kept if t_kept else 0.0), nl_share=config.nl_share,
            )
        del candidates

    with timer.stage("nl_tokens"):
        nl_taken = _nl_pass(state, sel, config, budget) if not token_level and config.nl_share > 0 else {}

    with timer.stage("labels"):
        decisions = Decisions(sel.tokens, sel.selected, nl_taken, pis, priorities, picked)
        again = _checked(works(kept), state.index, list(state.n_resp.values()))  # pass 2: the kept rows, re-rendered
        written = write_rows(again(), state.rows(), decisions, config, sink, skip_log, token_level=token_level,
                             keep_render=keep_render)
        drops.update(written.drops)
        state.spill.close()

    stats = run_stats(
        config, n_input=n_input, n_valid=n_valid,
        n_pair_selected=n_pair_selected, n_kept=written.n_kept, drops=drops,
        totals=written.totals, eos_logps=state.eos_logps, t_kept=t_kept, t_pool=t_pool, budget=None if sup == "full" else budget,
        b_code=None if token_level else b_code, code_used=written.totals["code_tokens"] if token_level else sel.used,
        seed_overshoot=sel.seed_overshoot, item_stats=state.tally.summary(), pair_info=pair_info, template=renderer.mode,
        skip_samples=skip_log.samples, timings=timer.times,
    )
    return PreparedDataset(sink.rows, sink.selection, stats, pair_scores)


_CHANGED = ("prepare: the input changed between passes (it is read once per pass, not held; do not modify --data while "
            "prepare runs)")


def _checked(make_works, indices: Sequence[int], n_response: Sequence[int]):
    """``make_works`` whose passes must yield the rows pass 1 saw (example indices, response token counts), in order;
    anything else means the input changed under us: a clear error, never labels from another row."""

    def run():
        k = 0
        for w in make_works():
            if k >= len(indices) or w.example.index != indices[k] or w.index.n_response != n_response[k]:
                raise RuntimeError(_CHANGED)
            k += 1
            yield w
        if k != len(indices):
            raise RuntimeError(_CHANGED)

    return run


def _select_pairs(pool: Pool, config: CodeBlockConfig, scorer: MemoScorer, make_works, renderer: Renderer
                  ) -> tuple[list[int], dict, list[dict]]:
    """Positions (into the pool) kept by the configured pair selector, in input order, selector stats, and the
    per-row IFD record (``pair_scores.jsonl``; empty when the selector computed no IFD)."""
    n = len(pool.index)
    if config.pair_selector == "none" or n == 0:
        return list(range(n)), {"method_used": "none"}, []
    from codeblock.scoring.scorer import ifd_details
    from codeblock.selection.pairs import select_pairs

    details: list[dict] = []

    def ifd_fn(pairs):
        # IFD over the exact training tokenization: conditioned = the rendered example itself, unconditioned = the
        # same template with an empty prompt (method.md §2(a)); both averaged over the response characters that
        # survive truncation in both renderings. Streamed: one more pass over the input, in chunks.
        details.clear()
        for chunk in chunks(make_works(), CHUNK_ROWS if batch_invariant(scorer) else None):
            passes = []
            for w in chunk:
                empty = Example(w.example.index, [{"role": "user", "content": ""}], w.example.response, "")
                rd = renderer.render(empty)
                idx = TokenIndex(rd.text, rd.offsets, rd.response_start, rd.response_end, rd.special)
                common = min(w.rendered.kept_response_chars, rd.kept_response_chars)
                passes.append((w.rendered.input_ids, w.index.response_tokens_before(common),
                               rd.input_ids, idx.response_tokens_before(common)))
            scorer.remember(p[0] for p in passes)  # the conditioned pass is the kept rows' scoring pass
            details.extend(ifd_details(scorer, passes))
        if len(details) != n:
            raise RuntimeError(_CHANGED)
        return [d["ifd"] for d in details]

    result = select_pairs(
        pool.extras if pool.extras is not None else [{}] * n,  # only quality_longtail reads the rows' fields
        config.pair_selector,
        config.pair_keep_ratio,
        config.seed,
        instruction_texts=pool.instructions if pool.instructions is not None else [""] * n,
        response_texts=[""] * n,  # ifd_fn renders the responses itself
        ifd_fn=ifd_fn if scorer.scorer is not None else None,  # no scorer: select_pairs says IFD needs one
        quality_field=config.quality_field,
        embedding=config.embedding,
        longtail_k=config.longtail_k,
    )
    info = {"method_used": result.method_used, **{k: v for k, v in result.stats.items() if isinstance(v, (int, float, str))}}
    kept = set(result.kept_indices)
    pair_scores = [{"example_index": pool.index[k], "kept": k in kept, **{key: r9(v) for key, v in d.items()}}
                   for k, d in enumerate(details)]
    return list(result.kept_indices), info, pair_scores


def _priorities(state: Collected, config: CodeBlockConfig) -> tuple[list[Candidate], list[float], list[float]]:
    """Percentile ranks pi_i of the utilities, gated priorities P_i (B6 random_items: a seeded random rank instead)
    and the budget's candidates. Consumes ``state.candidates``."""
    pis = percentile_ranks(state.utilities)
    rand_p = random_priorities(len(pis), config.seed) if config.supervision == "random_items" else None
    priorities, candidates = [], []
    for n, ((k, item_id, start, tokens, reach, bridge, conflicts), pi) in enumerate(zip(state.candidates, pis)):
        p = rand_p[n] if rand_p is not None else gated_priority(pi, reach, bridge, config.lambda_reach,
                                                                 config.lambda_bridge, config.gate_quantile)
        priorities.append(p)
        candidates.append(Candidate(k, item_id, start, tokens, p, conflicts))
    state.candidates = state.utilities = []
    return candidates, pis, priorities


def _nl_pass(state: Collected, sel: CodeSelection, config: CodeBlockConfig, budget: int) -> dict[int, list[int]]:
    """NL tokens on top of the code items: the global pass, or per-example quotas (selection_scope=per_example)."""
    used = {k: sel.count(k) for k in state.n_resp}
    if config.selection_scope != "per_example":
        return select_nl(state.units, max(0, budget - sel.used), sel.caps, used)
    nl_taken: dict[int, list[int]] = {}
    by_example = nl_units_by_example(state.units)
    for k in state.n_resp:
        quota = max(sel.caps.get(k, 0), used[k])
        nl_taken.update(select_nl(by_example.get(k, []), max(0, quota - used[k]), {k: quota}, {k: used[k]}))
    return nl_taken
