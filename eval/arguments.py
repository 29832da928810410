"""The ``codeblock-eval`` command line: its parser and the checks that run before any heavy work (:func:`validate`).
The modes themselves run in :mod:`codeblock_eval.cli`. Flag style is the one of every ``codeblock`` command
(:mod:`codeblock.cli.arguments`): ``--snake_case`` documented, ``--kebab-case`` accepted, ``--out`` for ``--output``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from codeblock.cli.arguments import accept_both_spellings

PROG = "codeblock-eval"


class UsageError(Exception):
    """Bad arguments: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line instead of usage + message
        raise UsageError(message)


def _flag(group, name: str, **kwargs: Any) -> None:
    group.add_argument(f"--{name}", dest=name, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Generate, execute and score code benchmarks; compare runs.")
    mode = parser.add_argument_group("mode (exactly one)")
    _flag(mode, "model", metavar="NAME_OR_PATH", help="embedded model name, local folder or hub id: generate then evaluate")
    _flag(mode, "samples", metavar="FILE.jsonl", help="evaluate existing samples (task_id + solution|completion)")
    _flag(mode, "compare", nargs="+", metavar="DIR", help="compare run directories (the first is the reference)")
    _flag(mode, "list_benchmarks", action="store_true", help="print the registered benchmarks and exit")

    sel = parser.add_argument_group("benchmarks and data")
    _flag(sel, "benchmarks", metavar="LIST", help="comma-separated benchmark names, e.g. humaneval,humaneval+,mbpp,mbpp+")
    _flag(sel, "data_dir", metavar="DIR", help="offline benchmark data root, laid out like shared/data (default: $CODEBLOCK_DATA_DIR)")
    _flag(sel, "limit", type=int, metavar="N", help="only the first N problems of each benchmark (smoke runs)")

    gen = parser.add_argument_group("generation")
    _flag(gen, "adapter", metavar="PATH", help="PEFT/LoRA adapter folder applied on top of --model")
    _flag(gen, "backend", choices=("hf", "vllm"), default="hf", help="hf (default, CPU/GPU) or vllm (CUDA, if installed)")
    _flag(gen, "prompt_style", choices=("base", "chat"), default="base",
          help="base: continue the prompt; chat: chat template + EvalPlus instruction (default: base)")
    _flag(gen, "max_new_tokens", type=int, default=512, metavar="N")
    _flag(gen, "batch_size", type=int, default=8, metavar="N", help="prompts per generation call (and per append to samples.jsonl)")
    _flag(gen, "dynamic_slots", type=int, default=0, metavar="N",
          help="greedy HF decoding with N refilling slots: a finished row frees its slot for the next prompt at once "
               "(CPU speed-up; use a --batch_size of several times N). 0 = model.generate (default)")
    _flag(gen, "n_samples", type=int, default=1, metavar="N", help="samples per task (default 1 = greedy pass@1)")
    _flag(gen, "temperature", type=float, default=0.0, metavar="T", help="0 = greedy (default)")
    _flag(gen, "top_p", type=float, default=0.95, metavar="P", help="nucleus sampling when temperature > 0")
    _flag(gen, "seed", type=int, default=0)
    _flag(gen, "dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
          help="auto: bf16 on CUDA, fp32 on CPU")
    _flag(gen, "threads", type=int, metavar="N", help="CPU threads for generation (default: all usable cores)")
    _flag(gen, "resume", action="store_true", help="continue an interrupted run in --output (keeps finished samples)")
    _flag(gen, "generation_only", action="store_true", help="write samples.jsonl and stop (no code execution)")

    exe = parser.add_argument_group("execution")
    _flag(exe, "allow_code_execution", action="store_true",
          help="required to run model-written code (sandboxed subprocesses; not a security boundary: use a container)")
    _flag(exe, "parallel", type=int, metavar="N", help="concurrent test processes (default: CPU count)")
    _flag(exe, "timeout_scale", type=float, default=1.0, metavar="X", help="multiply every time limit (slow machines)")

    out = parser.add_argument_group("output")
    _flag(out, "output", metavar="DIR_OR_FILE", help="run directory (evaluation) or report FILE.md (--compare)")
    accept_both_spellings(parser)
    return parser


def _split_benchmarks(text: str | None) -> list[str]:
    names: list[str] = []
    for part in (text or "").split(","):
        part = part.strip()
        if part and part not in names:
            names.append(part)
    return names


def validate(args: argparse.Namespace) -> str:
    """Return the mode; raise :class:`UsageError` for any inconsistent combination (before any heavy work)."""
    modes = [m for m in ("model", "samples", "compare", "list_benchmarks") if getattr(args, m)]
    if len(modes) != 1:
        raise UsageError("give exactly one of --model, --samples, --compare, --list_benchmarks")
    mode = modes[0]
    if mode == "list_benchmarks":
        return mode
    if not args.output:
        raise UsageError("--output is required")
    if mode == "compare":
        if not args.output.endswith(".md"):
            raise UsageError(f"--compare writes a markdown report: --output must end in .md (got {args.output!r})")
        for run_dir in args.compare:
            if not (Path(run_dir) / "results.json").is_file():
                raise UsageError(f"--compare: {run_dir} has no results.json")
        return mode
    if not _split_benchmarks(args.benchmarks):
        raise UsageError("--benchmarks is required (comma-separated, e.g. humaneval,humaneval+)")
    if mode == "samples":
        if not Path(args.samples).is_file():
            raise UsageError(f"--samples file {args.samples!r} does not exist")
        if args.generation_only:
            raise UsageError("--generation_only makes no sense with --samples")
    if not args.allow_code_execution and not (mode == "model" and args.generation_only):
        raise UsageError(
            "evaluation executes model-written code: pass --allow_code_execution to accept that "
            "(run inside a container or VM), or --generation_only to only generate"
        )
    for name in ("limit", "max_new_tokens", "batch_size", "n_samples", "parallel", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be >= 1 (got {value})")
    if args.dynamic_slots < 0:
        raise UsageError(f"--dynamic_slots must be >= 0 (got {args.dynamic_slots})")
    if args.timeout_scale <= 0:
        raise UsageError("--timeout_scale must be > 0")
    if args.temperature < 0:
        raise UsageError("--temperature must be >= 0")
    if args.n_samples > 1 and args.temperature == 0:
        raise UsageError("--n_samples > 1 needs --temperature > 0 (greedy samples would all be identical)")
    if args.adapter and mode == "model" and not (Path(args.adapter) / "adapter_config.json").is_file():
        raise UsageError(f"--adapter {args.adapter!r} is not a PEFT adapter folder (no adapter_config.json)")
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data_dir {args.data_dir!r} is not a directory")
    return mode
