"""Generation throughput side by side: batch sizes (left padding + per-row stops) on real HumanEval prompts.

    python eval/perf/bench_generation.py --model smollm2-135m-instruct --n_prompts 8 --batch_sizes 1,4,8 --dynamic_slots 8

Prints, per batch size, wall time, new tokens/s and the speed-up over the first batch size, all measured in one
process on the same prompts (greedy, base prompt style, HumanEval stop sequences). Also checks that every batch size
produced the same completions (left padding must not change greedy outputs beyond float noise) and reports how many
differ. ``--dynamic_slots N`` adds rows for refilling-slot greedy decoding (``codeblock-eval --dynamic_slots``), where a
finished row frees its slot for the next prompt instead of idling until the batch's longest row ends.
Use it to pick ``--batch_size`` / ``--dynamic_slots`` for a machine; run heavy models under ``flock /tmp/codeblock-heavy.lock``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    from codeblock_eval.benchmarks.registry import get_benchmark
    from codeblock_eval.generation import GenerationSettings, HFGenerator, build_prompt, stop_sequences_for

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--benchmark", default="humaneval")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--n_prompts", type=int, default=8)
    parser.add_argument("--batch_sizes", default="1,4,8")
    parser.add_argument("--max_new_tokens", type=int, default=128)
    parser.add_argument("--dynamic_slots", default="", help="comma-separated slot counts to compare as well, e.g. 4,8")
    args = parser.parse_args(argv)

    problems = get_benchmark(args.benchmark).load_problems(Path(args.data_dir) if args.data_dir else None)[: args.n_prompts]
    generator = HFGenerator(GenerationSettings(model=args.model, max_new_tokens=args.max_new_tokens))
    prompts = [build_prompt(p, "base") for p in problems]
    stops = [stop_sequences_for(p, "base") for p in problems]
    generator.generate(prompts[:1], stops[:1])  # warm-up (allocator, kernels)
    reference = None
    print(f"model {args.model}  device {generator.device}  prompts {len(prompts)}  max_new_tokens {args.max_new_tokens}")
    print(f"{'batch':>5} {'seconds':>8} {'new tok':>8} {'tok/s':>7} {'speed-up':>8} {'differ':>6}")
    base_rate = None
    arms = [("batch", int(b)) for b in args.batch_sizes.split(",") if b]
    arms += [("slots", int(n)) for n in args.dynamic_slots.split(",") if n]
    for kind, size in arms:
        start = time.perf_counter()
        outputs = []
        if kind == "slots":  # the same loaded model, decoded with refilling slots over all prompts at once
            generator.dynamic_slots = size
            outputs = generator.generate(prompts, stops)
            generator.dynamic_slots = 0
        else:
            for i in range(0, len(prompts), size):
                outputs += generator.generate(prompts[i : i + size], stops[i : i + size])
        seconds = time.perf_counter() - start
        batch_size = f"{size}" if kind == "batch" else f"{size}dyn"
        tokens = sum(n for _, n, _ in outputs)
        rate = tokens / seconds
        base_rate = base_rate or rate
        texts = [text for text, _, _ in outputs]
        reference = reference or texts
        differ = sum(a != b for a, b in zip(reference, texts))
        print(f"{batch_size:>5} {seconds:>8.1f} {tokens:>8} {rate:>7.1f} {rate / base_rate:>7.2f}x {differ:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
