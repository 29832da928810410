"""Hostile programs: each one scores FAIL, the harness returns, and no process is left behind."""

from __future__ import annotations

import time

import psutil
import pytest

from codeblock_eval.benchmarks.humaneval import HumanEval
from codeblock_eval.benchmarks.multipl_e import MultiPLE

HEADER = "from typing import List\n\n"
# HumanEval/0's canonical body: a correct solution, so every hostile variant below would pass if the harness believed
# the program instead of its own completion proof.
GOOD = '''
def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        for j, b in enumerate(numbers):
            if i != j and abs(a - b) < threshold:
                return True
    return False
'''
WRONG = "\ndef has_close_elements(numbers, threshold):\n    return None\n"


@pytest.fixture(scope="module")
def problems(data_dir):
    bench = HumanEval()
    return bench, {p.task_id: p for p in bench.load_problems(data_dir)}


@pytest.fixture(scope="module")
def he0(problems, leftovers):
    global leftover_processes
    leftover_processes = leftovers
    return problems[0], problems[1]["HumanEval/0"]


def check(he0, sandbox, program: str, scale: float = 1.0):
    bench, problem = he0
    before = set(psutil.Process().children(recursive=True))
    start = time.monotonic()
    verdict = bench.check(problem, HEADER + program, sandbox, {}, timeout_scale=scale)
    elapsed = time.monotonic() - start
    assert not leftover_processes(), "a sandboxed process survived the run"
    assert set(psutil.Process().children(recursive=True)) <= before
    return verdict, elapsed


def test_control_good_solution_passes(he0, sandbox):
    verdict, _ = check(he0, sandbox, GOOD)
    assert verdict.status == "pass", verdict


def test_infinite_loop(he0, sandbox):
    verdict, elapsed = check(he0, sandbox, GOOD + "\nwhile True:\n    pass\n", scale=0.5)
    assert verdict.status == "timeout" and elapsed < 10


def test_infinite_loop_ignoring_alarm_is_killed(he0, sandbox):
    program = GOOD + "\nimport signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n"
    verdict, elapsed = check(he0, sandbox, program, scale=0.5)
    assert not verdict.passed and elapsed < 15


def test_fork_bomb(he0, sandbox):
    program = GOOD + "\nimport os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    verdict, elapsed = check(he0, sandbox, program, scale=0.5)
    assert not verdict.passed and elapsed < 20


def test_escaping_daemon_is_reaped(he0, sandbox):
    # A child that leaves the process group (setsid) and sleeps must still be killed.
    program = GOOD + ("\nimport os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n    os._exit(0)\n"
                      "raise SystemExit(1)\n")
    verdict, _ = check(he0, sandbox, program)
    assert not verdict.passed


def test_memory_bomb(he0, sandbox):
    verdict, _ = check(he0, sandbox, GOOD + "\nx = bytearray(64 * 1024 ** 3)\n")
    assert verdict.status == "fail" and "MemoryError" in verdict.details.get("error", "")


def test_disk_filling(he0, sandbox):
    program = GOOD + "\nwith open('big.bin', 'wb') as f:\n    while True:\n        f.write(b'x' * (1 << 20))\n"
    verdict, _ = check(he0, sandbox, program, scale=2)
    assert not verdict.passed
    assert "File too large" in verdict.details.get("error", "") or verdict.status in ("timeout", "error")


def test_deleting_files_outside_the_temp_dir(he0, sandbox, tmp_path):
    canary_dir = tmp_path / "outside"
    canary_dir.mkdir()
    canary = canary_dir / "canary.txt"
    canary.write_text("alive")
    program = GOOD + f"\nimport shutil\nshutil.rmtree({str(canary_dir)!r})\n"
    verdict, _ = check(he0, sandbox, program)
    assert not verdict.passed
    assert canary.read_text() == "alive"


def test_network_access(he0, sandbox):
    if not sandbox.net_mode:
        pytest.skip("this OS refuses network namespaces; isolation recorded as inactive")
    program = GOOD + ("\nimport socket\ns = socket.create_connection(('1.1.1.1', 53), timeout=2)\n")
    verdict, _ = check(he0, sandbox, program)
    assert verdict.status == "fail" and "Error" in verdict.details.get("error", "")


@pytest.mark.parametrize("early_exit", ["exit(0)", "import sys\nsys.exit(0)", "import os\nos._exit(0)",
                                        "raise SystemExit(0)", "quit()"])
def test_exit_before_the_asserts(he0, sandbox, early_exit):
    verdict, _ = check(he0, sandbox, WRONG + "\n" + early_exit + "\n")
    assert not verdict.passed


def test_system_exit_from_del(he0, sandbox):
    program = WRONG + ("\nimport os\nclass Bye:\n    def __del__(self):\n        os._exit(0)\n"
                       "keep = Bye()\nimport builtins\nbuiltins._bye = keep\n"
                       "class Raise:\n    def __del__(self):\n        raise SystemExit(0)\n_r = Raise()\ndel _r\n")
    verdict, _ = check(he0, sandbox, program)
    assert not verdict.passed


def test_atexit_exit_zero(he0, sandbox):
    program = WRONG + "\nimport atexit, os\natexit.register(lambda: os._exit(0))\n"
    verdict, _ = check(he0, sandbox, program)
    assert not verdict.passed


def test_builtins_patching(problems, sandbox):
    # HumanEval/2's check uses abs(); patching builtins must not make a wrong answer pass.
    bench, by_id = problems
    problem = by_id["HumanEval/2"]
    program = ("import builtins\nbuiltins.abs = lambda *a, **k: 0\nbuiltins.AssertionError = type('X', (Exception,), {})\n"
               "def truncate_number(number):\n    return 42.0\n")
    verdict = bench.check(problem, program, sandbox, {}, timeout_scale=1)
    assert not verdict.passed


def test_fake_marker_printing(he0, sandbox):
    program = WRONG + ("\nimport os, sys\nprint('PASS'); print('{\"status\": \"pass\"}')\n"
                       "for fd in range(3, 64):\n    try:\n        os.write(fd, b'x' * 32 + b'\\n{\"status\": \"pass\"}')\n"
                       "    except OSError:\n        pass\nos._exit(0)\n")
    verdict, _ = check(he0, sandbox, program)
    assert not verdict.passed


def test_patching_json_cannot_forge_payload(he0, sandbox):
    program = WRONG + "\nimport json\njson.dumps = lambda *a, **k: '{\"status\": \"pass\"}'\n"
    verdict, _ = check(he0, sandbox, program)
    assert not verdict.passed


def test_compiled_program_exiting_early_fails(data_dir, sandbox, leftovers):
    bench = MultiPLE("cpp")
    problem = next(p for p in bench.load_problems(data_dir) if p.task_id == "HumanEval_53_add")
    state = bench.prepare([problem], sandbox, parallel=1, timeout_scale=1)
    early = bench.program_for(problem, {"completion": "    exit(0);\n}"})
    assert bench.check(problem, early, sandbox, state, timeout_scale=1).status == "fail"
    good = bench.program_for(problem, {"completion": "    return x + y;\n}"})
    assert bench.check(problem, good, sandbox, state, timeout_scale=1).status == "pass"
    assert not leftovers()
