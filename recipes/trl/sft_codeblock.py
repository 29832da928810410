"""TRL recipe: SFT with CodeBlock labels (or a baseline supervision) from one YAML.

    python recipes/trl/sft_codeblock.py --config recipes/trl/qwen2.5-coder-0.5b_lora_cpu_codeblock.yaml

Same as ``codeblock train --config ...``: the YAML maps 1:1 onto ``codeblock.cli.train.TrainScriptArguments``,
``trl.SFTConfig`` and ``trl.ModelConfig`` (model, LoRA and 4-bit fields). Unknown keys are an error. The training code
lives in :mod:`codeblock.cli.train` so the experiment runner and this script train identically.
"""

from __future__ import annotations

import sys

from codeblock.cli.train import CodeBlockScriptArguments, TrainScriptArguments, main, parse  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
