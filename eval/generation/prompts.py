"""Prompts and post-processing, EvalPlus style so scores are comparable with published numbers: ``base`` completes
``prompt.strip() + "\n"`` and cuts at the benchmark's stop sequences; ``chat`` uses the model's chat template with the
assistant turn prefilled (EvalPlus' response prefix and an opening fence) and cuts at the closing fence."""

from __future__ import annotations

from typing import Any, Iterable

# EvalPlus 0.3.1 wording, shared with the benchmark definitions so chat-style scores match the leaderboard setup.
from codeblock_eval.benchmarks.base import INSTRUCTION_PREFIX, RESPONSE_PREFIX
from codeblock_eval.generation.settings import GenerationError


# A closing fence at the start of a line ends the answer's code block.
CHAT_STOP_SEQUENCES = ("\n```",)


_SPLIT_MARKER = "<|codeblock-prefill-split|>"


_FENCE_LANG = {"py": "python", "js": "javascript", "rs": "rust", "ts": "typescript", "sh": "bash"}


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
