"""Training-step benchmark: dense, TRL chunked_nll and CodeBlock sparse losses, on full-token and CodeBlock labels.

    nice -n 5 .venv/bin/python eval/perf/bench_training.py \
        --model qwen2.5-coder-0.5b-instruct --batch 2 --seq 512 --steps 2 [--repeats 2] [--out bench.json]

Each arm runs in its own subprocess (same model, same batch, same LoRA, same seed). Peak memory is measured over the
training steps only, like ``torch.cuda.reset_peak_memory_stats`` + ``max_memory_allocated`` on CUDA: on CPU the
process's peak resident set (``VmHWM``) is reset after the model is loaded (``/proc/self/clear_refs``), so the
transient of loading the checkpoint does not hide what training needs; it still counts the model's own weights. The
whole-process peak (load included) is printed too. Printed: median step time, peak memory, and their ratios vs (a).

``--gradient_checkpointing both`` (default) measures every arm without and with activation checkpointing in one run:
the GPU QLoRA recipes train with it, and with it the logits are the largest activation left, which is what the
sparse loss removes.

Arms (same model, batch, LoRA and seed; "full" = every response token supervised, "cb" = CodeBlock density):
  full / cb_dense        : transformers' dense loss, i.e. TRL ``loss_type="nll"`` (full ``[B, T, V]`` logits);
  full_chunked / cb_chunked: TRL 1.14's default ``loss_type="chunked_nll"`` (its ``_patch_chunked_ce_lm_head``: the
                           LM head only on non-ignored positions, cross-entropy in chunks of 256 tokens);
  full_sparse / cb_sparse: CodeBlock's sparse LM-head loss (``codeblock.training.sparse_loss``).

Which tokens are supervised does not change the cost, only how many, so the cb arms use a seeded sample at the budget
density (``--density``, default 1.9% of response tokens); the exactness of the sparse loss vs the dense one is covered
by tests/training/test_sparse_loss.py. ``--arms`` picks a subset. Results are written as JSON (``--out``) with
versions and settings; every finished run is also appended to ``<out>.runs.jsonl`` (with the load average before it),
and rerunning the same command reuses those runs, so a long run resumes after an interruption.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ARMS = ("full", "full_chunked", "full_sparse", "cb_dense", "cb_chunked", "cb_sparse")


def loss_kind(arm: str) -> str:
    return "sparse" if arm.endswith("sparse") else "chunked" if arm.endswith("chunked") else "dense"


def _patch_trl_chunked(model):
    """What ``SFTTrainer(args=SFTConfig(loss_type="chunked_nll"))`` does to the model (TRL 1.14): patch the inner
    causal LM's forward (PEFT's LoRA layers are in its module tree)."""
    from trl.trainer.sft_trainer import _CHUNKED_LM_HEAD_CHUNK_SIZE, _patch_chunked_ce_lm_head

    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    _patch_chunked_ce_lm_head(target, chunk_size=_CHUNKED_LM_HEAD_CHUNK_SIZE)


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
        if arm.startswith("full"):
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
    from codeblock.training.cpu_memory import malloc_tuning_state, proc_status_mb, reset_peak_rss, tune_malloc_for_training
    from codeblock.training.sparse_loss import sparse_causal_lm_loss

    if args.malloc == "tuned":
        tune_malloc_for_training()  # what `codeblock train` does on CPU
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available() and not args.cpu
    device = "cuda" if cuda else "cpu"
    path = resolve_model(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if cuda else torch.float32).to(device)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0))
    if args.gc:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if loss_kind(args.arm) == "chunked":
        _patch_trl_chunked(model)
    model.train()
    batch = {k: v.to(device) for k, v in _batch(tok, args.batch, args.seq, args.density, args.arm, args.seed).items()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    load_peak = proc_status_mb("VmHWM")  # whole process so far: loading included
    rss_before = proc_status_mb("VmRSS")
    hwm_reset = reset_peak_rss()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for step in range(args.steps + 1):  # step 0 is warm-up, not timed
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        if loss_kind(args.arm) == "sparse":
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
    train_peak = proc_status_mb("VmHWM")
    out = {"arm": args.arm, "loss": loss_kind(args.arm), "gradient_checkpointing": bool(args.gc), "device": device,
           "step_s": statistics.median(times), "step_times_s": times, "losses": losses,
           "n_tokens": int(batch["attention_mask"].sum()),
           "n_supervised": int((batch["labels"][:, 1:] != -100).sum()),
           "rss_before_train_mb": rss_before,
           # Without a VmHWM reset (non-Linux) the only peak there is includes loading; say so in the key's value.
           "peak_rss_kind": "training steps" if hwm_reset else "whole process (VmHWM reset unavailable)",
           "peak_rss_mb": train_peak,
           "process_peak_rss_mb": max(load_peak or 0.0, train_peak or 0.0), "malloc": malloc_tuning_state()}
    if rss_before is not None and train_peak is not None:
        out["train_peak_over_model_mb"] = train_peak - rss_before
    if cuda:
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _run_arm(arm: str, gc: bool, passthrough: list[str]) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--arm", arm, "--gc", str(int(gc)), *passthrough]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"bench_training: arm {arm} (gradient_checkpointing={gc}) failed, exit {proc.returncode}")
    return json.loads(line[len("RESULT "):])


def _load_done_runs(path: Path | None, passthrough: list[str]) -> dict[tuple, dict]:
    """Runs finished earlier with the same settings, keyed by (gc, arm, repeat); a torn last line is ignored."""
    done: dict[tuple, dict] = {}
    if path is None or not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("settings") == passthrough:
            done[(rec["gc"], rec["arm"], rec["repeat"])] = rec["result"]
    if done:
        print(f"bench_training: reusing {len(done)} finished runs from {path}", file=sys.stderr)
    return done


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def _combine(runs: list[dict]) -> dict:
    """One arm over its repeats: the median of the per-run median step times and of the per-run peaks (each with its
    min and max across repeats under ``spread``), the first run's other fields."""
    out = dict(runs[0])
    out["step_times_s"] = [t for r in runs for t in r["step_times_s"]]
    out["run_step_s"] = [r["step_s"] for r in runs]
    out["spread"] = {"step_s": _spread(out["run_step_s"])}
    out["step_s"] = out["spread"]["step_s"]["median"]
    for key in ("peak_rss_mb", "process_peak_rss_mb", "peak_cuda_mb", "train_peak_over_model_mb"):
        vals = [r[key] for r in runs if r.get(key) is not None]
        if vals:
            out["spread"][key] = _spread(vals)
            out[key] = out["spread"][key]["median"]
    out["repeats"] = len(runs)
    return out


