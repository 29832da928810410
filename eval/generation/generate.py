"""The generation driver: fill a samples file up to ``n_samples`` rows per problem with a backend (HF by default, vLLM
on CUDA), appending after every batch so a killed run resumes where it stopped."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from codeblock_eval.generation.hf_backend import HFGenerator
from codeblock_eval.generation.prompts import build_prompt, postprocess, stop_sequences_for
from codeblock_eval.generation.samples_io import (SamplesWriter, check_settings, counts_by_task, read_samples,
                                                 rewrite_samples)
from codeblock_eval.generation.settings import GenerationError, GenerationSettings

logger = logging.getLogger(__name__)


@dataclass
class GenerationStats:
    n_generated: int = 0
    n_skipped_existing: int = 0
    n_torn_repaired: int = 0
    n_rederived: int = 0
    n_new_tokens: int = 0
    seconds: float = 0.0
    finish_reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tokens_per_second"] = round(self.n_new_tokens / self.seconds, 2) if self.seconds else None
        out["seconds"] = round(self.seconds, 2)
        return out


def make_generator(settings: GenerationSettings, *, threads: int | None = None, dynamic_slots: int = 0):
    if settings.backend == "hf":
        return HFGenerator(settings, threads=threads, dynamic_slots=dynamic_slots)
    if settings.backend == "vllm":
        from codeblock_eval.generation.vllm_backend import VLLMGenerator

        return VLLMGenerator(settings)
    raise GenerationError(f"unknown backend {settings.backend!r}; use 'hf' or 'vllm'")


def rederive_solutions(rows: list[dict[str, Any]], problems: Sequence[Any], prompt_style: str, tokenizer: Any) -> int:
    """Recompute ``completion`` and ``solution`` of kept rows from their ``raw`` output; return how many changed.

    Only the model's raw text is expensive; what is derived from it (stop sequences, code extraction) follows the code
    that scores it, so a resumed run never scores programs cut by an older sanitizer. Rows whose prompt differs from
    what this version builds (their ``prompt_sha256``) are left as they are.
    """
    by_id = {problem.task_id: problem for problem in problems}
    prompts: dict[str, str] = {}
    changed = 0
    for row in rows:
        problem = by_id.get(row.get("task_id"))
        if problem is None or not isinstance(row.get("raw"), str):
            continue
        if problem.task_id not in prompts:
            prompts[problem.task_id] = build_prompt(problem, prompt_style, tokenizer)
        text = prompts[problem.task_id]
        if row.get("prompt_sha256") != hashlib.sha256(text.encode()).hexdigest()[:16]:
            continue
        fields = postprocess(problem, prompt_style, text, row["raw"])
        if fields["completion"] != row.get("completion") or fields["solution"] != row.get("solution"):
            row.update(fields)
            changed += 1
    return changed


def _refresh(rows: list[dict[str, Any]], problems: Sequence[Any], prompt_style: str, tokenizer: Any,
             samples_path: str | Path) -> int:
    changed = rederive_solutions(rows, problems, prompt_style, tokenizer)
    if changed:
        rewrite_samples(samples_path, rows)
        logger.warning("%s: %d of %d kept samples re-derived from their raw output with this version's stop "
                       "sequences and sanitizer", samples_path, changed, len(rows))
    return changed


def refresh_samples(problems: Sequence[Any], samples_path: str | Path, prompt_style: str, tokenizer: Any = None) -> int:
    """Re-derive the kept rows of a complete samples file (see :func:`rederive_solutions`); rewrite it if any changed.

    ``tokenizer`` is needed for ``chat`` prompts only (they are rendered with its chat template).
    """
    rows, _ = read_samples(samples_path)
    return _refresh(rows, problems, prompt_style, tokenizer, samples_path)


# --------------------------------------------------------------------------------------------- driver
def generate_samples(
    problems: Sequence[Any],
    generator: Any,
    samples_path: str | Path,
    *,
    batch_size: int = 8,
    progress: bool = True,
) -> GenerationStats:
    """Fill ``samples_path`` up to ``settings.n_samples`` rows per problem; return what was done.

    Existing rows are counted per ``task_id`` and kept (resume); a torn last line is repaired first.
    Work is sorted longest prompt first so batches hold similar lengths (less padding; memory peaks early).
    """
    from tqdm.auto import tqdm

    settings: GenerationSettings = generator.settings
    stats = GenerationStats()
    rows, stats.n_torn_repaired = read_samples(samples_path)
    check_settings(rows, settings.hash(), samples_path)
    stats.n_rederived = _refresh(rows, problems, settings.prompt_style, generator.tokenizer, samples_path)
    have = counts_by_task(rows)
    work = []
    for problem in problems:
        done = have.get(problem.task_id, 0)
        stats.n_skipped_existing += min(done, settings.n_samples)
        text = build_prompt(problem, settings.prompt_style, generator.tokenizer)
        for index in range(done, settings.n_samples):
            work.append((problem, index, text))
    if not work:
        return stats
    lengths = {id(text): generator.count_tokens(text) for _, _, text in work}
    work.sort(key=lambda item: (-lengths[id(item[2])], item[0].task_id, item[1]))
    digest = settings.hash()
    start = time.perf_counter()
    bar = tqdm(total=len(work), desc=f"generate ({settings.prompt_style})", unit="sample", disable=None if progress else True)
    with SamplesWriter(samples_path) as writer:
        for begin in range(0, len(work), batch_size):
            batch = work[begin : begin + batch_size]
            stops = [stop_sequences_for(problem, settings.prompt_style) for problem, _, _ in batch]
            seed = settings.seed + begin  # sampling only; greedy ignores it
            outputs = generator.generate([text for _, _, text in batch], stops, seed=seed)
            new_rows = []
            for (problem, index, text), (raw, n_tokens, reason) in zip(batch, outputs):
                fields = postprocess(problem, settings.prompt_style, text, raw)
                new_rows.append(
                    {
                        "task_id": problem.task_id,
                        "sample_index": index,
                        "prompt_style": settings.prompt_style,
                        "prompt_sha256": hashlib.sha256(text.encode()).hexdigest()[:16],
                        "raw": raw,
                        "completion": fields["completion"],
                        "solution": fields["solution"],
                        "n_new_tokens": n_tokens,
                        "finish_reason": reason,
                        "settings_hash": digest,
                    }
                )
                stats.n_new_tokens += n_tokens
                stats.finish_reasons[reason] = stats.finish_reasons.get(reason, 0) + 1
            writer.write_many(new_rows)
            stats.n_generated += len(new_rows)
            bar.update(len(new_rows))
    bar.close()
    stats.seconds = time.perf_counter() - start
    return stats
