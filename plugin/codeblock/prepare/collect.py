"""Pass 1 of ``prepare``: stream the rows, keep only what the global steps need (bounded memory).

``prepare`` reads its input more than once instead of holding every row's state (:mod:`codeblock.prepare.pipeline`):

    pool pass     render+tokenize every row: drops, per-row token counts (and what the pair selector reads)
    [IFD pass]    only for IFD selectors: the two scoring passes per row, in chunks
    collect pass  kept rows, in chunks: analyse, score, item records, NL units -> compact state + a spill file

The compact state (:class:`Collected`) is what pair selection, the global budget and the NL pass need: token counts,
the selectable items' token indices, utilities, reach/bridge, NL units, and for token-level policies each row's response
tokens and ranking scores. Everything only the written output needs (item records, segments) goes to an unlinked
temporary spill file, one pickled record per kept row, read back in order by the write pass
(:mod:`codeblock.prepare.write`). Rendered ids, offsets and analyses are dropped chunk by chunk.

Scores are never computed twice: a batch-invariant scorer (``batching: row``, and the stubs of tests and benchmarks)
is called chunk by chunk; any other scorer (``batching: padded``, whose scores depend on the batch plan) gets one
call over all rows, as before, and the collect pass then reads its results from memory. IFD's conditioned pass is
remembered for the scoring of the kept rows either way (:class:`MemoScorer`).
"""

from __future__ import annotations

import pickle
import tempfile
from array import array
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Iterable, Iterator

import numpy as np

from codeblock.data_io import Example, SkipLog, iter_examples
from codeblock.labels.render import RenderSkip
from codeblock.labels.token_spans import TokenIndex
from codeblock.prepare.items import ItemTally, build_items, count_structure, structure_config
from codeblock.scoring.gce import token_scores
from codeblock.scoring.score_cache import ids_key
from codeblock.selection.nl_tokens import NLUnit, make_units, nl_candidates
from codeblock.selection.policies import excess_ce, is_token_level, needs_reference, needs_scores

CHUNK_ROWS = 256  # rows analysed and scored together: large enough for scorer batches, small next to a dataset


@dataclass
class Work:
    """One row's full state while its chunk is processed (never kept for all rows)."""

    example: Example
    rendered: Any
    index: TokenIndex
    analysis: Any = None
    logp: np.ndarray | None = None
    scores: np.ndarray | None = None
    excess: np.ndarray | None = None  # supervision=excess_tokens: logp_ref - logp_base


def rendered_rows(source: Iterable, config, renderer, *, wanted=None, norm_skips: SkipLog | None = None,
                  render_skips: SkipLog | None = None) -> Iterator[Work]:
    """Rows of ``source`` (``(index, raw row)`` pairs) that normalise, render and keep a response token.

    The first pass logs every skip; later passes pass ``wanted`` (indices that survived) and log nothing.
    """
    for ex in iter_examples(source, config, norm_skips, wanted):
        try:
            rendered = renderer.render(ex)
        except RenderSkip as skip:
            if render_skips is not None:
                render_skips.add(ex.index, skip.reason, skip.detail)
            continue
        idx = TokenIndex(rendered.text, rendered.offsets, rendered.response_start, rendered.response_end, rendered.special)
        if idx.n_response == 0:
            if render_skips is not None:
                render_skips.add(ex.index, "response_truncated", f"prompt fills max_seq_length={config.max_seq_length}")
            continue
        yield Work(ex, rendered, idx)


def chunks(items: Iterable, size: int | None) -> Iterator[list]:
    """Lists of ``size`` consecutive items (``None``: one list of everything)."""
    it = iter(items)
    while True:
        part = list(islice(it, size)) if size else list(it)
        if not part:
            return
        yield part
        del part  # the caller's chunk is the only reference while the next one is read


def batch_invariant(scorer) -> bool:
    """Are a row's scores independent of the other rows of the call (safe to score chunk by chunk)?

    A :class:`~codeblock.scoring.scorer.Scorer` says so by ``batching == "row"`` (wrappers are looked through);
    a scorer without a ``batching`` attribute is treated as per-row, the protocol's promise (tests' stubs).
    """
    while scorer is not None:
        batching = getattr(scorer, "batching", None)
        if batching is not None:
            return batching == "row"
        scorer = getattr(scorer, "scorer", None)
    return True


