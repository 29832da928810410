"""QLoRA (bitsandbytes NF4 on CPU) CodeBlock training from the TRL QLoRA recipe on the tiny model; the adapter loads
and generates."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("bitsandbytes")
pytest.importorskip("trl")
torch = pytest.importorskip("torch")

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.slow
def test_qlora_recipe_trains_and_adapter_generates(tiny_model_dir, chat_jsonl, tmp_path):
    raw = yaml.safe_load((RECIPES / "trl" / "qwen2.5-coder-1.5b_qlora_single_device_codeblock.yaml").read_text())
    out = tmp_path / "out"
    raw.update(model_name_or_path=str(tiny_model_dir), data_path=str(chat_jsonl), output_dir=str(out), dtype="float32",
               bf16=False, use_cpu=True, max_steps=2, per_device_train_batch_size=2, gradient_accumulation_steps=1,
               max_length=256, optim="adamw_torch", gradient_checkpointing=False, logging_steps=1, save_strategy="no",
               lora_r=4, lora_alpha=8, codeblock={"budget_ratio": 0.2, "pair_selector": "none"})
    raw.pop("gradient_checkpointing_kwargs")
    cfg = tmp_path / "qlora.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    spec = importlib.util.spec_from_file_location("sft_codeblock_q", RECIPES / "trl" / "sft_codeblock.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    assert mod.main(["--config", str(cfg)]) == 0
    assert (out / "adapter_config.json").is_file()

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    base = AutoModelForCausalLM.from_pretrained(
        tiny_model_dir, dtype=torch.float32, device_map="cpu",
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_compute_dtype=torch.float32))
    assert any(type(m).__name__ == "Linear4bit" for m in base.modules())
    model = PeftModel.from_pretrained(base, str(out))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Add two numbers."}], tokenize=False,
                                     add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt")
    gen = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert gen.shape[1] > ids["input_ids"].shape[1]
