"""`codeblock train --config FILE.yaml`: LoRA/QLoRA SFT with TRL on CodeBlock (or baseline) labels, from one YAML.

The YAML maps 1:1 onto three dataclasses: :class:`TrainScriptArguments` (below), ``trl.SFTConfig`` and
``trl.ModelConfig`` (model, LoRA and 4-bit fields); an unknown key is an error (``HfArgumentParser``). Extra
``--key value`` arguments after the config override it. Data comes either raw (``data_path``: labels are built here
with ``supervision``) or already prepared (``prepared_path``: a ``codeblock prepare`` output folder, used as is).

Next to the adapter it writes ``train_metrics.json``: wall time of the training loop, peak memory over that loop
(CUDA allocator peak on GPU; on CPU the process's peak resident set, ``VmHWM``, reset after loading), steps, final
loss, rows and supervised tokens, and library versions, so experiment reports never have to re-measure.

    $ codeblock train --config recipes/trl/qwen2.5-coder-0.5b_lora_cpu_codeblock.yaml --max_steps 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrainScriptArguments:
    data_path: str | None = field(default=None, metadata={"help": "JSON/JSONL rows (messages, or instruction/response)."})
    prepared_path: str | None = field(default=None, metadata={"help": "A `codeblock prepare` output folder (used as is)."})
    supervision: str = field(default="codeblock", metadata={"help": "codeblock, or a baseline policy (full, ...)."})
    codeblock: dict = field(default_factory=dict, metadata={"help": "CodeBlockConfig keys (budget_ratio, ...)."})
    sparse_loss: bool = field(default=True, metadata={"help": "Project only supervised positions through the LM head."})
    score_cache_dir: str | None = field(default=None, metadata={"help": "Scoring cache folder."})
    merged_output_dir: str | None = field(default=None, metadata={
        "help": "Also save base model + merged adapter here as a plain model folder (e.g. a reference scorer)."})
    metrics_file: str | None = field(default=None, metadata={"help": "Where to write train_metrics.json "
                                                                      "(default: <output_dir>/train_metrics.json)."})


# Kept for recipes written against the first name of this class.
CodeBlockScriptArguments = TrainScriptArguments


def supervision_choices() -> tuple[str, ...]:
    from codeblock.config import CHOICES

    return tuple(CHOICES.get("supervision", ("codeblock", "full")))


def parse(argv=None):
    """(script_args, sft_config, model_config) from ``--config file.yaml`` (+ CLI overrides); validates before loading."""
    from trl import ModelConfig, SFTConfig, TrlParser

    from codeblock.config import CodeBlockConfig, ConfigError

    parser = TrlParser((TrainScriptArguments, SFTConfig, ModelConfig))
    script, sft, model = parser.parse_args_and_config(args=argv)
    if script.supervision not in supervision_choices():
        raise SystemExit(f"supervision must be one of {', '.join(supervision_choices())}, got {script.supervision!r}")
    if (script.data_path is None) == (script.prepared_path is None):
        raise SystemExit("set exactly one of data_path (raw rows) and prepared_path (a `codeblock prepare` folder)")
    try:
        CodeBlockConfig.from_dict(script.codeblock)  # bad knobs fail before any model load, in one line
    except ConfigError as exc:
        raise SystemExit(f"codeblock train: error: codeblock: {exc}") from None
    return script, sft, model


def peak_memory_mb(device: str) -> float | None:
    """CUDA allocator peak, else the peak resident set size of this process (Linux ``VmHWM``)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    from codeblock.training.cpu_memory import proc_status_mb

    hwm = proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dataset(script, sft, tok, path):
    from codeblock.config import CodeBlockConfig
    from codeblock.training.trl_sft import build_sft_dataset, load_prepared_dataset

    for name in ("data_path", "prepared_path"):  # checked here, not in parse(): recipes name data of the user's
        value = getattr(script, name)
        if value is not None and not Path(value).exists():
            raise SystemExit(f"{name}: {value} does not exist")
    from codeblock.config import ConfigError
    from codeblock.training.setup_checks import check_prepared_max_length, label_setup

    if script.prepared_path:
        stats_path = Path(script.prepared_path) / "stats.json"
        if stats_path.is_file():
            built = (json.loads(stats_path.read_text()).get("config") or {}).get("max_seq_length")
            try:
                check_prepared_max_length(built, sft.max_length, where=script.prepared_path, trainer_key="max_length")
            except ConfigError as exc:
                raise SystemExit(f"codeblock train: error: {exc}") from None
        return load_prepared_dataset(script.prepared_path)
    from codeblock.data_io import load_rows
    from codeblock.scoring.scorer import Scorer

    config = CodeBlockConfig.from_dict({"max_seq_length": sft.max_length or 2048, **script.codeblock,
                                        "supervision": script.supervision})
    try:
        setup = label_setup(config, model=path, tokenizer=tok)  # the checks `codeblock prepare` runs
    except ConfigError as exc:
        raise SystemExit(f"codeblock train: error: {exc}") from None
    rows, _, _ = load_rows(script.data_path)
    # full with pair_selector none needs no scores; every other combination scores (IFD pair selection included).
    needs_scores = script.supervision != "full" or config.pair_selector not in ("none", "random")
    scorer = Scorer.for_config(setup.scoring_model, config, cache_dir=script.score_cache_dir) if needs_scores else None
    reference = None
    if setup.reference_model:
        reference = Scorer.for_config(setup.reference_model, config, cache_dir=script.score_cache_dir)
    return build_sft_dataset(rows, tokenizer=tok, scorer=scorer, config=config, supervision=script.supervision,
                             reference_scorer=reference)