class MemoScorer:
    """Remembers the log-probs of the rows it is told to (``remember(keys)``), so IFD's conditioned pass is reused by
    the scoring stage and a padded scorer's one call feeds every chunk. Keys are :func:`ids_key` hashes."""

    def __init__(self, scorer):
        self.scorer = scorer
        self.memo: dict[str, np.ndarray] = {}
        self.keep: set[str] = set()

    def remember(self, ids_lists) -> None:
        self.keep.update(ids_key(ids) for ids in ids_lists)

    def forget(self) -> None:
        self.memo.clear()
        self.keep.clear()

    def token_logprobs(self, ids_list):
        rows = [list(map(int, ids)) for ids in ids_list]
        keys = [ids_key(r) for r in rows]
        todo = list(dict.fromkeys(k for k in keys if k not in self.memo))
        fresh: dict[str, np.ndarray] = {}
        if todo:
            first = {k: r for k, r in zip(keys, rows)}
            for k, lp in zip(todo, self.scorer.token_logprobs([first[k] for k in todo])):
                fresh[k] = np.asarray(lp, dtype=np.float32)
                if k in self.keep:
                    self.memo[k] = fresh[k]
        return [(self.memo[k] if k in self.memo else fresh[k]).copy() for k in keys]


@dataclass
class Pool:
    """The pool pass's result: one entry per row that rendered (in input order)."""

    index: array = field(default_factory=lambda: array("q"))  # example index
    n_response: array = field(default_factory=lambda: array("l"))
    extras: list | None = None  # raw extra columns (quality_longtail reads quality fields)
    instructions: list | None = None  # instruction texts (embedded by quality_longtail / kmeans_ifd)
    n_valid: int = 0


def read_pool(source, config, renderer, norm_skips: SkipLog, render_skips: SkipLog, progress: bool) -> Pool:
    from tqdm.auto import tqdm

    pool = Pool()
    if config.pair_selector == "quality_longtail":
        pool.extras = []
    if config.pair_selector in ("quality_longtail", "kmeans_ifd"):
        pool.instructions = []
    works = rendered_rows(source, config, renderer, norm_skips=norm_skips, render_skips=render_skips)
    for w in tqdm(works, desc="render+tokenize", unit="row", disable=None if progress else True):
        pool.index.append(w.example.index)
        pool.n_response.append(w.index.n_response)
        if pool.extras is not None:
            pool.extras.append(w.example.extra)
        if pool.instructions is not None:
            pool.instructions.append(w.example.instruction)
    pool.n_valid = len(pool.index) + sum(render_skips.counts.values())  # rows that normalised
    return pool


@dataclass
class Collected:
    """Compact selection state of the kept rows (position ``k`` = k-th kept row, input order)."""

    index: array = field(default_factory=lambda: array("q"))  # example index of row k
    n_resp: dict = field(default_factory=dict)  # k -> N_e
    utilities: list = field(default_factory=list)  # u_i of every selectable item, in (k, item) order
    candidates: list = field(default_factory=list)  # (k, item id, start, tokens, R, B, conflicts), same order
    units: list = field(default_factory=list)  # NL units (nl_share > 0)
    pools: list | None = None  # token-level: response token indices of row k
    ranking: list | None = None  # gce_tokens / excess_tokens: per-position ranking scores of row k
    eos_logps: list = field(default_factory=list)  # log p(EOS) under the scorer, rows that have one
    tally: ItemTally | None = None
    spill: Any = None  # temporary file: per kept row, pickled (items, segments)

    def rows(self) -> Iterator[tuple[list[dict], list]]:
        """The spilled (items, segments) of every kept row, in order."""
        self.spill.seek(0)
        for _ in range(len(self.index)):
            yield pickle.load(self.spill)


