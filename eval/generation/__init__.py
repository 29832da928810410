"""Generate benchmark solutions with a causal LM: HF transformers (default) or vLLM (CUDA only, when installed).

Prompts follow EvalPlus so scores are comparable with published numbers:

* ``base``: direct completion of ``prompt.strip() + "\\n"``; the output is cut at the benchmark's stop sequences
  and the full program is ``sanitize(prompt + completion)``.
* ``chat``: the model's chat template with the benchmark instruction as the user turn and the assistant turn
  prefilled with EvalPlus' response prefix and an opening code fence; the output is cut at the closing fence.

Greedy decoding is batched with LEFT padding (so every row's last prompt token sits at the same position) and a
stopping criterion that marks each row finished as soon as it has produced a stop sequence; ``generate`` returns
when every row has finished. Rows are appended to ``samples.jsonl`` after every batch (see
:mod:`codeblock_eval.generation.samples_io`), so a killed run resumes where it stopped. A resumed run re-derives
the kept rows' ``completion``/``solution`` from their ``raw`` output with the current code (``refresh_samples``).

Modules: ``settings`` (what a run is), ``prompts`` (prompt building, stop sequences, post-processing),
``hf_backend`` / ``vllm_backend``, ``dynamic`` (slot-refilling greedy decoding), ``generate`` (the driver),
``samples_io`` (the samples file), ``sanitize``. This package re-exports their public names.

torch/transformers are imported lazily: importing this package is cheap.
"""

from codeblock_eval.generation.generate import GenerationStats, generate_samples, make_generator, refresh_samples
from codeblock_eval.generation.hf_backend import HFGenerator
from codeblock_eval.generation.prompts import (CHAT_STOP_SEQUENCES, build_prompt, chat_instruction, fence_language,
                                               postprocess, stop_sequences_for, truncate_at_stops)
from codeblock_eval.generation.settings import GenerationError, GenerationSettings, resolve_model_path

__all__ = [
    "CHAT_STOP_SEQUENCES", "GenerationError", "GenerationSettings", "GenerationStats", "HFGenerator", "build_prompt",
    "chat_instruction", "fence_language", "generate_samples", "make_generator", "postprocess", "refresh_samples", "resolve_model_path",
    "stop_sequences_for", "truncate_at_stops",
]
