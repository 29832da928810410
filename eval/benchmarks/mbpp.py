"""MBPP as EvalPlus/Magicoder report it: the 378 MBPP+ v0.2.0 tasks scored on the original base tests only.

The base tests are the original MBPP ``test_list`` asserts, turned into inputs by EvalPlus and compared against the
canonical outputs (differential testing, same rules as :mod:`.evalplus_common`). This is NOT the 500-task original
test split of Austin et al.; the summary notes say so.
"""

from __future__ import annotations

from codeblock_eval.benchmarks.evalplus_common import EvalPlusBenchmark
from codeblock_eval.benchmarks.mbppplus import MBPP_STOPS


class Mbpp(EvalPlusBenchmark):
    name = "mbpp"
    kind = "mbpp"
    relpath = "mbppplus/MbppPlus-v0.2.0.jsonl.gz"
    version = "v0.2.0"
    dataset_name = "MbppPlus"
    phases = ("base",)
    stops = MBPP_STOPS

    def notes(self) -> list[str]:
        return ["MBPP = EvalPlus MBPP+ v0.2.0 task set (378 tasks) scored on the ORIGINAL base tests only "
                "(evalplus 'base' status: original test_list inputs vs canonical outputs); not the 500-task "
                "original test split."]
