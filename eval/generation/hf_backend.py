"""The default generation backend: Hugging Face transformers, batched greedy or sampled decoding with LEFT padding
(every row's last prompt token at the same position) and a stopping criterion that finishes each row at its first stop
sequence; optionally slot-refilling greedy decoding (:mod:`codeblock_eval.generation.dynamic`). torch/transformers
are imported when a generator is built."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from codeblock_eval.generation.prompts import truncate_at_stops
from codeblock_eval.generation.settings import GenerationError, GenerationSettings, resolve_model_path


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


def load_tokenizer(settings: GenerationSettings):
    """The tokenizer generation uses: the adapter's own when it ships one (added tokens), else the model's; left
    padding, with EOS as the pad token when the model has none."""
    from transformers import AutoTokenizer

    source = resolve_model_path(settings.model)
    if settings.adapter and any((Path(settings.adapter) / f).exists() for f in ("tokenizer.json", "tokenizer_config.json")):
        source = settings.adapter  # an adapter trained with added tokens ships its tokenizer
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise GenerationError(f"tokenizer of {settings.model!r} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class HFGenerator:
    """Batched generation with transformers. ``generate(prompts, stops)`` returns ``[(raw_text, n_tokens, reason)]``."""

    backend = "hf"

    def __init__(self, settings: GenerationSettings, *, device: str | None = None, threads: int | None = None,
                 dynamic_slots: int = 0):
        import torch
        from transformers import AutoModelForCausalLM

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
        self.tokenizer = load_tokenizer(settings)
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

        # Refilling slots (see generation/dynamic.py) for greedy decoding; other cases use model.generate.
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
