"""vLLM generation backend (CUDA only, optional): same ``generate(prompts, stops)`` contract as ``HFGenerator``.

Used by ``--backend vllm``; vLLM applies the stop strings itself and returns text without them. Imported lazily, so
machines without vLLM never touch it.
"""

from __future__ import annotations

from typing import Any, Sequence

from codeblock_eval.generation.settings import GenerationError, GenerationSettings, resolve_model_path


class VLLMGenerator:
    """vLLM backend (CUDA only). Same ``generate`` contract as :class:`HFGenerator`."""

    backend = "vllm"

    def __init__(self, settings: GenerationSettings, **_: Any):
        import torch

        try:
            import vllm
        except ImportError as exc:
            raise GenerationError("--backend vllm needs the `vllm` package (pip install vllm); or use --backend hf") from exc
        if not torch.cuda.is_available():
            raise GenerationError("--backend vllm needs a CUDA GPU; use --backend hf on CPU")
        self.settings = settings
        self._vllm = vllm
        dtype = "bfloat16" if settings.dtype == "auto" else settings.dtype
        self.llm = vllm.LLM(
            model=resolve_model_path(settings.model),
            dtype=dtype,
            seed=settings.seed,
            enable_lora=bool(settings.adapter),
            max_lora_rank=256 if settings.adapter else 16,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self._lora = None
        if settings.adapter:
            from vllm.lora.request import LoRARequest

            self._lora = LoRARequest("adapter", 1, settings.adapter)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, prompts: Sequence[str], stops: Sequence[Sequence[str]], *, seed: int = 0):
        params = [
            self._vllm.SamplingParams(
                temperature=max(self.settings.temperature, 0.0),
                top_p=self.settings.top_p if not self.settings.greedy else 1.0,
                max_tokens=self.settings.max_new_tokens,
                stop=list(row_stops) or None,
                seed=seed if not self.settings.greedy else None,
            )
            for row_stops in stops
        ]
        outputs = self.llm.generate(list(prompts), params, lora_request=self._lora, use_tqdm=False)
        results = []
        for out in outputs:
            choice = out.outputs[0]
            reason = {"stop": "stop", "length": "length"}.get(choice.finish_reason, choice.finish_reason)
            if reason == "stop" and choice.stop_reason is None:
                reason = "eos"
            results.append((choice.text, len(choice.token_ids), reason))
        return results
