"""Data hygiene and reproducibility (pure CPU; no torch/transformers imports).

Library entry points, each taking a list of row dicts and returning ``(kept, report, stats)``:

* :func:`codeblock.hygiene.decontaminate.decontaminate_rows` with
  :func:`codeblock.hygiene.bench_index.load_index` (HumanEval(+), MBPP(+), BigCodeBench, MultiPL-E);
* :func:`codeblock.hygiene.secrets_scan.scan_rows` (policy ``drop`` or ``redact``);
* :func:`codeblock.hygiene.dedup.dedup_rows` and :func:`codeblock.hygiene.dedup.balanced_sample`;
* :func:`codeblock.hygiene.splits.split_by_date` / :func:`codeblock.hygiene.splits.split_by_group`;
* :func:`codeblock.hygiene.manifest.write_manifest` / :func:`codeblock.hygiene.manifest.verify_manifest`
  for every artifact directory.

Submodules are not imported here, so ``import codeblock.hygiene.manifest`` stays cheap.
"""
