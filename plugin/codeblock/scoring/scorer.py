"""Per-token log-probabilities of the actual next tokens under a scoring model (method.md §2(d)).

The caller passes token-id lists (the SAME tokenization training uses); for each row we return a float32 array
``logp`` with ``logp[t] = log p(ids[t] | ids[:t])`` and ``logp[0] = nan``.

Memory: the full ``batch × length × vocab`` logits are never built. We run the decoder body once, keep the hidden
states of the real (non-padding) positions only, and apply the LM head to chunks of positions, taking the target
logit minus the chunk's logsumexp (peak ≈ ``chunk_bytes``; Qwen's 151,936-word head would otherwise need 10+ GiB).

Batch invariance (default ``batching="row"``): every row runs through the model alone, unpadded, so its scores are
a function of the row only, never of which rows share its batch, how many workers split the data or which rows a
cache already held. Padding changes a row's scores in the 6th decimal (the softmax and matmul reductions change
length), which made two runs of the same data select differently. Rows are still grouped ``batch_size`` at a time
for cache commits and progress. ``batching="padded"`` packs rows sorted by length under ``batch_size`` rows and
``max_tokens_per_batch`` padded tokens (faster on a GPU, not batch-invariant); it has its own cache identity, so
the two kinds of scores never mix.

Cache: with ``cache_dir`` set, finished batches are committed to an SQLite file keyed by (model identity, sha256 of
the ids); a rerun after an interruption recomputes only unfinished batches (:mod:`codeblock.scoring.score_cache`).

    >>> scorer = Scorer("smollm2-135m-instruct", cache_dir="/tmp/scores")   # doctest: +SKIP
    >>> [lp] = scorer.token_logprobs([[1, 2, 3]])                             # doctest: +SKIP
    >>> lp.shape, bool(np.isnan(lp[0]))                                       # doctest: +SKIP
    ((3,), True)

torch/transformers are imported lazily (only when a model is actually run).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from codeblock.models import cache_root, load_model_and_tokenizer, model_fingerprint, resolve_model
from codeblock.scoring.score_cache import (  # noqa: F401 - re-exported: the cache's public names live here too
    PACK_SUFFIX,
    SCORES_VERSION,
    ScoreCache,
    export_score_packs,
    ids_key,
    import_score_packs,
)


def default_score_cache_dir() -> Path:
    """``$CODEBLOCK_CACHE_DIR/scores`` (a sensible ``cache_dir`` for long runs)."""
    return cache_root() / "scores"


def plan_batches(lengths: Sequence[int], batch_size: int, max_tokens_per_batch: int) -> list[list[int]]:
    """Indices grouped into batches: sorted by (length desc, index asc), packed greedily.

    A batch's padded size is ``rows × longest``; a single row longer than the token cap gets its own batch.

    >>> plan_batches([3, 5, 2, 5], batch_size=2, max_tokens_per_batch=100)
    [[1, 3], [0, 2]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) >= batch_size or (len(current) + 1) * longest > max_tokens_per_batch):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class Scorer:
    """Batched no-grad scoring of token-id lists. The model is loaded lazily (not at all if everything is cached).

    Args:
        model_name_or_path: embedded name, local folder or hub id (see :mod:`codeblock.models`).
        batch_size / max_tokens_per_batch: batch packing limits (padded tokens).
        cache_dir: folder of the resumable SQLite score cache; None = no disk cache.
        device: "cpu", "cuda", ...; default cuda when available. dtype: default bf16 on CUDA, fp32 on CPU.
        model / tokenizer: an already-loaded model to use instead of loading one (its identity is still derived
            from ``model_name_or_path`` unless ``identity`` is given).
        chunk_bytes: memory cap for one chunk of head logits (fp32).
        progress: show a tqdm bar (TQDM_DISABLE=1 silences it).
        batching: "row" (default: one unpadded row per forward pass, batch-invariant scores) or "padded".
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None,
        *,
        batch_size: int = 8,
        max_tokens_per_batch: int = 4096,
        cache_dir: str | os.PathLike | None = None,
        device: str | None = None,
        dtype=None,
        model=None,
        identity: str | None = None,
        chunk_bytes: int = 256 << 20,
        progress: bool = True,
        batching: str = "row",
    ):
        if batch_size < 1 or max_tokens_per_batch < 1:
            raise ValueError("batch_size and max_tokens_per_batch must be >= 1")
        if batching not in ("row", "padded"):
            raise ValueError(f"batching must be 'row' or 'padded', got {batching!r}")
        self.batching = batching
        if model is None and model_name_or_path is None:
            raise ValueError("Scorer needs model_name_or_path or a loaded model")
        self.model_name_or_path = None if model_name_or_path is None else os.fspath(model_name_or_path)
        self.batch_size = int(batch_size)
        self.max_tokens_per_batch = int(max_tokens_per_batch)
        self.chunk_bytes = int(chunk_bytes)
        self.progress = progress
        self._model = model
        self._device = device
        self._dtype = dtype
        if model is not None:
            param = next(model.parameters())
            self._device = str(param.device)
            self._dtype = param.dtype
        elif self._device is None:
            from codeblock.models import default_device

            self._device = default_device()
        if self._dtype is None:
            self._dtype = "bfloat16" if str(self._device).startswith("cuda") else "float32"
        self._identity = identity
        self._cache = None
        if cache_dir is not None:
            self._cache = ScoreCache(cache_dir, self.identity)
        self.n_forward_rows = 0  # rows actually run through the model (for tests and logs)
        self.n_cached_rows = 0  # rows served by the disk cache

    @classmethod
    def for_config(cls, model_name_or_path, config, **kwargs) -> "Scorer":
        """A scorer with a :class:`~codeblock.config.CodeBlockConfig`'s scoring knobs (batch size, batching): the one
        way every front end (prepare, train, Axolotl) builds its scorers, so none of them forgets a knob."""
        return cls(model_name_or_path, batch_size=config.scoring_batch_size, batching=config.scoring_batching, **kwargs)

    @property
    def identity(self) -> str:
        """Model fingerprint + dtype + device type + scorer version: rows cached under one identity are reusable."""
        if self._identity is None:
            if self.model_name_or_path is None:
                raise ValueError("a Scorer built from a loaded model needs identity=... to use a disk cache")
            path = resolve_model(self.model_name_or_path)
            fp = model_fingerprint(path)
            dtype = str(self._dtype).replace("torch.", "")
            self._identity = f"{fp}|{dtype}|{str(self._device).split(':')[0]}|v{SCORES_VERSION}"
            if self.batching == "row":  # padded scores keep the old identity (and the score packs made with it)
                self._identity += "|row"
        return self._identity

    @property
    def model(self):
        if self._model is None:
            self._model, _ = load_model_and_tokenizer(self.model_name_or_path, dtype=self._dtype, device=self._device)
        return self._model

    def token_logprobs(self, ids_list: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """``[logp_row, ...]`` in input order; ``logp_row[t] = log p(ids[t] | ids[:t])``, ``logp_row[0] = nan``."""
        rows = [list(map(int, ids)) for ids in ids_list]
        keys = [ids_key(r) for r in rows]
        results: dict[str, np.ndarray] = {}
        # Unique rows only; trivial rows need no model.
        unique: dict[str, list[int]] = {}
        for k, r in zip(keys, rows):
            if len(r) <= 1:
                results[k] = np.full(len(r), np.nan, dtype=np.float32)
            else:
                unique.setdefault(k, r)
        ukeys = list(unique)
        cached = self._cache.get_many(ukeys) if self._cache is not None else {}
        if self.batching == "row":  # any cached row is reusable: its scores do not depend on its batch
            results.update((k, cached[k]) for k in ukeys if k in cached)
            self.n_cached_rows += sum(1 for k in ukeys if k in cached)
            ukeys = [k for k in ukeys if k not in cached]
            cached = {}
        batches = plan_batches([len(unique[k]) for k in ukeys], self.batch_size, self.max_tokens_per_batch)
        todo = []
        for b in batches:  # padded: a batch is reused only when complete, so reruns reproduce the same batches
            if all(ukeys[i] in cached for i in b):
                results.update((ukeys[i], cached[ukeys[i]]) for i in b)
                self.n_cached_rows += len(b)
            else:
                todo.append(b)
        if todo:
            from tqdm.auto import tqdm

            total = sum(len(unique[ukeys[i]]) for b in todo for i in b)
            bar = tqdm(total=total, desc="scoring tokens", unit="tok", disable=None if self.progress else True)
            for b in todo:
                batch_rows = [unique[ukeys[i]] for i in b]
                if self.batching == "row":
                    out = [self._forward([r])[0] for r in batch_rows]
                else:
                    out = self._forward(batch_rows)
                stored = [(ukeys[i], arr) for i, arr in zip(b, out)]
                if self._cache is not None:
                    self._cache.put_many(stored)
                results.update(stored)
                bar.update(sum(len(r) for r in batch_rows))
            bar.close()
        return [results[k].copy() for k in keys]

    def cached_scores(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Scores the disk cache already holds for these :func:`ids_key` keys (empty without a cache)."""
        return self._cache.get_many(keys) if self._cache is not None else {}

    def mean_ce(self, ids_list: Sequence[Sequence[int]], positions: Sequence[Sequence[int]]) -> list[float]:
        """Mean of ``-logp`` over the given positions of each row (see :func:`mean_ce`)."""
        return [mean_ce(lp, pos) for lp, pos in zip(self.token_logprobs(ids_list), positions)]

    def _forward(self, batch_rows: list[list[int]]) -> list[np.ndarray]:
        import torch

        model = self.model
        device = next(model.parameters()).device
        longest = max(len(r) for r in batch_rows)
        ids = torch.zeros((len(batch_rows), longest), dtype=torch.long)
        mask = torch.zeros((len(batch_rows), longest), dtype=torch.long)
        for j, r in enumerate(batch_rows):  # right padding: real positions keep their natural position ids
            ids[j, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[j, : len(r)] = 1
        ids, mask = ids.to(device), mask.to(device)
        with torch.inference_mode():
            hidden = _decoder_hidden(model, ids, mask)
            # Position t-1 predicts token t; keep only real targets (t >= 1 and not padding).
            valid = mask[:, 1:].bool()
            h = hidden[:, :-1][valid]
            targets = ids[:, 1:][valid]
            head = model.get_output_embeddings()
            vocab = head.weight.shape[0]
            step = max(1, self.chunk_bytes // (4 * vocab))
            parts = []
            for s in range(0, h.shape[0], step):
                logits = _apply_head(model, head, h[s : s + step])
                lse = torch.logsumexp(logits, dim=-1)
                tgt = logits.gather(-1, targets[s : s + step, None])[:, 0]
                parts.append((tgt - lse).float().cpu())
            flat = torch.cat(parts).numpy() if parts else np.zeros(0, dtype=np.float32)
        self.n_forward_rows += len(batch_rows)
        out, pos = [], 0
        for r in batch_rows:
            arr = np.empty(len(r), dtype=np.float32)
            arr[0] = np.nan
            arr[1:] = flat[pos : pos + len(r) - 1]
            pos += len(r) - 1
            out.append(arr)
        return out

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()


def _decoder_hidden(model, ids, mask):
    """Last hidden states of the decoder body (no LM head), for any *ForCausalLM that exposes its base model."""
    base = getattr(model, getattr(model, "base_model_prefix", "model"), None)
    if base is None or base is model:
        raise TypeError(f"cannot find the decoder body of {type(model).__name__} (base_model_prefix)")
    out = base(input_ids=ids, attention_mask=mask, use_cache=False)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


def _apply_head(model, head, h):
    """LM head on a chunk of hidden states, in fp32, with the model's logit soft-capping when it has one (Gemma)."""
    import torch

    logits = head(h).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def mean_ce(logp: np.ndarray, positions: Sequence[int]) -> float:
    """Mean of ``-logp[t]`` over ``positions`` (0 and out-of-range positions and non-finite values are skipped).

    >>> mean_ce(np.array([np.nan, -1.0, -3.0], dtype=np.float32), [0, 1, 2])
    2.0
    """
    vals = [float(logp[t]) for t in positions if 0 < t < len(logp) and math.isfinite(float(logp[t]))]
    return -sum(vals) / len(vals) if vals else math.nan


def ifd_details(scorer, passes: Sequence[tuple[Sequence[int], Sequence[int], Sequence[int], Sequence[int]]]) -> list[dict]:
    """IFD for each ``(cond_ids, cond_positions, uncond_ids, uncond_positions)``: the one implementation (§2(a)).

    ``cond_*``: the training rendering of (prompt, response) and the positions of its response tokens;
    ``uncond_*``: the same template with an empty prompt. Both position lists must name the SAME response tokens
    (callers cut both to the response characters that survive truncation in both renderings), otherwise the two
    means average over different tokens. All passes are scored in one ``token_logprobs`` call (conditioned rows
    first), so the batch plan and hence the scores do not depend on who asks.

    >>> class Stub:
    ...     def token_logprobs(self, rows): return [np.array([np.nan] + [-1.0 if len(r) > 2 else -2.0] * (len(r) - 1)) for r in rows]
    >>> ifd_details(Stub(), [([7, 8, 9], [2], [8, 9], [1])])
    [{'ce_conditioned': 1.0, 'ce_unconditioned': 2.0, 'ifd': 0.5}]
    """
    lps = scorer.token_logprobs([p[0] for p in passes] + [p[2] for p in passes])
    n = len(passes)
    out = []
    for k, (_, cond_pos, _, uncond_pos) in enumerate(passes):
        ce_c, ce_u = mean_ce(lps[k], cond_pos), mean_ce(lps[n + k], uncond_pos)
        out.append({"ce_conditioned": ce_c, "ce_unconditioned": ce_u, "ifd": ifd_from_ce(ce_c, ce_u)})
    return out


def make_ifd_fn(
    scorer, render_fn: Callable[[str, str], tuple[Sequence[int], Sequence[int]]]
) -> Callable[[Sequence[tuple[str, str]]], list[float]]:
    """IFD function for :func:`codeblock.selection.pairs.select_pairs` from a ``render_fn``, via :func:`ifd_details`.

    ``render_fn(prompt, response) -> (input_ids, response_positions)``; the unconditioned pass renders the same
    template with an empty prompt. (``codeblock prepare`` builds its passes from its own renderer, truncation-aware.)
    """

    def ifd_fn(pairs: Sequence[tuple[str, str]]) -> list[float]:
        passes = [(*render_fn(x, y), *render_fn("", y)) for x, y in pairs]
        return [d["ifd"] for d in ifd_details(scorer, passes)]

    return ifd_fn


def ifd_from_ce(ce_conditioned: float, ce_unconditioned: float) -> float:
    """``meanCE(y|x) / meanCE(y|"")``; non-finite (nan/inf) when undefined so selectors drop it."""
    if not (math.isfinite(ce_conditioned) and math.isfinite(ce_unconditioned)) or ce_unconditioned == 0:
        return math.inf if math.isfinite(ce_conditioned) and ce_unconditioned == 0 else math.nan
    return ce_conditioned / ce_unconditioned


def excess_logprobs(scorer: Scorer, reference: Scorer, ids_list: Sequence[Sequence[int]]):
    """(logp under M, logp under the reference R) for the ``excess_*`` utility modes (§2(d))."""
    return scorer.token_logprobs(ids_list), reference.token_logprobs(ids_list)
