"""Benchmark: `codeblock prepare --num_workers 2` vs `--num_workers 1` on the same input, and what batch-invariant
scoring costs (one unpadded row per forward vs padded batches).

    python eval/perf/bench_prepare_workers.py [--data PATH] [--model smollm2-135m-instruct] [--limit 48] [--json F]

Both prepare runs are the real command (`python -m codeblock.cli prepare`, no score cache, default pair selector, so
IFD pair selection and token scoring both run on the model); it prints the two wall times, their ratio and whether
train.jsonl / selection.jsonl are byte-identical. The second part scores the rendered rows of the same input with
``Scorer(batching="row")`` and ``Scorer(batching="padded")`` side by side in this process and prints the time ratio
and the largest score difference. Wall times on a shared machine move with its load: report them with the load.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = Path(os.environ.get("CODEBLOCK_DATA_DIR", REPO.parent / "shared" / "data")) / \
    "gpteacher-codegen" / "codegen-instruct-python-subset.jsonl.gz"


def run_prepare(data: Path, model: str, out: Path, workers: int) -> float:
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(REPO / "plugin")}
    cmd = [sys.executable, "-m", "codeblock.cli", "prepare", "--data", str(data), "--model", model, "--out", str(out),
           "--score-cache", "none", "--decontaminate", "none", "--scan-secrets", "off", "--quiet",
           "--num_workers", str(workers)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"prepare --num_workers {workers} failed:\n{proc.stderr[-3000:]}")
    return wall


def scoring_modes(data: Path, model: str) -> dict:
    sys.path.insert(0, str(REPO / "plugin"))
    import numpy as np

    from codeblock.config import CodeBlockConfig
    from codeblock.data_io import load_rows, normalize_rows
    from codeblock.labels.render import Renderer, RenderSkip
    from codeblock.models import load_model_and_tokenizer
    from codeblock.scoring.scorer import Scorer

    loaded, tok = load_model_and_tokenizer(model, device="cpu")
    rows, _, _ = load_rows(data)
    examples, _ = normalize_rows(rows, CodeBlockConfig())
    renderer = Renderer(tok, template="auto", max_seq_length=2048)
    ids = []
    for ex in examples:
        try:
            ids.append(renderer.render(ex).input_ids)
        except RenderSkip:
            pass
    out = {}
    for mode in ("row", "padded"):
        scorer = Scorer(model, model=loaded, identity="bench", batch_size=8, progress=False, batching=mode)
        t0 = time.perf_counter()
        out[mode] = (scorer.token_logprobs(ids), time.perf_counter() - t0)
    diff = max(float(np.nanmax(np.abs(a - b))) for a, b in zip(out["row"][0], out["padded"][0]) if len(a) > 1)
    return {"rows": len(ids), "tokens": sum(map(len, ids)), "row_s": round(out["row"][1], 2),
            "padded_s": round(out["padded"][1], 2), "row_over_padded": round(out["row"][1] / out["padded"][1], 3),
            "max_abs_score_difference": diff}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--limit", type=int, default=48)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    data = tmp / "input.jsonl.gz"
    with gzip.open(args.data, "rt", encoding="utf-8") as src, gzip.open(data, "wt", encoding="utf-8") as dst:
        for k, line in enumerate(src):
            if k >= args.limit:
                break
            dst.write(line)
    load_before = os.getloadavg()
    one = run_prepare(data, args.model, tmp / "w1", 1)
    two = run_prepare(data, args.model, tmp / "w2", 2)
    same = {name: (tmp / "w1" / name).read_bytes() == (tmp / "w2" / name).read_bytes()
            for name in ("train.jsonl", "selection.jsonl", "pair_scores.jsonl") if (tmp / "w1" / name).exists()}
    stats = json.loads((tmp / "w2" / "stats.json").read_text())
    result = {"rows": args.limit, "model": args.model, "cpu_count": os.cpu_count(),
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()],
              "wall_s_1_worker": round(one, 1), "wall_s_2_workers": round(two, 1),
              "ratio_2_over_1": round(two / one, 3), "byte_identical": same,
              "forward_rows_by_rank": stats["scoring"].get("forward_rows_by_rank"),
              "gpu": "not measured (no GPU lent)"}
    print(json.dumps(result, indent=2))
    modes = scoring_modes(data, args.model)
    result["scoring_row_vs_padded"] = modes
    print(json.dumps(modes, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
