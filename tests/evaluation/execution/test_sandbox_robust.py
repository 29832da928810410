"""Nothing a sample does stops the run (issue 13 item 3) and nothing outlives the harness (item 4).

Real hostile programs: forked children writing to the result pipe, forged and torn payloads, frame walking to the
runner's nonce; then a harness killed with SIGKILL mid-run: no sandbox process and no temp folder may remain.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from codeblock_eval.benchmarks.registry import get_benchmark
from codeblock_eval.execution.evaluate import evaluate_samples

HE0_GOOD = '''
def has_close_elements(numbers, threshold):
    for i, a in enumerate(numbers):
        for j, b in enumerate(numbers):
            if i != j and abs(a - b) < threshold:
                return True
    return False
'''
HE0_WRONG = "\ndef has_close_elements(numbers, threshold):\n    return None\n"

# Finds the runner's frame (it holds the nonce and the result fd), writes a forged payload, leaves with exit 0.
FRAME_WALK = '''
import sys, os
def _forge():
    f = sys._getframe()
    while f is not None:
        if "nonce" in f.f_locals and "out_fd" in f.f_locals:
            os.write(f.f_locals["out_fd"], f.f_locals["nonce"] + b"\\n" + PAYLOAD)
            os._exit(0)
        f = f.f_back
_forge()
'''
# A forked child that also writes on every fd it has, before and after the parent's own payload.
CHILD_WRITES = '''
import os, time
if os.fork() == 0:
    for fd in range(3, 64):
        try:
            os.write(fd, b'{"status": "pass"}\\n' * 3)
        except OSError:
            pass
    time.sleep(0.3)
    for fd in range(3, 64):
        try:
            os.write(fd, b'garbage')
        except OSError:
            pass
    os._exit(0)
time.sleep(0.1)
'''
# A child that returns into the runner (no _exit): the runner would write a second payload if it did not check.
CHILD_RETURNS = "\nimport os\nos.fork()\n"
MULTIPROCESSING_OK = '''
import multiprocessing as _mp
def _sq(x):
    return x * x
_q = _mp.get_context("fork").Queue()
_c = _mp.get_context("fork").Process(target=lambda: _q.put(_sq(3)))
_c.start()
assert _q.get(timeout=5) == 9
_c.join()
assert _c.exitcode == 0
'''

PAYLOADS = {
    "status_pass": b'{"status": "pass"}',
    "exec_only": b'{"exec": "ok"}',
    "phases_list": b'{"exec": "ok", "phases": []}',
    "bad_phase": b'{"exec": "ok", "phases": {"base": {"status": "ok", "n_done": "x", "outputs": 5}}}',
    "extra_data": b'{"status": "pass"}{"status": "pass"}',
    "not_json": b"\\xff\\xfe",
    "array": b"[1, 2]",
    "bad_tag": b'{"exec": "ok", "phases": {"base": {"status": "ok", "n_done": 1, "outputs": [{"zz": 1}]}}}',
}


@pytest.fixture(scope="module")
def loaded(data_dir):
    out = {}
    for name in ("humaneval", "humaneval+", "mbpp"):
        bench = get_benchmark(name)
        out[name] = (bench, bench.load_problems(data_dir))
    return out


def _evaluate(loaded, name, samples, tmp_path, sandbox):
    bench, problems = loaded[name]
    ids = {s["task_id"] for s in samples}
    summary = evaluate_samples(bench, [p for p in problems if p.task_id in ids], samples, out_dir=tmp_path,
                               allow_code_execution=True, sandbox=sandbox, progress=False, parallel=2)
    rows = [json.loads(line) for line in (tmp_path / "eval_results.jsonl").read_text().splitlines()]
    assert len(rows) == len(samples), "every sample gets a result"
    return summary, rows


@pytest.mark.parametrize("name", ["humaneval", "humaneval+"])
def test_hostile_payloads_are_fails_and_the_run_finishes(name, loaded, tmp_path, sandbox, leftovers):
    samples = [{"task_id": "HumanEval/0", "solution": HE0_WRONG + FRAME_WALK.replace("PAYLOAD", repr(p))}
               for p in PAYLOADS.values()]
    samples += [{"task_id": "HumanEval/0", "solution": HE0_WRONG + CHILD_WRITES},
                {"task_id": "HumanEval/0", "solution": HE0_GOOD + CHILD_WRITES},
                {"task_id": "HumanEval/0", "solution": HE0_WRONG + CHILD_RETURNS},
                {"task_id": "HumanEval/0", "solution": HE0_GOOD + MULTIPROCESSING_OK},
                {"task_id": "HumanEval/0", "solution": HE0_GOOD + CHILD_RETURNS},
                {"task_id": "HumanEval/0", "solution": HE0_GOOD},
                {"task_id": "HumanEval/0", "solution": 42}]  # not a string: an error row, not a crash
    summary, rows = _evaluate(loaded, name, samples, tmp_path, sandbox)
    by_index = {r["sample_index"]: r for r in rows}
    n = len(PAYLOADS)
    for i in range(n + 3):  # forged payloads, children writing, a child returning into the runner
        assert not by_index[i]["passed"], by_index[i]
    assert by_index[n + 3]["passed"], by_index[n + 3]  # multiprocessing used honestly still passes
    assert by_index[n + 4]["passed"], by_index[n + 4]  # a child returning into the runner writes nothing
    assert by_index[n + 5]["passed"]
    assert by_index[n + 6]["status"] == "error" and "int" in by_index[n + 6]["details"]["error"]
    assert not leftovers()


def test_malformed_payload_reason_is_recorded(loaded, tmp_path, sandbox):
    samples = [{"task_id": "HumanEval/0", "solution": HE0_WRONG + FRAME_WALK.replace("PAYLOAD", repr(p))}
               for p in (PAYLOADS["exec_only"], PAYLOADS["extra_data"])]
    _, rows = _evaluate(loaded, "humaneval+", samples, tmp_path, sandbox)
    reasons = [r["details"].get("reason", "") for r in rows]
    assert all("malformed payload" in r for r in reasons), rows


HARNESS = textwrap.dedent('''
    import sys, time
    from codeblock_eval.execution.sandbox import Sandbox
    sb = Sandbox()
    program = """
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            open("/tmp/cb-survivor-marker", "w").write("x")
            time.sleep(120)
            os._exit(0)
        time.sleep(120)
        os._exit(0)
    time.sleep(120)
    """
    print("ready", flush=True)
    sb.run_python({"mode": "script", "program": program, "test": "", "time_limit": 100}, wall_s=110)
''')


def _sandbox_pids(harness_pid: int) -> list[int]:
    """Processes whose command line names a temp folder of this harness (the runner and everything it forked)."""
    needle = f"cb-sbx-{harness_pid}-".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if needle in f.read():
                    with open(f"/proc/{name}/stat", "rb") as g:
                        if g.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X"):
                            found.append(int(name))
        except OSError:
            continue
    return found


def test_killed_harness_leaves_no_process_and_no_temp_folder(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", HARNESS], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 30
        while len(_sandbox_pids(proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_sandbox_pids(proc.pid)) >= 3, "the sandbox run and its children should be running"
        tmp_root = Path(tempfile.gettempdir())
        assert list(tmp_root.glob(f"cb-sbx-{proc.pid}-*"))
        assert list(tmp_root.glob(f"cb-bin-{proc.pid}-*")), "the harness's python/python3 folder"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while _sandbox_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sandbox_pids(proc.pid) == [], "sandbox processes survived the harness"
    assert not Path("/tmp/cb-survivor-marker").exists() or os.environ.get("CODEBLOCK_SANDBOX_FS") == "0"
    # The next start removes the folders of the dead harness.
    from codeblock_eval.execution.sandbox import Sandbox

    Sandbox()
    assert not list(Path(tempfile.gettempdir()).glob(f"cb-sbx-{proc.pid}-*"))
    assert not list(Path(tempfile.gettempdir()).glob(f"cb-bin-{proc.pid}-*"))
