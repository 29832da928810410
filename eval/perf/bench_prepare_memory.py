"""Benchmark: peak memory of `prepare` against the number of input rows (1k, 10k, 100k) with a stub scorer.

    python eval/perf/bench_prepare_memory.py [--rows 1000,10000,100000] [--json F]

Each size runs in a fresh process: synthetic instruction/response rows (varied Python functions in fenced
responses, ~120 response tokens) are written to a .jsonl.gz, then ``run_prepare`` reads them through the streaming
reader and runs the whole pipeline (render, pair selection ``random``, structure analysis, scores, budget, labels,
writing dataset/ and train.jsonl) with SmolLM2's real tokenizer and a stub scorer (token log-probs from a hash, so
no model weights are in memory; its scores depend on the row alone, like ``batching: row``, so the pipeline scores it
chunk by chunk). Peak RSS is the process's ``ru_maxrss``; a run with 0 rows gives the fixed cost (imports, tokenizer).
Prints peak RSS per size and the slope (KiB per extra row) between the two largest sizes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

VERBS = ["count", "sum", "filter", "merge", "sort", "group", "scale", "clip", "find", "join"]
NOUNS = ["items", "scores", "names", "paths", "values", "rows", "words", "pairs", "events", "tokens"]


def synthetic_row(k: int) -> dict:
    rng = random.Random(k)
    verb, noun = rng.choice(VERBS), rng.choice(NOUNS)
    a, b = rng.randint(1, 99), rng.randint(1, 9)
    code = (f"def {verb}_{noun}_{k}({noun}, limit={a}):\n"
            f"    result = []\n"
            f"    for i, x in enumerate({noun}):\n"
            f"        if i % {b} == 0 and x is not None:\n"
            f"            result.append(x * {b} + i)\n"
            f"    total = sum(result[:limit])\n"
            f"    return total if total > {a} else -total\n")
    return {"instruction": f"Write a Python function that does {verb} over {noun} (variant {k}).",
            "output": f"Here is the function:\n\n```python\n{code}```\n\nIt walks the {noun} once and caps at {a}."}


class StubScorer:
    """Deterministic log-probs from a hash of (token, previous token); no model in memory."""

    n_forward_rows = 0
    n_cached_rows = 0

    def token_logprobs(self, ids_list):
        import numpy as np

        out = []
        for ids in ids_list:
            arr = np.asarray(ids, dtype=np.int64)
            prev = np.concatenate([[0], arr[:-1]])
            h = ((arr * 2654435761) ^ (prev * 40503)) % 9973
            lp = np.log(0.02 + 0.96 * h / 9973).astype(np.float32)
            if len(lp):
                lp[0] = np.nan
            out.append(lp)
            self.n_forward_rows += 1
        return out


def child(n: int, workdir: Path) -> dict:
    sys.path.insert(0, str(REPO / "plugin"))
    from transformers import AutoTokenizer

    from codeblock.cli.prepare import run_prepare
    from codeblock.config import CodeBlockConfig
    from codeblock.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))
    data = workdir / f"rows-{n}.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as fh:
        for k in range(n):
            fh.write(json.dumps(synthetic_row(k)) + "\n")
    config = CodeBlockConfig(pair_selector="random", decontaminate="none", scan_secrets="off", max_seq_length=512)
    t0 = time.perf_counter()
    stats = run_prepare(str(data), "smollm2-135m-instruct", workdir / f"out-{n}", config, scorer=StubScorer(),
                        tokenizer=tok, progress=False, selection_text=False) if n else {"n_kept": 0}
    return {"rows": n, "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "wall_s": round(time.perf_counter() - t0, 1), "n_kept": stats["n_kept"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="0,1000,10000,100000")
    parser.add_argument("--json")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, Path(args.workdir))))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    results = []
    for n in (int(x) for x in args.rows.split(",")):
        env = {**os.environ, "TQDM_DISABLE": "1"}
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--workdir", str(workdir)], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{n} rows failed:\n{proc.stderr[-3000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    big = [r for r in results if r["rows"]][-2:]
    slope = None
    if len(big) == 2:
        slope = round((big[1]["peak_rss_mib"] - big[0]["peak_rss_mib"]) * 1024 / (big[1]["rows"] - big[0]["rows"]), 2)
    summary = {"results": results, "slope_kib_per_row": slope, "between": [r["rows"] for r in big]}
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