def collect(make_works, n_rows: int, config, scorer: MemoScorer, reference: MemoScorer | None,
            progress: bool, timer) -> Collected:
    """Analyse, score and reduce the kept rows chunk by chunk; ``make_works()`` streams them (``n_rows`` of them)."""
    from tqdm.auto import tqdm

    from codeblock.structure.analysis import analyze_response

    sup = config.supervision
    token_level = is_token_level(sup)
    scored = needs_scores(sup) and n_rows > 0
    out = Collected(tally=ItemTally(token_level), spill=tempfile.TemporaryFile(prefix="codeblock-prepare-"))
    if token_level:
        out.pools = []
        out.ranking = [] if scored else None
    if scored and not (batch_invariant(scorer) and (reference is None or batch_invariant(reference))):
        with timer.stage("score"):
            _prefetch(make_works, config, scorer, reference)
    scfg = structure_config(config)
    bar = tqdm(total=n_rows, desc="analyze+score", unit="row", disable=None if progress else True)
    for chunk in chunks(make_works(), CHUNK_ROWS):
        with timer.stage("analyze"):
            for w in chunk:
                w.analysis = analyze_response(w.rendered.response, scfg)
        with timer.stage("score"):
            if scored:
                _score(chunk, config, scorer, reference)
        with timer.stage("utilities"):
            for w in chunk:
                _reduce(w, out, config, token_level)
        bar.update(len(chunk))
        del chunk, w  # before the next chunk is read: one chunk of full row state at a time
    bar.close()
    scorer.forget()
    if reference is not None:
        reference.forget()
    return out


def _prefetch(make_works, config, scorer: MemoScorer, reference: MemoScorer | None) -> None:
    """A scorer whose scores depend on the batch plan gets one call over every kept row (the plan of a one-pass run);
    the chunks then read the remembered results. Holds all kept rows' ids for the length of the call."""
    ids = [w.rendered.input_ids for w in make_works()]
    for s in (scorer, reference if needs_reference(config.supervision, config.utility_mode) else None):
        if s is not None and s.scorer is not None:
            s.remember(ids)
            s.token_logprobs(ids)


def _reduce(w: Work, out: Collected, config, token_level: bool) -> None:
    """Keep row ``w``'s compact state in ``out``; spill what only the written output needs."""
    k = len(out.index)
    rd = w.rendered
    out.index.append(w.example.index)
    out.n_resp[k] = w.index.n_response
    lp = w.logp  # None when the policy skipped scoring
    if lp is not None and rd.eos_index is not None and rd.eos_index < len(lp) and np.isfinite(lp[rd.eos_index]):
        out.eos_logps.append(float(lp[rd.eos_index]))
    items: list[dict] = []
    if token_level:
        count_structure(w.analysis, out.tally)
        out.pools.append(array("l", w.index.response_tokens))
        if out.ranking is not None:
            out.ranking.append(w.excess if config.supervision == "excess_tokens" else w.scores)
    else:
        items = build_items(w.analysis, w.index, w.scores, rd.kept_response_chars, config, out.tally)
        for it in items:
            if it["selectable"]:
                out.utilities.append(it["u"])
                out.candidates.append((k, it["id"], it["start"], tuple(it["tokens"]), it["R"], it["B"],
                                       tuple(it.get("conflicts", ()))))
        if config.nl_share > 0:
            cands = nl_candidates(w.index, w.analysis.nl_spans())
            out.units.extend(make_units(k, w.index, cands, w.scores, config.nl_unit))
    segments = [[s.kind, s.start, s.end, s.language] for s in w.analysis.segments]
    pickle.dump((items, segments), out.spill, protocol=pickle.HIGHEST_PROTOCOL)


def _score(works: list[Work], config, scorer, reference_scorer) -> None:
    """One scoring call for a chunk: w.logp, w.scores (g_t per utility_mode) and, for excess_tokens, w.excess."""
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


def nl_units_by_example(units: list[NLUnit]) -> dict[int, list[NLUnit]]:
    """NL units grouped by kept row, order kept (the per_example NL pass)."""
    out: dict[int, list[NLUnit]] = {}
    for u in units:
        out.setdefault(u.example, []).append(u)
    return out