def main(argv=None) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import get_peft_config, get_quantization_config

    from codeblock.cli.prepare import library_versions
    from codeblock.config import CodeBlockConfig
    from codeblock.training.supervised import supervised_counts
    from codeblock.models import resolve_model
    from codeblock.training.cpu_memory import malloc_tuning_state, reset_peak_rss, tune_malloc_for_training
    from codeblock.training.trl_sft import CodeBlockSFTTrainer

    script, sft, margs = parse(argv)
    if sft.use_cpu or not torch.cuda.is_available():
        tune_malloc_for_training()  # CPU RSS follows the live tensors (codeblock.training.cpu_memory)
    path = resolve_model(margs.model_name_or_path)
    tok = AutoTokenizer.from_pretrained(path)
    train = _dataset(script, sft, tok, path)
    supervised, attended = supervised_counts(train)
    quant = get_quantization_config(margs)
    dtype = getattr(torch, margs.dtype) if margs.dtype not in (None, "auto") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, quantization_config=quant,
                                                 device_map="auto" if quant is not None else None)
    knobs = CodeBlockConfig.from_dict(script.codeblock)
    reduction = knobs.loss_reduction
    if knobs.packing and not sft.packing:
        # CodeBlock's `packing` knob means TRL's own packing here (BFD, padding-free, position ids reset per sample):
        # it keeps CodeBlock labels unchanged (tests/training/test_trl.py).
        sft.packing = True
    # Seed before TRL wraps the model in LoRA: Trainer seeds only after the adapter weights are initialised, so the
    # same config would otherwise give different adapters from one run to the next.
    from transformers import set_seed

    set_seed(sft.seed)
    trainer = CodeBlockSFTTrainer(model=model, args=sft, train_dataset=train, processing_class=tok,
                                  peft_config=get_peft_config(margs), codeblock_sparse_loss=script.sparse_loss,
                                  codeblock_loss_reduction=reduction)
    device = str(trainer.args.device)
    # Peak over the training loop only, on both devices: loading the checkpoint has its own transient peak that is the
    # same for every arm and would hide what training needs.
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        peak_kind = "cuda_max_allocated"
    else:
        peak_kind = "process_peak_rss_training" if reset_peak_rss() else "process_peak_rss"
    t0 = time.perf_counter()
    result = trainer.train()
    wall = time.perf_counter() - t0
    trainer.save_model(sft.output_dir)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    metrics = {
        "train_wall_s": round(wall, 3),
        "peak_memory_mb": round(peak_memory_mb(device) or 0.0, 1),
        "peak_memory_kind": peak_kind,
        "malloc": malloc_tuning_state(),
        "device": device,
        "global_step": int(trainer.state.global_step),
        "train_loss": float(result.training_loss),
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "n_rows": len(train),
        "supervised_tokens": supervised,
        "attended_tokens": attended,
        "supervised_fraction_of_attended": round(supervised / attended, 9) if attended else 0.0,
        # what the trainer counted in the batches it saw, per logging window (codeblock/supervised_fraction)
        "logged_supervised_fractions": [e["codeblock/supervised_fraction"] for e in trainer.state.log_history
                                         if "codeblock/supervised_fraction" in e],
        "supervision": script.supervision if not script.prepared_path else "prepared",
        "sparse_loss": script.sparse_loss,
        "loss_reduction": reduction,
        "packing": bool(sft.packing),
        "model": margs.model_name_or_path,
        "seed": sft.seed,
        "versions": library_versions(extra=("trl", "peft", "accelerate")),
    }
    if script.merged_output_dir:
        merged = trainer.model.merge_and_unload() if hasattr(trainer.model, "merge_and_unload") else trainer.model
        merged.save_pretrained(script.merged_output_dir)
        tok.save_pretrained(script.merged_output_dir)
        metrics["merged_output_dir"] = script.merged_output_dir
    out = Path(script.metrics_file or Path(sft.output_dir) / "train_metrics.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


# ------------------------------------------------------------------ `codeblock train` subcommand
PASSES_UNKNOWN_ARGS = True  # codeblock.cli hands every other `--key value` to TRL's parser as an override


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML with TrainScriptArguments + trl SFTConfig + ModelConfig "
                                                        "keys; any further --key value overrides the YAML")


def run(args: argparse.Namespace) -> int:
    if not Path(args.config).is_file():
        print(f"codeblock train: error: --config {args.config}: no such file", file=sys.stderr)
        return 2
    return main(["--config", args.config, *getattr(args, "overrides", [])])
