"""Generate benchmark solutions with a causal LM: HF transformers (default) or vLLM (CUDA only, when installed).

Prompts follow EvalPlus so scores are comparable with published numbers:

* ``base``: direct completion of ``prompt.strip() + "\\n"``; the output is cut at the benchmark's stop sequences
  and the full program is ``sanitize(prompt + completion)``.
* ``chat``: the model's chat template with the benchmark instruction as the user turn and the assistant turn
  prefilled with EvalPlus' response prefix and an opening code fence; the output is cut at the closing fence.

Greedy decoding is batched with LEFT padding (so every row's last prompt token sits at the same position) and a
stopping criterion that marks each row finished as soon as it has produced a stop sequence; ``generate`` returns
when every row has finished. Rows are appended to ``samples.jsonl`` after every batch (see
:mod:`codeblock_eval.generation.samples_io`), so a killed run resumes where it stopped.

torch/transformers are imported lazily: importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

# EvalPlus 0.3.1 wording, shared with the benchmark definitions so chat-style scores match the leaderboard setup.
from codeblock_eval.benchmarks.base import INSTRUCTION_PREFIX, RESPONSE_PREFIX
from codeblock_eval.generation.samples_io import SamplesWriter, check_settings, counts_by_task, read_samples
from codeblock_eval.generation.settings import GenerationError, GenerationSettings, resolve_model_path  # noqa: F401

# A closing fence at the start of a line ends the answer's code block.
CHAT_STOP_SEQUENCES = ("\n```",)
_SPLIT_MARKER = "<|codeblock-prefill-split|>"
_FENCE_LANG = {"py": "python", "js": "javascript", "rs": "rust", "ts": "typescript", "sh": "bash"}


@dataclass
class GenerationStats:
    n_generated: int = 0
    n_skipped_existing: int = 0
    n_torn_repaired: int = 0
    n_new_tokens: int = 0
    seconds: float = 0.0
    finish_reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tokens_per_second"] = round(self.n_new_tokens / self.seconds, 2) if self.seconds else None
        out["seconds"] = round(self.seconds, 2)
        return out


# --------------------------------------------------------------------------------------------- prompts
def fence_language(language: str) -> str:
    return _FENCE_LANG.get(language, language)


def chat_instruction(problem: Any) -> str:
    """The user turn: the benchmark's own instruction when it has one, else EvalPlus' wrapper around the prompt."""
    instruction = getattr(problem, "instruction", None)
    if instruction:
        return instruction
    return f"{INSTRUCTION_PREFIX}\n```\n{problem.prompt.strip()}\n```\n"


def build_prompt(problem: Any, prompt_style: str, tokenizer: Any = None) -> str:
    """Text fed to the model for one problem.

    >>> class P: prompt = "def f():\\n    '''One.'''\\n\\n"; language = "python"
    >>> build_prompt(P(), "base")
    "def f():\\n    '''One.'''\\n"
    """
    if prompt_style == "base":
        return problem.prompt.strip() + "\n"
    if prompt_style != "chat":
        raise GenerationError(f"unknown prompt style {prompt_style!r}; use 'base' or 'chat'")
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise GenerationError("--prompt_style chat needs a tokenizer with a chat template; use --prompt_style base")
    response_prefix = getattr(problem, "response_prefix", None) or RESPONSE_PREFIX
    prefill = f"{response_prefix}\n```{fence_language(getattr(problem, 'language', 'python'))}\n"
    messages = [
        {"role": "user", "content": chat_instruction(problem)},
        {"role": "assistant", "content": prefill + _SPLIT_MARKER},
    ]
    # Render the whole conversation, then cut at the marker: the assistant turn stays open after the prefill,
    # exactly as EvalPlus does (templates differ in how they close turns, so we never rebuild that by hand).
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    if _SPLIT_MARKER not in rendered:
        raise GenerationError("the chat template dropped the assistant prefill; use --prompt_style base")
    return rendered.split(_SPLIT_MARKER)[0]


def stop_sequences_for(problem: Any, prompt_style: str) -> list[str]:
    if prompt_style == "chat":
        return list(CHAT_STOP_SEQUENCES)
    return list(getattr(problem, "stop_sequences", None) or [])


def truncate_at_stops(text: str, stops: Iterable[str]) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop sequence; return (text, whether one was found).

    >>> truncate_at_stops("    return 1\\ndef g(): pass", ["\\ndef ", "\\nclass "])
    ('    return 1', True)
    """
    cut = len(text)
    for stop in stops:
        if stop:
            at = text.find(stop)
            if at != -1:
                cut = min(cut, at)
    return text[:cut], cut < len(text)


