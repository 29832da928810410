"""Dequantizing a verified GGUF into a plain safetensors folder (+ tokenizer + provenance) with transformers' GGUF
loader. torch/transformers are imported only when a conversion runs."""

from __future__ import annotations

import importlib.metadata
import json
import time
from pathlib import Path

from codeblock.models.registry import PROVENANCE_FILE, EmbeddedModel, ModelResolutionError


def _installed_version(dist_name: str) -> str | None:
    try:
        return importlib.metadata.version(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _convert(spec: EmbeddedModel, gguf_dir: Path, out_dir: Path, meta: dict) -> None:
    """Dequantize the GGUF into a safetensors folder (fp32: the exact dequantized values)."""
    try:
        import gguf  # noqa: F401  (transformers needs it; fail with a clear message first)
    except ImportError as exc:
        raise ModelResolutionError("converting an embedded GGUF model needs the `gguf` package: pip install gguf") from exc
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=spec.gguf_name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_dir), gguf_file=spec.gguf_name, dtype=torch.float32)
    # The weights are plain float tensors already; the GGUF quantizer config only blocks saving/training.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and hasattr(quantizer, "remove_quantization_config"):
        quantizer.remove_quantization_config(model)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tok.save_pretrained(str(out_dir))
    meta.update(
        {
            "n_parameters": int(sum(p.numel() for p in model.parameters())),
            "model_type": model.config.model_type,
            "stored_dtype": "float32",
            "has_chat_template": bool(getattr(tok, "chat_template", None)),
            "conversion_seconds": round(time.time() - t0, 1),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "gguf": _installed_version("gguf"),
        }
    )
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
