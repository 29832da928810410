"""Axolotl plugin ``codeblock.CodeBlockPlugin``: CodeBlock labels in ``axolotl preprocess``/``train``.

    plugins:
      - codeblock.CodeBlockPlugin
    datasets:
      - path: data/train.jsonl        # raw rows: CodeBlock selection runs inside preprocess
        type: codeblock
      # or: - path: out/prepared/dataset   (a folder written by `codeblock prepare`; no type)
    codeblock_budget_ratio: 0.019
    codeblock_sparse_loss: true

What each hook does (and why it is loud):

* ``register`` (raw, unvalidated cfg): rejects unknown ``codeblock_*`` keys (Axolotl would drop them silently) and bad
  knob values (one line naming the key),
  requires at least one CodeBlock dataset, aliases ``type: codeblock`` to :mod:`codeblock.integrations.axolotl.strategy`, adds every
  ``codeblock_*`` key to Axolotl's prepared-dataset hash (so changing a knob never reuses stale labels), resolves
  embedded model names (``qwen2.5-coder-0.5b-instruct``) to their already-built local folders (it never downloads:
  build them first with ``python -m codeblock.models NAME``) and, on a CPU-only machine, pins
  glibc's mmap threshold (:mod:`codeblock.training.cpu_memory`).
* ``get_input_args``: the pydantic mixin :class:`codeblock.integrations.axolotl.args.CodeBlockArgs`.
* ``get_trainer_cls``: ``AxolotlTrainer`` + :class:`codeblock.training.sparse_loss.CodeBlockLossMixin` (sparse LM-head loss
  when ``codeblock_sparse_loss``, normalised as ``codeblock_loss_reduction`` says; logs
  ``codeblock/supervised_fraction`` either way).
* ``post_trainer_create``: stops the run if the train set's supervised fraction is 0 or 1.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from axolotl.integrations.base import BasePlugin

from codeblock.integrations.axolotl.args import check_codeblock_keys
from codeblock.training.supervised import CodeBlockSetupError, check_supervised_fraction

LOG = logging.getLogger("axolotl.integrations.codeblock")  # the strategy module logs to the same logger
CODEBLOCK_TYPES = ("codeblock", "codeblock.integrations.axolotl.strategy")
PREPARED_MARKER = "stats.json"  # written next to the dataset by `codeblock prepare`


def check_unknown_keys(cfg) -> None:
    """Unknown ``codeblock_*`` keys and ill-typed or out-of-range knob values, as one line naming the key."""
    from codeblock.config import ConfigError

    try:
        check_codeblock_keys(cfg)
    except ConfigError as exc:
        raise CodeBlockSetupError(str(exc)) from None


def prepared_dataset_dir(path) -> Path | None:
    """The `codeblock prepare` output folder a dataset path points into (the folder, or its ``dataset/``), else None."""
    if not path:
        return None
    p = Path(str(path)).expanduser()
    for cand in (p, p.parent):
        if (cand / PREPARED_MARKER).is_file() and (cand / "dataset").is_dir():
            return cand
    return None


def _datasets(cfg) -> list:
    return list(cfg.get("datasets") or [])


def codeblock_datasets(cfg) -> list:
    out = []
    for ds in _datasets(cfg):
        if ds.get("type") in CODEBLOCK_TYPES or prepared_dataset_dir(ds.get("path")) is not None:
            out.append(ds)
    return out


class CodeBlockPlugin(BasePlugin):
    """See the module docstring. Hooks return None (decline) whenever CodeBlock is not in use."""

    is_codeblock_plugin = True  # how the prompt strategy recognises a registered plugin without importing this module

    def get_input_args(self) -> str:
        return "codeblock.integrations.axolotl.args.CodeBlockArgs"

    # ------------------------------------------------------------------ register (raw cfg)
    def register(self, cfg: dict):
        check_unknown_keys(cfg)
        sys.modules.setdefault("axolotl.prompt_strategies.codeblock", __import__("codeblock.integrations.axolotl.strategy", fromlist=["strategy"]))
        cb = codeblock_datasets(cfg)
        if not cb:
            raise CodeBlockSetupError(
                "plugins lists codeblock.CodeBlockPlugin but no dataset uses CodeBlock: set `type: codeblock` on a raw "
                "dataset, or point `path:` at a folder written by `codeblock prepare`")
        for ds in cb:
            prep = prepared_dataset_dir(ds.get("path"))
            if prep is not None:
                if ds.get("type"):
                    raise CodeBlockSetupError(
                        f"dataset {ds.get('path')!r} is already CodeBlock-prepared; remove `type: {ds.get('type')}` "
                        "(it would be labelled twice)")
                # Axolotl's load_from_disk needs the save_to_disk folder itself.
                ds["path"] = str(prep / "dataset")
                _check_prepared_matches(prep, cfg)
        self._resolve_models(cfg)
        if any(ds.get("type") in CODEBLOCK_TYPES for ds in cb):
            from codeblock.integrations.axolotl.strategy import axolotl_label_setup

            axolotl_label_setup(cfg)  # the checks `codeblock prepare` runs, before any model is loaded
        _tune_cpu_malloc()
        LOG.info("CodeBlock plugin registered: %d CodeBlock dataset(s)", len(cb))

    @staticmethod
    def _resolve_models(cfg) -> None:
        from codeblock.models import list_embedded_models, resolve_model

        embedded = set(list_embedded_models())
        for key in ("base_model", "tokenizer_config", "codeblock_scoring_model"):
            value = cfg.get(key)
            if isinstance(value, str) and value in embedded:
                cfg[key] = resolve_model(value, build=False)  # never download from a hook
                LOG.info("CodeBlock: %s %r -> %s", key, value, cfg[key])

    # ------------------------------------------------------------------ datasets
    def load_datasets(self, cfg, preprocess: bool = False):
        """Axolotl's own SFT loading, with CodeBlock's label fingerprint in the prepared-dataset hash (see
        :func:`label_fingerprint_in_dataset_hash`). Declines (None) for RL configs."""
        if cfg.get("rl") or not codeblock_datasets(cfg):
            return None
        from axolotl.common.datasets import load_datasets

        with label_fingerprint_in_dataset_hash(cfg):
            return load_datasets(cfg=cfg)

    # ------------------------------------------------------------------ trainer
    def get_trainer_cls(self, cfg):
        from codeblock.integrations.axolotl.args import codeblock_config_from_cfg

        return make_trainer_cls(sparse=bool(cfg.get("codeblock_sparse_loss", True)),
                                mode=cfg.get("codeblock_sparse_mode") or "auto",
                                reduction=codeblock_config_from_cfg(cfg).loss_reduction)

    def post_trainer_create(self, cfg, trainer):
        ds = trainer.train_dataset
        if ds is None:
            return
        cols = ds.column_names
        rows = ds.select_columns([c for c in ("labels", "attention_mask") if c in cols])
        frac = check_supervised_fraction(rows, where="CodeBlock train set")
        LOG.info("CodeBlock: train set supervised fraction %.4f (sparse loss %s)", frac,
                 "on" if cfg.get("codeblock_sparse_loss", True) else "off")


def _tune_cpu_malloc() -> None:
    """On a CPU-only machine, pin glibc's mmap threshold before the model is loaded (codeblock.training.cpu_memory)."""
    import torch

    from codeblock.training.cpu_memory import tune_malloc_for_training

    if not torch.cuda.is_available() and tune_malloc_for_training():
        LOG.info("CodeBlock: CPU run, glibc mmap threshold pinned so peak RSS follows live tensors "
                 "(CODEBLOCK_MALLOC_TUNING=0 to keep glibc's default)")


