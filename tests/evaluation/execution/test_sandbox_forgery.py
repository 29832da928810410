"""Forged passes (issue 13 item 1/2): every wrong solution below FAILs on every benchmark that claims the
out-of-process boundary (``trust == "out_of_process"``), and nothing it writes outside its sandbox remains.

Each attack carries a wrong solution; on an in-process harness most of them score PASS (see the README table).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from pathlib import Path

import pytest

from codeblock_eval.benchmarks.registry import get_benchmark

OUT_OF_PROCESS = ("humaneval", "humaneval+", "mbpp", "mbpp+")
# HumanEval tasks whose tests each attack would fool in-process: /2 (== and abs), /4 (abs only), /32 (math.fabs,
# the prompt's poly helper and random); MBPP+ tasks for the others.
HE_TASK = {"gc_builtins": "HumanEval/4", "monkeypatch": "HumanEval/32", "fake_random": "HumanEval/32"}


def task_for(name: str, attack: str) -> str:
    if name.startswith("humaneval"):
        return HE_TASK.get(attack, "HumanEval/2")
    return "Mbpp/2"


ANY = '''
class _Any:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __sub__(self, other): return 0.0
    __rsub__ = __sub__
    def __abs__(self): return 0.0
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    def __bool__(self): return True
    def __float__(self): return 0.0
    def __iter__(self): return iter(())
    def __len__(self): return 0
    def __hash__(self): return 0
'''

ATTACKS = {
    # (a) walk up to the runner's frame, write its nonce and a forged verdict, leave with exit 0
    "frame_walk": ANY + '''
def ENTRY(*args):
    import sys, os, json
    f = sys._getframe()
    while f is not None:
        loc = f.f_locals
        if "nonce" in loc and "out_fd" in loc:
            os.write(loc["out_fd"], loc["nonce"] + b"\\n" + json.dumps({"status": "pass"}).encode())
            os._exit(0)
        f = f.f_back
    return None
''',
    # (b) an object equal to everything, with x - y == 0.0 for tolerance tests
    "always_true_eq": ANY + "\ndef ENTRY(*args):\n    return _Any()\n",
    # (c) a trace hook that swaps the test's `candidate` for an always-true function
    "settrace_swap": ANY + '''
import sys, ctypes
def _tracer(frame, event, arg):
    if event == "call" and "candidate" in frame.f_locals:
        frame.f_locals["candidate"] = lambda *a, **k: _Any()
        ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
    return _tracer
sys.settrace(_tracer)
def ENTRY(*args):
    return None
''',
    # (d) patch the runner's saved copy of builtins (found through gc) so the tests' abs() always gives 0
    "gc_builtins": ANY + '''
import gc
for _o in gc.get_objects():
    if type(_o) is dict and _o.get("__name__") == "builtins" and "abs" in _o:
        _o["abs"] = lambda x: 0
        _o["AssertionError"] = type("NotAnAssertion", (Exception,), {})
def ENTRY(*args):
    return 12345.678
''',
    # (e) monkeypatch modules and helpers the tests use
    "monkeypatch": ANY + '''
import math
math.fabs = lambda x: 0.0
math.isclose = lambda *a, **k: True
def poly(*a, **k):
    return 0.0
def ENTRY(*args):
    return 12345.678
''',
    # (e') a fake `random` whose every draw is 1: HumanEval/32's tests then only ask for the root of 1 + x
    "fake_random": '''
import sys, types
class _R:
    def __init__(self, *a): pass
    def randint(self, a, b): return 1
    def random(self): return 0.5
    def choice(self, seq): return seq[0]
sys.modules["random"] = types.SimpleNamespace(Random=_R, randint=lambda a, b: 1, random=lambda: 0.5, seed=lambda *a: None)
def ENTRY(*args):
    return -1.0
''',
    # (f) the answer key on disk: read the data dir from /proc/<ppid>/cmdline or the known path, run the reference
    "answer_key": '''
def ENTRY(*args):
    import gzip, json, os
    paths = [DATA_FILE]
    try:
        cmd = open(f"/proc/{os.getppid()}/cmdline", "rb").read().split(b"\\0")
        paths += [c.decode() for c in cmd if c.startswith(b"/")]
    except OSError:
        pass
    for path in paths:
        try:
            with gzip.open(path, "rt") as f:
                for line in f:
                    rec = json.loads(line)
                    if rec["task_id"] == TASK_ID:
                        ns = {}
                        exec(rec["prompt"] + rec["canonical_solution"], ns)
                        return ns[rec["entry_point"]](*args)
        except OSError:
            continue
    return None
''',
}


@pytest.fixture(scope="module")
def loaded(data_dir):
    out = {}
    for name in OUT_OF_PROCESS:
        bench = get_benchmark(name)
        problems = {p.task_id: p for p in bench.load_problems(data_dir)}
        out[name] = (bench, problems)
    return out


@pytest.fixture(scope="module")
def states(loaded, sandbox):
    out = {}
    for name, (bench, problems) in loaded.items():
        used = sorted({task_for(name, a) for a in ATTACKS})
        out[name] = bench.prepare([problems[t] for t in used], sandbox, parallel=1, timeout_scale=1)
    yield out
    for name, (bench, _) in loaded.items():
        getattr(bench, "cleanup", lambda s: None)(out[name])


def _program(name, problem, bench, attack: str) -> str:
    data_file = bench.dataset_info()["path"]
    body = (ATTACKS[attack].replace("ENTRY", problem.entry_point).replace("DATA_FILE", repr(str(data_file)))
            .replace("TASK_ID", repr(problem.task_id)))
    return problem.prompt + "\n" + body  # like a real sample: the prompt (its helpers) then the completion


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("name", OUT_OF_PROCESS)
def test_wrong_solution_fails_whatever_it_tries(name, attack, loaded, states, sandbox, leftovers):
    bench, problems = loaded[name]
    assert bench.trust == "out_of_process"
    problem = problems[task_for(name, attack)]
    verdict = bench.check(problem, _program(name, problem, bench, attack), sandbox, states[name], timeout_scale=1)
    assert not verdict.passed, (attack, verdict)
    assert not leftovers()


def test_answer_key_attack_is_real_without_the_filesystem_view(loaded, states, sandbox):
    """Control: the same attack passes on a sandbox without the filesystem view, so the FAIL above is the view's."""
    from codeblock_eval.execution.sandbox import Sandbox

    open_view = Sandbox()
    open_view.fs_view = False
    bench, problems = loaded["humaneval"]
    problem = problems["HumanEval/2"]
    program = _program("humaneval", problem, bench, "answer_key")
    assert bench.check(problem, program, open_view, {}, timeout_scale=1).passed
    assert not bench.check(problem, program, sandbox, {}, timeout_scale=1).passed


