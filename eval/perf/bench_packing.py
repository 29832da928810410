"""Padding with and without CodeBlock's dynamic pack, on real rows rendered exactly as `codeblock prepare` renders them.

    .venv/bin/python eval/perf/bench_packing.py --data ../shared/data/gpteacher-codegen/codegen-instruct-python-subset.jsonl.gz \
        --model qwen2.5-coder-0.5b-instruct --max_length 512 --batch_sizes 2,8

Token counts only (no model forward): for each batch size, the tokens a padded batch holds when rows are batched in
data order (padding to the longest row of each batch, what the Trainer's default collator does) versus when the
same rows are first packed first-fit-decreasing into rows of at most ``--max_length`` tokens
(:func:`codeblock.labels.packing.padding_report`). Training cost on CPU is about linear in those tokens.
"""

from __future__ import annotations

import argparse
import json
import sys


def rendered_lengths(data: str, model: str, max_length: int) -> tuple[list[int], dict]:
    from transformers import AutoTokenizer

    from codeblock.config import CodeBlockConfig
    from codeblock.data_io import load_rows, normalize_rows
    from codeblock.labels.render import Renderer, RenderSkip
    from codeblock.models import resolve_model

    config = CodeBlockConfig(max_seq_length=max_length)
    rows, read_skips, _ = load_rows(data)
    examples, skips = normalize_rows(list(rows), config)
    tok = AutoTokenizer.from_pretrained(resolve_model(model))
    renderer = Renderer(tok, template=config.template, max_seq_length=max_length, system_prompt=config.system_prompt)
    lengths = []
    for ex in examples:
        try:
            lengths.append(len(renderer.render(ex).input_ids))
        except RenderSkip as skip:
            skips.add(ex.index, skip.reason, skip.detail)
    counts = dict(read_skips.counts)
    for reason, n in skips.counts.items():
        counts[reason] = counts.get(reason, 0) + n
    return lengths, counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--max_length", type=int, default=512)
    p.add_argument("--batch_sizes", default="2,8")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from codeblock.labels.packing import padding_report

    lengths, skipped = rendered_lengths(args.data, args.model, args.max_length)
    if not lengths:
        print(f"bench_packing: no row of {args.data} could be rendered (skips: {skipped})", file=sys.stderr)
        return 1
    table = Table(title=f"{args.data}: {len(lengths)} rows, mean {sum(lengths) / len(lengths):.0f} tokens, "
                        f"packed to {args.max_length}")
    for col in ("batch rows", "real tokens", "padded, unpacked", "padded, packed", "packs", "padding removed",
                "tokens processed, packed / unpacked"):
        table.add_column(col, justify="right")
    out = {"data": args.data, "model": args.model, "max_length": args.max_length, "n_rows": len(lengths),
           "skipped": skipped, "by_batch_size": {}}
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        rep = padding_report(lengths, args.max_length, bs)
        ratio = rep.padded_tokens_packed / rep.padded_tokens_unpacked
        table.add_row(str(bs), f"{rep.real_tokens:,}", f"{rep.padded_tokens_unpacked:,}", f"{rep.padded_tokens_packed:,}",
                      f"{rep.n_packs:,}", f"{rep.padding_reduction:.1%}", f"{ratio:.3f}")
        out["by_batch_size"][bs] = {"real_tokens": rep.real_tokens, "padded_unpacked": rep.padded_tokens_unpacked,
                                    "padded_packed": rep.padded_tokens_packed, "n_packs": rep.n_packs,
                                    "padding_reduction": rep.padding_reduction, "processed_ratio": ratio}
    Console(width=150).print(table)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