def run_order(arms: list[str], repeats: int) -> list[str]:
    """Arms in the order they run: every repeat runs each arm once (interleaved), and each repeat starts one arm later,
    so that no arm always follows the same neighbour or always runs first on a machine whose load drifts.

    >>> run_order(["full", "cb_dense", "cb_sparse"], 2)
    ['full', 'cb_dense', 'cb_sparse', 'cb_dense', 'cb_sparse', 'full']
    """
    return [arms[(r + i) % len(arms)] for r in range(repeats) for i in range(len(arms))]


def _ratio(base: float | None, value: float | None) -> str:
    return f"{1 - value / base:+.1%}" if base and value is not None else "n/a"


def _print_table(title: str, results: dict, mem_key: str) -> None:
    from rich.console import Console
    from rich.table import Table

    base = results["full"]
    table = Table(title=title)
    for col in ("arm", "loss", "loss@0", "supervised/tokens", "step s [min-max]", "speed-up", f"{mem_key} [min-max]",
                "lower", "train peak over model MB", "lower", "process peak MB"):
        table.add_column(col, justify="right")

    def spread(r, key, fmt):
        s = r.get("spread", {}).get(key)
        rng = f" [{s['min']:{fmt}}-{s['max']:{fmt}}]" if s and s["n"] > 1 else ""
        return f"{r[key]:{fmt}}{rng}"

    for arm, r in results.items():
        first = arm == "full"
        table.add_row(arm, r["loss"], f"{r['losses'][0]:.5f}", f"{r['n_supervised']}/{r['n_tokens']}",
                      spread(r, "step_s", ".2f"), f"{base['step_s'] / r['step_s']:.2f}x", spread(r, mem_key, ".0f"),
                      "-" if first else _ratio(base[mem_key], r[mem_key]),
                      f"{r.get('train_peak_over_model_mb', float('nan')):.0f}",
                      "-" if first else _ratio(base.get("train_peak_over_model_mb"), r.get("train_peak_over_model_mb")),
                      f"{r['process_peak_rss_mb']:.0f}")
    Console(width=150).print(table)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--density", type=float, default=0.019)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gradient_checkpointing", choices=("off", "on", "both"), default="both",
                   help="activation checkpointing for every arm: off, on, or both (two tables, one run)")
    p.add_argument("--malloc", choices=("tuned", "default"), default="tuned",
                   help="tuned: pin glibc's mmap threshold as `codeblock train` does on CPU (codeblock.training.cpu_memory); "
                        "default: glibc's dynamic threshold (RSS then grows to ~the same peak for every arm)")
    p.add_argument("--cpu", action="store_true", help="force CPU even when CUDA is available")
    p.add_argument("--out", default=None, help="write the results JSON here")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {', '.join(ARMS)} (full first)")
    p.add_argument("--repeats", type=int, default=1, help="run every arm this many times (fresh process each, arms "
                   "interleaved and rotated per repeat; the median over repeats is reported with min and max)")
    p.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)
    p.add_argument("--gc", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0
    passthrough = []  # what the workers need: the shared settings, not --out / --gradient_checkpointing
    for key in ("model", "batch", "seq", "steps", "density", "threads", "seed", "malloc"):  # not --arms/--repeats
        passthrough += [f"--{key}", str(getattr(args, key))]
    if args.cpu:
        passthrough.append("--cpu")
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in arms if a not in ARMS]
    if bad or not arms or arms[0] != "full" or "cb_sparse" not in arms:
        raise SystemExit(f"--arms: {bad or arms}: use a subset of {', '.join(ARMS)} starting with full and "
                         "including cb_sparse")
    gcs = {"off": [False], "on": [True], "both": [False, True]}[args.gradient_checkpointing]
    runs: dict[str, dict] = {}
    summary: dict[str, dict] = {}
    # Every finished run is appended to <out>.runs.jsonl, and a rerun with the same settings reuses those runs: a
    # 12-arm Qwen run with repeats takes hours on a shared CPU and must survive an interrupted working period.
    done_log = Path(args.out).with_suffix(".runs.jsonl") if args.out else None
    done = _load_done_runs(done_log, passthrough)
    for gc in gcs:
        results = {arm: [] for arm in arms}  # keeps the table's order (full first)
        for arm in run_order(arms, args.repeats):  # interleaved: drift on a shared machine hits every arm
            key = (int(gc), arm, len(results[arm]))
            if key in done:
                results[arm].append(done[key])
                continue
            load = os.getloadavg()[0]
            result = _run_arm(arm, gc, passthrough)
            result["load_average_before"] = round(load, 2)
            results[arm].append(result)
            if done_log is not None:
                with open(done_log, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"settings": passthrough, "gc": int(gc), "arm": arm, "repeat": key[2],
                                         "result": result}) + "\n")
            print(f"bench_training: {arm} gc={'on' if gc else 'off'} repeat {key[2] + 1}/{args.repeats}: step "
                  f"{result['step_s']:.1f} s, peak {result.get('peak_cuda_mb') or result.get('peak_rss_mb')} MB "
                  f"(load {load:.1f})", file=sys.stderr, flush=True)
        results = {arm: _combine(rs) for arm, rs in results.items()}
        key = "gc_on" if gc else "gc_off"
        runs[key] = results
        base, c = results["full"], results["cb_sparse"]
        mem_key = "peak_cuda_mb" if "peak_cuda_mb" in base else "peak_rss_mb"
        title = (f"training step: {args.model}, batch {args.batch} x {args.seq}, {args.steps} timed steps, LoRA r=8, "
                 f"gradient checkpointing {'on' if gc else 'off'}, malloc {args.malloc} (peak over the training steps; "
                 "speed-up and lower are vs full)")
        _print_table(title, results, mem_key)
        summary[key] = {
            "speedup_sparse_vs_full": base["step_s"] / c["step_s"],
            **({"speedup_sparse_vs_cb_dense": results["cb_dense"]["step_s"] / c["step_s"]} if "cb_dense" in results else {}),
            **({"speedup_sparse_vs_cb_chunked": results["cb_chunked"]["step_s"] / c["step_s"],
                "peak_mem_reduction_sparse_vs_cb_chunked": 1 - c[mem_key] / results["cb_chunked"][mem_key]}
               if "cb_chunked" in results else {}),
            "peak_mem_reduction_sparse_vs_full": 1 - c[mem_key] / base[mem_key],
            "memory_measure": mem_key if mem_key == "peak_cuda_mb" else f"{mem_key} ({base['peak_rss_kind']})",
        }
        if base.get("train_peak_over_model_mb") and c.get("train_peak_over_model_mb") is not None:
            summary[key]["train_mem_over_model_reduction_sparse_vs_full"] = (
                1 - c["train_peak_over_model_mb"] / base["train_peak_over_model_mb"])
    print(json.dumps(summary, indent=2))
    if args.out:
        import torch
        import transformers

        meta = {"settings": vars(args), "python": platform.python_version(), "torch": torch.__version__,
                "transformers": transformers.__version__, "machine": platform.machine(), "cpu_count": os.cpu_count()}
        Path(args.out).write_text(json.dumps({"meta": meta, "results": runs, "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