def _check_prepared_matches(prep: Path, cfg) -> None:
    """Error if the prepared data was built for a longer sequence length than Axolotl will use (shared check)."""
    from codeblock.config import ConfigError
    from codeblock.training.setup_checks import check_prepared_max_length

    try:
        stats = json.loads((prep / PREPARED_MARKER).read_text())
    except (OSError, ValueError) as exc:
        raise CodeBlockSetupError(f"cannot read {prep / PREPARED_MARKER}: {exc}") from exc
    try:
        check_prepared_max_length((stats.get("config") or {}).get("max_seq_length"), cfg.get("sequence_len"),
                                  where=str(prep), trainer_key="sequence_len")
    except ConfigError as exc:
        raise CodeBlockSetupError(str(exc)) from exc


HASH_KEY = "codeblock_label_fingerprint"


def dataset_label_fingerprint(cfg) -> str:
    """Everything that changes the labels of this cfg's CodeBlock datasets: for ``type: codeblock`` the resolved
    CodeBlockConfig (every ``codeblock_*`` key, defaults included), the scoring model (``base_model`` when it is the
    scorer) and the reference model; for a ``codeblock prepare`` folder its stats.json (config, input hash, counts)."""
    import hashlib

    from codeblock.integrations.axolotl.strategy import axolotl_label_setup
    from codeblock.training.setup_checks import label_fingerprint

    parts = {}
    if any(ds.get("type") in CODEBLOCK_TYPES for ds in codeblock_datasets(cfg)):
        config, setup = axolotl_label_setup(cfg)
        parts["raw"] = label_fingerprint(config, setup)
    for ds in codeblock_datasets(cfg):
        prep = prepared_dataset_dir(ds.get("path"))
        if prep is not None:
            parts[str(prep)] = hashlib.sha256((prep / PREPARED_MARKER).read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class label_fingerprint_in_dataset_hash:  # noqa: N801 (a context manager used like a function)
    """Axolotl 0.21 has no plugin hook for the prepared-dataset hash: it hashes the cfg keys listed in
    ``axolotl.utils.data.shared.DATASET_HASH_CONFIG_EXTRA_FIELDS``. Inside this block (the plugin's
    ``load_datasets``) that tuple also lists :data:`HASH_KEY`, set on the cfg to :func:`dataset_label_fingerprint`;
    on exit the tuple is restored, so nothing outlives the dataset load."""

    def __init__(self, cfg):
        self.cfg = cfg

    def __enter__(self):
        from axolotl.utils.data import shared

        self.cfg[HASH_KEY] = dataset_label_fingerprint(self.cfg)
        self._saved = shared.DATASET_HASH_CONFIG_EXTRA_FIELDS
        shared.DATASET_HASH_CONFIG_EXTRA_FIELDS = (*self._saved, HASH_KEY)
        return self.cfg[HASH_KEY]

    def __exit__(self, *exc):
        from axolotl.utils.data import shared

        shared.DATASET_HASH_CONFIG_EXTRA_FIELDS = self._saved
        return False


_TRAINER_CACHE: dict = {}


def make_trainer_cls(*, sparse: bool = True, mode: str = "auto", reduction: str = "mean_supervised"):
    """``AxolotlTrainer`` subclass with CodeBlock's loss switches (class cached per setting so pickling works)."""
    key = (sparse, mode, reduction)
    if key not in _TRAINER_CACHE:
        from axolotl.core.trainers.base import AxolotlTrainer

        from codeblock.training.sparse_loss import CodeBlockLossMixin

        name = "CodeBlockSparseTrainer" if sparse else "CodeBlockDenseTrainer"
        _TRAINER_CACHE[key] = type(name, (CodeBlockLossMixin, AxolotlTrainer),
                                   {"codeblock_sparse_loss": sparse, "codeblock_sparse_mode": mode,
                                    "codeblock_loss_reduction": reduction,
                                    "__module__": __name__})
    return _TRAINER_CACHE[key]
