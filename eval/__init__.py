"""The evaluation harness (``codeblock-eval``): benchmarks, generation, sandboxed execution and reports."""

# How the harness turns a stored raw model output into a verdict (stop sequences, code extraction, scoring). Bump it
# when the same raw output can get another verdict: `codeblock experiment` then rescores its committed samples (the
# programs are re-derived from `raw`, nothing is generated again). 2: a closing fence after unfenced code no longer
# hides that code from the sanitizer.
SCORING_REVISION = 2