def postprocess(problem: Any, prompt_style: str, prompt_text: str, raw: str) -> dict[str, str]:
    """Turn one raw model output into the row fields ``completion`` and ``solution`` (a full program)."""
    from codeblock_eval.generation.sanitize import sanitize

    language = getattr(problem, "language", "python")
    completion, _ = truncate_at_stops(raw, stop_sequences_for(problem, prompt_style))
    if prompt_style == "base":
        program = prompt_text + completion
    else:
        program = f"```{fence_language(language)}\n{completion}\n```\n"
    return {"completion": completion, "solution": sanitize(program, problem.entry_point, language)}


# --------------------------------------------------------------------------------------------- HF backend
def _stopping_criteria_class():
    import torch
    from transformers import StoppingCriteria

    class StopOnSequences(StoppingCriteria):
        """Per-row stop: a row is done once its *generated* text contains any stop sequence.

        Only the last ``window`` new tokens are decoded at each step: every earlier position was checked at an
        earlier step, so a stop sequence can only newly appear at the end.
        """

        def __init__(self, tokenizer, stops: Sequence[Sequence[str]], prompt_length: int):
            self.tokenizer = tokenizer
            self.stops = [[s for s in row if s] for row in stops]
            self.prompt_length = prompt_length
            longest = max((len(s) for row in self.stops for s in row), default=0)
            self.window = longest + 8
            self.done: Any = None

        def __call__(self, input_ids, scores, **kwargs):
            if self.done is None:
                self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            new = input_ids[:, self.prompt_length :]
            for row in range(input_ids.shape[0]):
                if self.done[row] or not self.stops[row]:
                    continue
                tail = new[row, -self.window :].tolist()
                text = self.tokenizer.decode(tail, skip_special_tokens=True)
                if any(stop in text for stop in self.stops[row]):
                    self.done[row] = True
            return self.done.clone()

    return StopOnSequences


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class HFGenerator:
    """Batched generation with transformers. ``generate(prompts, stops)`` returns ``[(raw_text, n_tokens, reason)]``."""

    backend = "hf"

    def __init__(self, settings: GenerationSettings, *, device: str | None = None, threads: int | None = None,
                 dynamic_slots: int = 0):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.settings = settings
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cpu":
            # All usable cores by default; tiny models on a busy machine run faster with 1 (thread sync dominates).
            torch.set_num_threads(threads or _cpu_count())
        if settings.dtype == "auto":
            # bf16 on CPU is an order of magnitude slower without bf16 instructions (see research/models.md).
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        else:
            dtype = getattr(torch, settings.dtype)
        path = resolve_model_path(settings.model)
        tokenizer_source = path
        if settings.adapter and any((Path(settings.adapter) / f).exists() for f in ("tokenizer.json", "tokenizer_config.json")):
            tokenizer_source = settings.adapter  # an adapter trained with added tokens ships its tokenizer
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token is None:
                raise GenerationError(f"tokenizer of {settings.model!r} has neither a pad nor an eos token")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        if settings.adapter:
            if not Path(settings.adapter, "adapter_config.json").exists():
                raise GenerationError(f"--adapter {settings.adapter!r} has no adapter_config.json (not a PEFT adapter)")
            from peft import PeftModel

            if len(self.tokenizer) > model.get_input_embeddings().weight.shape[0]:
                model.resize_token_embeddings(len(self.tokenizer))
            # Merging once makes every forward pass as cheap as the base model's.
            model = PeftModel.from_pretrained(model, settings.adapter).merge_and_unload()
        self.model = model.to(self.device).eval()
        self.eos_ids = self._eos_ids()
        from codeblock_eval.generation.dynamic import supports_dynamic

        # Refilling slots (see generation_dynamic) for greedy decoding; other cases use model.generate.
        self.dynamic_slots = dynamic_slots if settings.greedy and supports_dynamic(self.model) else 0

    def _eos_ids(self) -> list[int]:
        ids: set[int] = set()
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        for value in (self.tokenizer.eos_token_id, configured):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        # Chat models end a turn with an end-of-turn token that is not always their configured eos.
        for token in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"):
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != self.tokenizer.unk_token_id and token_id >= 0:
                ids.add(token_id)
        return sorted(ids)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, prompts: Sequence[str], stops: Sequence[Sequence[str]], *, seed: int = 0):
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        settings = self.settings
        # As EvalPlus: a raw prompt gets the tokenizer's special tokens (BOS where it uses one); a rendered chat
        # template already contains them.
        add_special = settings.prompt_style == "base"
        if self.dynamic_slots:
            return self._generate_dynamic(prompts, stops, add_special)
        enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=add_special)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        prompt_length = enc["input_ids"].shape[1]
        criterion = _stopping_criteria_class()(self.tokenizer, stops, prompt_length)
        config = GenerationConfig(
            max_new_tokens=settings.max_new_tokens,
            do_sample=not settings.greedy,
            temperature=settings.temperature if not settings.greedy else None,
            top_p=settings.top_p if not settings.greedy else None,
            top_k=None,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_ids,
        )
        if not settings.greedy:
            torch.manual_seed(seed)
        with torch.inference_mode():
            out = self.model.generate(**enc, generation_config=config, stopping_criteria=StoppingCriteriaList([criterion]))
        results = []
        eos = set(self.eos_ids)
        for row in range(out.shape[0]):
            new = out[row, prompt_length:].tolist()
            reason = "length"
            for i, token in enumerate(new):
                if token in eos:
                    new, reason = new[:i], "eos"
                    break
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            if truncate_at_stops(text, stops[row])[1]:
                reason = "stop"
            # The raw text is kept whole (audit trail); postprocess() applies the stop sequences.
            results.append((text, len(new), reason))
        return results


    def _generate_dynamic(self, prompts, stops, add_special: bool):
        from codeblock_eval.generation.dynamic import greedy_dynamic

        stops = [[x for x in row if x] for row in stops]
        window = max((len(x) for row in stops for x in row), default=0) + 8

        def should_stop(i: int, tokens: list[int]) -> bool:
            # Same rule as StopOnSequences: only the tail can newly contain a stop sequence.
            if not stops[i]:
                return False
            text = self.tokenizer.decode(tokens[-window:], skip_special_tokens=True)
            return any(x in text for x in stops[i])

        ids = [self.tokenizer(p, add_special_tokens=add_special)["input_ids"] for p in prompts]
        outputs = greedy_dynamic(self.model, ids, slots=self.dynamic_slots, max_new_tokens=self.settings.max_new_tokens,
                                 eos_ids=self.eos_ids, should_stop=should_stop, device=self.device)
        results = []
        for row, (new, reason) in enumerate(outputs):
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            if reason != "eos" and truncate_at_stops(text, stops[row])[1]:
                reason = "stop"
            results.append((text, len(new), reason))
        return results


def make_generator(settings: GenerationSettings, *, threads: int | None = None, dynamic_slots: int = 0):
    if settings.backend == "hf":
        return HFGenerator(settings, threads=threads, dynamic_slots=dynamic_slots)
    if settings.backend == "vllm":
        from codeblock_eval.generation.vllm_backend import VLLMGenerator

        return VLLMGenerator(settings)
    raise GenerationError(f"unknown backend {settings.backend!r}; use 'hf' or 'vllm'")


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
