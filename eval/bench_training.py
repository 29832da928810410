"""Training-step benchmark: full-token SFT vs CodeBlock labels (dense loss) vs CodeBlock labels (sparse LM-head loss).

    flock /tmp/codeblock-heavy.lock .venv/bin/python eval/bench_training.py \
        --model qwen2.5-coder-0.5b-instruct --batch 2 --seq 256 --steps 3

Each arm runs in its own subprocess (same model, same batch, same LoRA, same seed) so peak RSS is per arm; on CUDA the
peak is ``torch.cuda.max_memory_allocated``. Printed: median step time, peak memory, and their ratios vs arm (a).

Arms:
  (a) full   : every response token supervised, transformers' dense loss;
  (b) cb_dense: CodeBlock label density (``--density``, default 1.9% of response tokens, seeded choice), dense loss;
  (c) cb_sparse: same labels as (b), CodeBlock's sparse LM-head loss.

Which tokens are supervised does not change the cost, only how many, so (b)/(c) use a seeded sample at the budget
density; the exactness of (c) vs (b) is covered by tests/training/test_sparse_loss.py. Results are written as JSON
(``--out``) with versions and settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ARMS = ("full", "cb_dense", "cb_sparse")


def _batch(tok, batch: int, seq: int, density: float, arm: str, seed: int):
    import random

    import torch

    rng = random.Random(seed)
    rows = []
    for b in range(batch):
        body = "\n".join(f"def f{b}_{i}(x, y):\n    z = x * {i} + y\n    return z - {b}" for i in range(60))
        msgs = [{"role": "user", "content": f"Write helper functions, variant {b}."},
                {"role": "assistant", "content": f"Here they are:\n```python\n{body}\n```"}]
        text = tok.apply_chat_template(msgs, tokenize=False)
        start = text.rindex("Here they are")
        enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
        ids = enc["input_ids"][:seq]
        resp = [i for i, (s, _) in enumerate(enc["offset_mapping"][:seq]) if s >= start]
        if arm == "full":
            chosen = resp
        else:
            k = max(1, round(density * len(resp)))
            chosen = sorted(rng.sample(resp, k))
        labels = [-100] * len(ids)
        for i in chosen:
            labels[i] = ids[i]
        rows.append((ids, labels))
    n = max(len(r[0]) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.full((batch, n), pad)
    lab = torch.full((batch, n), -100)
    am = torch.zeros((batch, n), dtype=torch.long)
    for i, (r_ids, r_lab) in enumerate(rows):
        ids[i, :len(r_ids)] = torch.tensor(r_ids)
        lab[i, :len(r_ids)] = torch.tensor(r_lab)
        am[i, :len(r_ids)] = 1
    return {"input_ids": ids, "attention_mask": am, "labels": lab}


def worker(args) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from codeblock.models import resolve_model
    from codeblock.sparse_loss import sparse_causal_lm_loss

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available() and not args.cpu
    device = "cuda" if cuda else "cpu"
    path = resolve_model(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if cuda else torch.float32).to(device)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0))
    model.train()
    batch = {k: v.to(device) for k, v in _batch(tok, args.batch, args.seq, args.density, args.arm, args.seed).items()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for step in range(args.steps + 1):  # step 0 is warm-up, not timed
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        if args.arm == "cb_sparse":
            loss = sparse_causal_lm_loss(model, batch)
        else:
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - t0)
        losses.append(float(loss))
    out = {"arm": args.arm, "step_s": statistics.median(times), "step_times_s": times, "losses": losses,
           "n_tokens": int(batch["attention_mask"].sum()),
           "n_supervised": int((batch["labels"][:, 1:] != -100).sum()),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_after_load_mb": rss_loaded, "device": device}
    out["train_peak_over_load_mb"] = out["peak_rss_mb"] - rss_loaded
    if cuda:
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--density", type=float, default=0.019)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu", action="store_true", help="force CPU even when CUDA is available")
    p.add_argument("--out", default=None, help="write the results JSON here")
    p.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0
    results = {}
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--out"]
    if args.out:
        i = passthrough.index(args.out)
        passthrough.pop(i)
    for arm in ARMS:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", "--arm", arm, *passthrough],
                              capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            return 1
        results[arm] = json.loads(line[len("RESULT "):])
    base = results["full"]
    mem_key = "peak_cuda_mb" if "peak_cuda_mb" in base else "peak_rss_mb"
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"training step: {args.model}, batch {args.batch} x {args.seq}, {args.steps} steps, LoRA r=8")
        for col in ("arm", "supervised/tokens", "step s", "speedup vs full", mem_key, "mem vs full",
                    "train peak over load MB", "vs full"):
            table.add_column(col)
        for arm, r in results.items():
            table.add_row(arm, f"{r['n_supervised']}/{r['n_tokens']}", f"{r['step_s']:.3f}",
                          f"{base['step_s'] / r['step_s']:.2f}x", f"{r[mem_key]:.0f}",
                          f"{1 - r[mem_key] / base[mem_key]:+.1%} lower" if arm != "full" else "-",
                          f"{r['train_peak_over_load_mb']:.0f}",
                          f"{1 - r['train_peak_over_load_mb'] / max(base['train_peak_over_load_mb'], 1e-9):+.1%} lower"
                          if arm != "full" else "-")
        Console().print(table)
    except ImportError:
        print(json.dumps(results, indent=2))
    c = results["cb_sparse"]
    summary = {"speedup_sparse_vs_full": base["step_s"] / c["step_s"],
               "peak_mem_reduction_sparse_vs_full": 1 - c[mem_key] / base[mem_key],
               "train_mem_reduction_sparse_vs_full": 1 - c["train_peak_over_load_mb"] / base["train_peak_over_load_mb"],
               "speedup_sparse_vs_cb_dense": results["cb_dense"]["step_s"] / c["step_s"]}
    print(json.dumps(summary, indent=2))
    if args.out:
        import torch
        import transformers

        meta = {"settings": vars(args), "python": platform.python_version(), "torch": torch.__version__,
                "transformers": transformers.__version__, "machine": platform.machine(), "cpu_count": os.cpu_count()}
        with open(args.out, "w") as fh:
            json.dump({"meta": meta, "results": results, "summary": summary}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
