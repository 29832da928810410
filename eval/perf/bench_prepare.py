"""Benchmark: wall time of `prepare` vs one bare batched forward pass of the scoring model over the same tokens.

    python eval/perf/bench_prepare.py [--data PATH] [--model smollm2-135m-instruct] [--limit 300] [--batch-size 8]

Both sides use the same loaded model, the same token ids (the rendered, truncated training rows) and the same batch
size; the bare pass is plain ``model(input_ids, attention_mask)`` under ``torch.no_grad`` with length-sorted batches.
`prepare` runs with ``pair_selector=none`` (IFD-based pair selection costs two extra passes per pool pair by design;
it is reported separately when ``--with-pairs`` is given) and no score cache. Prints the ratio (target <= 1.2x) and
the split by stage. Take the lock on shared machines: ``flock /tmp/codeblock-heavy.lock python eval/perf/bench_prepare.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(os.environ.get("CODEBLOCK_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "data")) / \
    "gpteacher-codegen" / "codegen-instruct-python-subset.jsonl.gz"


def bare_forward(model, ids_list, batch_size: int) -> float:
    import torch

    order = sorted(range(len(ids_list)), key=lambda i: (-len(ids_list[i]), i))
    t0 = time.perf_counter()
    with torch.no_grad():
        for k in range(0, len(order), batch_size):
            rows = [ids_list[i] for i in order[k : k + batch_size]]
            longest = max(len(r) for r in rows)
            ids = torch.zeros((len(rows), longest), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for j, r in enumerate(rows):
                ids[j, : len(r)] = torch.tensor(r)
                mask[j, : len(r)] = 1
            model(input_ids=ids, attention_mask=mask)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--with-pairs", action="store_true", help="also time the default pair selector")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch

    from codeblock.config import CodeBlockConfig
    from codeblock.data_io import Example, load_rows, normalize_rows
    from codeblock.labels.render import Renderer, RenderSkip
    from codeblock.models import load_model_and_tokenizer
    from codeblock.prepare.pipeline import prepare_dataset
    from codeblock.scoring.scorer import Scorer

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model, tok = load_model_and_tokenizer(args.model, dtype=torch.float32, device="cpu")
    rows, skips, _ = load_rows(args.data, limit=args.limit)
    config = CodeBlockConfig(pair_selector="none", scoring_batch_size=args.batch_size)
    renderer = Renderer(tok, template=config.template, max_seq_length=config.max_seq_length)
    examples, _ = normalize_rows(rows, config)
    ids_list = []
    for ex in examples:
        try:
            ids_list.append(renderer.render(ex).input_ids)
        except RenderSkip:
            pass
    n_tokens = sum(len(x) for x in ids_list)
    bare_forward(model, ids_list[: args.batch_size], args.batch_size)  # warm-up (allocator, kernels)
    bare = bare_forward(model, ids_list, args.batch_size)

    def timed(cfg):
        scorer = Scorer(args.model, model=model, identity="bench", batch_size=args.batch_size, max_tokens_per_batch=1 << 30, progress=False)
        t0 = time.perf_counter()
        out = prepare_dataset(rows, tokenizer=tok, scorer=scorer, config=cfg, progress=False, read_skips=skips)
        return time.perf_counter() - t0, out

    wall, out = timed(config)
    result = {"model": args.model, "rows": len(rows), "sequences": len(ids_list), "tokens": n_tokens,
              "bare_forward_s": round(bare, 2), "prepare_s": round(wall, 2), "ratio": round(wall / bare, 3),
              "stages_s": out.stats["timings_s"], "supervised_fraction": out.stats["supervised_fraction"],
              "torch_threads": torch.get_num_threads()}
    if args.with_pairs:
        wall_p, out_p = timed(CodeBlockConfig(scoring_batch_size=args.batch_size))
        result.update(prepare_default_pairs_s=round(wall_p, 2), ratio_default_pairs=round(wall_p / bare, 3),
                      stages_default_pairs_s=out_p.stats["timings_s"])
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"prepare vs bare forward ({args.model}, {len(ids_list)} rows, {n_tokens} tokens)")
    table.add_column("measure")
    table.add_column("seconds", justify="right")
    table.add_row("bare batched forward", f"{bare:.2f}")
    table.add_row("prepare (pair_selector=none)", f"{wall:.2f}  ({wall / bare:.2f}x)")
    for stage, s in out.stats["timings_s"].items():
        table.add_row(f"  {stage}", f"{s:.2f}")
    if args.with_pairs:
        table.add_row("prepare (default pair selector)", f"{result['prepare_default_pairs_s']:.2f}  ({result['ratio_default_pairs']:.2f}x)")
    Console().print(table)
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
