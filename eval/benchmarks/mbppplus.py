"""MBPP+ (EvalPlus v0.2.0): 378 tasks, base + plus inputs with EvalPlus' per-task input deserialisation."""

from __future__ import annotations

from codeblock_eval.benchmarks.evalplus_common import EvalPlusBenchmark

MBPP_STOPS = ('\n"""', "\nassert")


class MbppPlus(EvalPlusBenchmark):
    name = "mbpp+"
    kind = "mbpp"
    relpath = "mbppplus/MbppPlus-v0.2.0.jsonl.gz"
    version = "v0.2.0"
    dataset_name = "MbppPlus"
    phases = ("base", "plus")
    stops = MBPP_STOPS

    def notes(self) -> list[str]:
        return ["MBPP+ v0.2.0 (378 tasks) scored like evalplus 0.3.1 (base + plus inputs, special oracles for "
                "Mbpp/164, 295, 558, 581 and set/not-None tasks); passed = base and plus both pass."]
