"""MultiPL-E HumanEval (reworded prompts, nuprl upstream cf9db336): C++, Java, JavaScript, Rust.

Evaluation only: the MultiPL-E licence forbids using its contents as training data.

Program = ``prompt + completion`` (cut at the first of the record's stop tokens) ``+ "\\n" + tests``, as upstream,
whenever the completion continues the prompt (does not repeat its signature line); otherwise the ``solution`` (or a
completion that restates the function, i.e. chat style) is taken as the full function, and the leading ``}`` of the
tests that closes the prompt's function is dropped. Compile (g++ -std=c++17, javac -encoding UTF8, rustc) then run (java -ea, node);
upstream statuses: compile error / non-zero exit / timeout => fail, exit 0 => OK. Limits: 30 s compile, 15 s run
(x timeout_scale), upstream uses 15 s.

Completion proof: the harness inserts, after the last statement of the test ``main``, a few lines that copy the nonce
pipe (fd 3) to the result pipe (fd 4); a program that exits early (``exit(0)``, ``System.exit(0)``,
``process.exit(0)``) or fails an assertion never runs them (see :mod:`codeblock_eval.execution.sandbox`).

Java tasks that import ``org.javatuples`` need the javatuples jar: set ``CODEBLOCK_JAVATUPLES_JAR`` (or install
Debian's ``libjavatuples-java``); without it those tasks are excluded and counted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from codeblock_eval.benchmarks.base import Benchmark, Problem, Verdict, check_text_fields
from codeblock_eval.benchmarks.data_files import data_file, dataset_info, read_jsonl
from codeblock_eval.execution.sandbox import Limits

LANGS = {
    "cpp": ("C++", "cpp", "cpp"),
    "java": ("Java", "java", "java"),
    "js": ("JavaScript", "javascript", "js"),
    "rs": ("Rust", "rust", "rs"),
}
COMPILE_TIMEOUT, RUN_TIMEOUT = 30.0, 15.0
JAVATUPLES_TYPES = re.compile(r"\b(Unit|Pair|Triplet|Quartet|Quintet|Sextet|Septet|Octet|Ennead|Decade)<")
JAVATUPLES_CANDIDATES = ("/usr/share/java/javatuples.jar", "/usr/multiple/javatuples-1.2.jar")

PROOF = {
    "cpp": "\n    { char cb_buf[256]; long cb_n = read(3, cb_buf, sizeof cb_buf); if (cb_n > 0) "
           "{ if (write(4, cb_buf, cb_n) != cb_n) return 3; } }\n",
    "java": "\n        try { byte[] cbB = new byte[256]; int cbN = new java.io.FileInputStream(\"/dev/fd/3\").read(cbB); "
            "java.io.FileOutputStream cbO = new java.io.FileOutputStream(\"/dev/fd/4\"); cbO.write(cbB, 0, cbN); "
            "cbO.close(); }"
            " catch (Exception cbE) { System.exit(3); }\n",
    "js": "\n;(function(){ const cbFs = require('fs'); cbFs.writeSync(4, cbFs.readFileSync(3)); })();\n",
    "rs": "\n    { use std::io::{Read, Write}; use std::os::unix::io::FromRawFd; "
          "let mut cb_in = unsafe { std::fs::File::from_raw_fd(3) }; let mut cb_b = Vec::new(); "
          "cb_in.read_to_end(&mut cb_b).unwrap(); let mut cb_out = unsafe { std::fs::File::from_raw_fd(4) }; "
          "cb_out.write_all(&cb_b).unwrap(); }\n",
}


def truncate_at_stops(text: str, stops) -> str:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


def add_proof(language: str, program: str) -> str:
    """Insert the nonce copy after the last statement of ``main`` (JS: after the test call at the end)."""
    if language == "js":
        return program + PROOF["js"]
    end = program.rstrip().rfind("}")
    if language == "java":  # main's closing brace is the one before the class's
        end = program.rfind("}", 0, end)
    if end < 0:
        return program  # no main: the run can never prove completion, so it fails
    program = program[:end] + PROOF[language] + program[end:]
    if language == "cpp":
        program = "#include <unistd.h>\n" + program
    return program


class MultiPLE(Benchmark):
    def __init__(self, language: str = "cpp"):
        if language not in LANGS:
            raise ValueError(f"MultiPL-E language must be one of {sorted(LANGS)}, got {language!r}")
        self.lang = language
        self.display, self.language, self.ext = LANGS[language]
        self.name = f"multipl-e-{language}"
        self.relpath = f"multipl-e/humaneval-{language}-reworded.jsonl.gz"
        self._path: Path | None = None
        self.javatuples = os.environ.get("CODEBLOCK_JAVATUPLES_JAR") or next(
            (p for p in JAVATUPLES_CANDIDATES if os.path.exists(p)), None)

    def load_problems(self, data_dir: Path | None) -> list[Problem]:
        self._path = data_file(data_dir, self.relpath)
        problems = []
        for rec in read_jsonl(self._path):
            instruction = (f"Please provide a self-contained {self.display} script that solves the following problem "
                           f"in a markdown code block:\n```\n{rec['prompt'].strip()}\n```\n")
            problems.append(Problem(
                task_id=rec["name"], prompt=rec["prompt"], instruction=instruction, entry_point=None,
                language=self.language, stop_sequences=tuple(rec["stop_tokens"]),
                response_prefix=f"Below is a {self.display} script with a self-contained function that solves the "
                                "problem and passes corresponding tests:",
                extra={"tests": rec["tests"]}))
        return problems

    def dataset_info(self) -> dict:
        if self._path is None:
            raise RuntimeError("call load_problems() first")
        return dataset_info(f"MultiPL-E-humaneval-{self.lang}-reworded", "nuprl@cf9db336", self._path)

    def program_for(self, problem: Problem, sample: dict) -> str:
        check_text_fields(problem, sample)
        tests = problem.extra["tests"]
        completion = sample.get("completion")
        signature = problem.prompt.rstrip().splitlines()[-1].strip()
        if completion is not None and signature not in completion:
            # Base-style continuation (MultiPL-E's own convention) even if a sanitized 'solution' is also present.
            return problem.prompt + truncate_at_stops(completion, problem.stop_sequences) + "\n" + tests
        full = sample.get("solution") if sample.get("solution") is not None else completion
        if full is None:
            raise ValueError(f"sample for {problem.task_id} has neither 'solution' nor 'completion'")
        if tests.lstrip().startswith("}"):  # that brace closes the prompt's function, which `full` already has
            tests = tests.lstrip()[1:]
        return full + "\n" + tests

    def toolchain(self) -> dict:
        if self.lang == "cpp":
            return {"compile": shutil.which("g++")}
        if self.lang == "java":
            return {"compile": shutil.which("javac"), "run": shutil.which("java")}
        if self.lang == "js":
            return {"run": shutil.which("node")}
        rustc = shutil.which("rustc")
        if rustc:  # call the real compiler, not rustup's proxy (which needs $HOME/.rustup)
            try:
                sysroot = subprocess.run([rustc, "--print", "sysroot"], capture_output=True, text=True,
                                         timeout=60).stdout.strip()
                if sysroot and os.path.exists(os.path.join(sysroot, "bin", "rustc")):
                    rustc = os.path.join(sysroot, "bin", "rustc")
            except (OSError, subprocess.TimeoutExpired):
                pass
        return {"compile": rustc}

    def prepare(self, problems, sandbox, *, parallel: int, timeout_scale: float) -> dict:
        tools = self.toolchain()
        missing = [k for k, v in tools.items() if not v]
        excluded = {}
        if missing:
            excluded = {p.task_id: f"toolchain missing for {self.lang}: {missing}" for p in problems}
        elif self.lang == "java" and not self.javatuples:
            excluded = {p.task_id: "needs org.javatuples (set CODEBLOCK_JAVATUPLES_JAR)" for p in problems
                        if JAVATUPLES_TYPES.search(p.prompt + p.extra["tests"])}
        return {"excluded": excluded, "tools": tools}

    def check(self, problem, program, sandbox, state, *, timeout_scale: float) -> Verdict:
        tools = state["tools"]
        if self.lang == "java" and not self.javatuples:
            program = program.replace("import org.javatuples.*;", "")  # unused by the tasks kept (see prepare)
        program = add_proof(self.lang, program)
        workdir = sandbox.new_workdir()
        try:
            src = workdir / ("Problem.java" if self.lang == "java" else f"main.{self.ext}")
            src.write_text(program, encoding="utf-8")
            jvm = Limits(memory_mb=max(sandbox.limits.memory_mb, 8192), memory_kind="data")
            compile_limits = Limits(memory_mb=max(sandbox.limits.memory_mb, 8192),
                                    memory_kind="data" if self.lang == "java" else "as")
            compile_argv = None
            if self.lang == "cpp":
                compile_argv = [tools["compile"], "-std=c++17", src.name, "-o", "main"]
                run_argv, run_limits = ["./main"], None
            elif self.lang == "rs":
                compile_argv = [tools["compile"], src.name, "-o", "main"]
                run_argv, run_limits = ["./main"], None
            elif self.lang == "java":
                cp = "." + (f":{self.javatuples}" if self.javatuples else "")
                compile_argv = [tools["compile"], "-J-Xmx1g", "-encoding", "UTF8", "-cp", cp, src.name]
                run_argv, run_limits = [tools["run"], "-Xmx1g", "-XX:-UsePerfData", "-ea", "-cp", cp,
                                        "Problem"], jvm
            else:
                run_argv, run_limits = [tools["run"], src.name], jvm
            if compile_argv:
                # Compilers are trusted; rustc lives under /root, so it keeps the harness uid (still rlimits/no net).
                comp = sandbox.run_command(compile_argv, wall_s=COMPILE_TIMEOUT * timeout_scale, workdir=workdir,
                                           expect_nonce=False, limits=compile_limits,
                                           drop_privileges=self.lang != "rs",
                                           extra_path=(os.path.dirname(tools["compile"]),))
                if comp.error:
                    return Verdict("error", {"stage": "compile", "error": comp.error})
                if not comp.verified:
                    return Verdict("fail", {"stage": "compile", "reason": "timeout" if comp.timed_out else
                                            "compile error", "stderr": comp.stderr[-800:]})
            res = sandbox.run_command(run_argv, wall_s=RUN_TIMEOUT * timeout_scale, workdir=workdir,
                                      expect_nonce=True, limits=run_limits)
            if res.error:
                return Verdict("error", {"stage": "run", "error": res.error})
            if res.verified:
                return Verdict("pass", {})
            return Verdict("timeout" if res.timed_out else "fail",
                           {"stage": "run", "exit_code": res.exit_code, "stderr": res.stderr[-500:]})
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def notes(self) -> list[str]:
        return [f"MultiPL-E HumanEval {self.display} (reworded, nuprl cf9db336); evaluation only (licence forbids "
                "training use); compile + run, pass iff the test main completes (exit 0 + harness proof)."]
