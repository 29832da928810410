"""Axolotl prompt strategy: ``type: codeblock`` (alias registered by the plugin) or ``type: codeblock.integrations.axolotl.strategy``.

Axolotl calls :func:`load` during ``axolotl preprocess``/``train``. It returns a ``DatasetWrappingStrategy`` that runs
the whole CodeBlock pipeline over the raw dataset at once (pair selection and the token budget are global, so a
row-by-row tokenizing strategy could not do it) and returns ``input_ids``/``attention_mask``/``labels`` rows. Axolotl
caches the result under ``dataset_prepared_path``; the plugin adds every ``codeblock_*`` key to the cache hash.

Loud by construction:

* Axolotl turns a ``ModuleNotFoundError`` raised while importing a strategy into a misleading "unhandled prompt
  tokenization strategy". This module therefore imports nothing optional at import time, and :func:`load` re-raises
  missing dependencies as ``RuntimeError`` with the fix.
* ``load`` refuses to run unless ``codeblock.CodeBlockPlugin`` is registered: without it the ``codeblock_*`` keys would
  have been dropped silently by Axolotl's validation, and the run would use defaults nobody asked for.
* A dataset whose supervised fraction is 0 or 1 stops the run.

    datasets:
      - path: data/train.jsonl
        type: codeblock

At scale, run the expensive part (scoring) data-parallel first and give Axolotl the prepared folder (no ``type``):
``accelerate launch --num_processes 8 -m codeblock.cli prepare --data data/train.jsonl --model <base_model> --config
codeblock.yaml --out out/prepared``, then ``- path: out/prepared/dataset``. ``codeblock_decontaminate`` and
``codeblock_scan_secrets`` run here before any scoring, as in ``codeblock prepare``.
"""

from __future__ import annotations

import logging

from codeblock.training.supervised import CodeBlockSetupError, check_supervised_fraction, supervised_counts

LOG = logging.getLogger("axolotl.integrations.codeblock")


def plugin_registered() -> bool:
    """Whether Axolotl's PluginManager holds a CodeBlockPlugin (recognised by its ``is_codeblock_plugin`` marker:
    the plugin module imports this one, so importing the class here would close an import cycle)."""
    from axolotl.integrations.base import PluginManager

    plugins = PluginManager.get_instance().plugins.values()
    return any(getattr(p, "is_codeblock_plugin", False) is True for p in plugins)


def load(tokenizer, cfg, ds_cfg=None):
    try:
        from axolotl.prompt_tokenizers import DatasetWrappingStrategy  # noqa: F401

        from codeblock.prepare import pipeline  # noqa: F401
    except ModuleNotFoundError as exc:  # would otherwise become "unhandled prompt tokenization strategy"
        raise CodeBlockSetupError(f"CodeBlock strategy cannot import {exc.name!r}: install it with "
                                  f"`pip install 'codeblock-sft[axolotl]'` ({exc})") from exc
    if not plugin_registered():
        raise CodeBlockSetupError("dataset type 'codeblock' needs the plugin: add `plugins: [codeblock.CodeBlockPlugin]` "
                                  "to the YAML (otherwise Axolotl silently drops every codeblock_* key)")
    return _make_strategy(tokenizer, cfg, ds_cfg)


def _make_strategy(tokenizer, cfg, ds_cfg):
    from axolotl.prompt_tokenizers import DatasetWrappingStrategy

    class CodeBlockDatasetStrategy(DatasetWrappingStrategy):
        def wrap_dataset(self, dataset, process_count=None, keep_in_memory=False, **kwargs):
            return build_axolotl_dataset(dataset, tokenizer, cfg)

    return CodeBlockDatasetStrategy()


def axolotl_label_setup(cfg, config=None):
    """The shared setup checks (:func:`codeblock.training.setup_checks.label_setup`) for an Axolotl cfg: the scoring
    model defaults to ``base_model`` and must share the trained model's tokenizer (``tokenizer_config`` if set)."""
    from codeblock.config import ConfigError
    from codeblock.integrations.axolotl.args import codeblock_config_from_cfg
    from codeblock.training.setup_checks import label_setup

    config = config or codeblock_config_from_cfg(cfg)
    try:
        return config, label_setup(config, model=cfg.get("tokenizer_config") or cfg.get("base_model"))
    except ConfigError as exc:
        raise CodeBlockSetupError(f"CodeBlock: {exc}") from exc


def build_axolotl_dataset(dataset, tokenizer, cfg):
    """Raw HF dataset -> tokenized CodeBlock dataset (input_ids, attention_mask, labels)."""
    from datasets import Dataset

    config, setup = axolotl_label_setup(cfg)
    rows = [dict(r) for r in dataset]
    supervision = config.supervision
    from codeblock.prepare.pipeline import prepare_dataset
    from codeblock.scoring.scorer import Scorer

    # Every policy (full included) goes through the one pipeline, so an Axolotl arm supervises exactly what
    # `codeblock prepare` and the TRL helper would (same checks, pair selection, rendering, EOS policy).
    cache = cfg.get("codeblock_score_cache_dir")
    scorer = Scorer.for_config(setup.scoring_model, config, cache_dir=cache, progress=True)
    reference = None
    if setup.reference_model:
        reference = Scorer.for_config(setup.reference_model, config, cache_dir=cache, progress=True)
    from codeblock.data_io import SkipLog
    from codeblock.prepare.hygiene_stage import apply_hygiene

    # codeblock_decontaminate / codeblock_scan_secrets: the same step as `codeblock prepare`, before any scoring
    rows, hygiene = apply_hygiene(rows, config, SkipLog(), progress=True)
    LOG.info("CodeBlock hygiene: %s", hygiene.stats)
    prepared = prepare_dataset(rows, tokenizer=tokenizer, scorer=scorer, config=config, reference_scorer=reference,
                               read_skips=hygiene.skips)
    out = [{k: list(r[k]) for k in ("input_ids", "attention_mask", "labels")} for r in prepared.rows]
    stats = prepared.stats
    check_supervised_fraction(out, where=f"CodeBlock ({supervision}) preprocessing")
    sup, tot = supervised_counts(out)
    LOG.info("CodeBlock %s labels: %d rows (of %d raw), %d/%d tokens supervised (%.4f); dropped: %s", supervision,
             len(out), len(rows), sup, tot, sup / max(tot, 1), stats.get("n_dropped"))
    return Dataset.from_list(out)