def test_no_file_or_socket_outside_the_sandbox(loaded, states, sandbox, tmp_path):
    bench, problems = loaded["humaneval"]
    problem = problems["HumanEval/2"]
    token = secrets.token_hex(6)
    sock_path = f"/tmp/cb-test-sock-{token}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    os.chmod(sock_path, 0o777)
    server.listen(4)
    server.settimeout(0.2)
    got = []

    def accept():
        for _ in range(40):
            try:
                conn, _ = server.accept()
                got.append(conn.recv(100))
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    leaks = [f"/tmp/cb-leak-{token}", f"/dev/shm/cb-leak-{token}", f"/var/tmp/cb-leak-{token}"]
    program = problem.prompt + problem.extra["canonical_solution"] + f'''
import socket
for _p in {leaks!r}:
    try:
        open(_p, "w").write("x")
    except OSError:
        pass
try:
    _s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    _s.connect({sock_path!r})
    _s.sendall(b"escaped")
except OSError:
    pass
'''
    try:
        verdict = bench.check(problem, program, sandbox, {}, timeout_scale=1)
    finally:
        thread.join()
        server.close()
        os.unlink(sock_path)
    assert verdict.passed, verdict  # still a correct solution
    assert got == [], "the candidate reached a unix socket of the host"
    assert [p for p in leaks if Path(p).exists()] == [], "files written outside the sandbox survived"
