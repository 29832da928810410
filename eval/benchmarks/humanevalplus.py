"""HumanEval+ (EvalPlus v0.1.10): 164 tasks, base + plus inputs, differential testing (see evalplus_common)."""

from __future__ import annotations

from codeblock_eval.benchmarks.evalplus_common import EvalPlusBenchmark

HUMANEVAL_STOPS = ("\ndef ", "\nclass ", "\nimport ", "\nfrom ", "\nassert ")


class HumanEvalPlus(EvalPlusBenchmark):
    name = "humaneval+"
    kind = "humaneval"
    relpath = "humanevalplus/HumanEvalPlus-v0.1.10.jsonl.gz"
    version = "v0.1.10"
    dataset_name = "HumanEvalPlus"
    phases = ("base", "plus")
    stops = HUMANEVAL_STOPS

    def __init__(self, *, mini: bool = False, **kwargs):
        if mini:
            kwargs.setdefault("relpath", "humanevalplus/HumanEvalPlus-Mini-v0.1.10.jsonl.gz")
            self.dataset_name = "HumanEvalPlus-Mini"
        super().__init__(**kwargs)

    def notes(self) -> list[str]:
        return [
            "HumanEval+ v0.1.10 scored like evalplus 0.3.1 (base + plus inputs vs canonical outputs, atol, "
            "per-input limits max(1s, 4x reference time)); passed = base and plus both pass.",
            "HumanEval/32 (find_zero) is credited when its oracle holds, as fixed upstream in evalplus 6eb1e19; "
            "evalplus 0.3.1 fails it for every solution.",
        ]
