"""TRL recipe: SFT with CodeBlock labels (or the full-token baseline) from one YAML.

    python recipes/trl/sft_codeblock.py --config recipes/trl/qwen2.5-coder-0.5b_lora_cpu_codeblock.yaml

The YAML maps 1:1 onto three dataclasses: ``CodeBlockScriptArguments`` (below), ``trl.SFTConfig`` and
``trl.ModelConfig`` (model, LoRA and 4-bit fields). Unknown keys are an error (HfArgumentParser).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


@dataclass
class CodeBlockScriptArguments:
    data_path: str = field(metadata={"help": "JSON/JSONL rows (messages, or instruction/response)."})
    supervision: str = field(default="codeblock", metadata={"help": "codeblock | full (baseline, same inputs)."})
    codeblock: dict = field(default_factory=dict, metadata={"help": "CodeBlockConfig keys (budget_ratio, ...)."})
    sparse_loss: bool = field(default=True, metadata={"help": "Project only supervised positions through the LM head."})
    score_cache_dir: str | None = field(default=None, metadata={"help": "Scoring cache folder."})


def parse(argv=None):
    """(script_args, sft_config, model_config) from ``--config file.yaml`` (+ CLI overrides)."""
    from trl import ModelConfig, SFTConfig, TrlParser

    parser = TrlParser((CodeBlockScriptArguments, SFTConfig, ModelConfig))
    script, sft, model = parser.parse_args_and_config(args=argv)
    if script.supervision not in ("codeblock", "full"):
        raise SystemExit(f"supervision must be codeblock or full, got {script.supervision!r}")
    from codeblock.config import CodeBlockConfig

    CodeBlockConfig.from_dict(script.codeblock)  # validate knobs before any model load
    return script, sft, model


def main(argv=None) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import get_peft_config, get_quantization_config

    from codeblock.config import CodeBlockConfig
    from codeblock.data_io import load_rows
    from codeblock.models import resolve_model
    from codeblock.scoring import Scorer
    from codeblock.trl_integration import CodeBlockSFTTrainer, build_sft_dataset

    script, sft, margs = parse(argv)
    path = resolve_model(margs.model_name_or_path)
    tok = AutoTokenizer.from_pretrained(path)
    config = CodeBlockConfig.from_dict({"max_seq_length": sft.max_length or 2048, **script.codeblock})
    rows, _, _ = load_rows(script.data_path)
    scorer = Scorer(config.scoring_model or path, cache_dir=script.score_cache_dir) if script.supervision == "codeblock" else None
    train = build_sft_dataset(rows, tokenizer=tok, scorer=scorer, config=config, supervision=script.supervision)
    quant = get_quantization_config(margs)
    dtype = getattr(torch, margs.dtype) if margs.dtype not in (None, "auto") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, quantization_config=quant,
                                                 device_map="auto" if quant is not None else None)
    trainer = CodeBlockSFTTrainer(model=model, args=sft, train_dataset=train, processing_class=tok,
                                  peft_config=get_peft_config(margs), codeblock_sparse_loss=script.sparse_loss)
    trainer.train()
    trainer.save_model(sft.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
