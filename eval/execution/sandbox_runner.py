"""Harness half of one sandboxed program. Standard library only; run as a script, never imported by candidates.

The parent (:mod:`codeblock_eval.execution.sandbox`) starts ``python -s -P [-S] sandbox_runner.py JOBFILE`` in a fresh session,
with a scrubbed environment, inside a private temporary directory. This script, still running harness code only:

1. reads the job file (mode 0600, owned by the parent's user) and **unlinks it** before any candidate code runs;
2. isolates itself (:mod:`codeblock_eval.execution.isolation`): parent-death signal, network/mount/pid namespaces,
   private /tmp and a filesystem view without the data, the repository or $HOME, rlimits (clamped to the hard
   limits), and, when the parent is root, a per-run unprivileged uid/gid;
3. ``exec`` mode: ``execve`` the given command (compiled MultiPL-E programs etc.); the completion proof is then written
   by the harness code appended to the test's ``main`` (see ``codeblock_eval.benchmarks.multipl_e``);
   python modes: reads the per-run nonce from the nonce pipe, closes that pipe, runs the candidate and the tests, and
   only when the tests have run to the end writes ``nonce + "\\n" + payload`` to the result pipe and calls ``os._exit(0)``.

The parent accepts a result only if the result pipe starts with the nonce AND the exit status is 0, so ``exit(0)``,
``os._exit(0)``, ``SystemExit`` from ``__del__``, ``atexit`` tricks or text printed to stdout can never count as a pass.
For differential benchmarks (HumanEval+/MBPP+) the payload carries only the *outputs*; the parent compares them with
the ground truth, which never enters the sandbox.
"""

from __future__ import annotations

import json
import os
import sys

if __package__:  # imported by the harness (tests, tools)
    from codeblock_eval.execution import boundary, isolation, plaindata
else:  # run as a script by the sandbox: load the siblings before any candidate code
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import boundary  # noqa: E402
    import isolation  # noqa: E402
    import plaindata  # noqa: E402
    del sys.path[0]

encode, decode_text, digest, canon, is_floats = (plaindata.encode, plaindata.decode_text, plaindata.digest,
                                                 plaindata.canon, plaindata.is_floats)
EXIT_ISOLATION_FAILED = isolation.EXIT_ISOLATION_FAILED


# ----------------------------------------------------------------------------------------------------------------
# Python modes
# ----------------------------------------------------------------------------------------------------------------
class _Timeout(BaseException):
    """Raised by SIGALRM for one call; BaseException so `except Exception` in candidates cannot swallow it."""


def _on_alarm(signum, frame):
    raise _Timeout()


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def run_script(job: dict, restore_builtins) -> dict:
    """human-eval style: exec candidate program, then (with pristine builtins) the test code; pass = no exception."""
    import signal

    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(job["time_limit"]))
    # Like human-eval/evalplus: a bare globals dict, so `if __name__ == "__main__":` blocks do not run.
    ns: dict = {}
    stage = "program"
    try:
        exec(compile(job["program"], "<program>", "exec"), ns)
        stage = "test"
        ns["__builtins__"] = restore_builtins()
        exec(compile(job["test"], "<test>", "exec"), ns)
    except _Timeout:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return {"status": "timeout", "stage": stage}
    except BaseException as exc:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from candidates are failures too
        signal.setitimer(signal.ITIMER_REAL, 0)
        return {"status": "fail", "stage": stage, "error": _err(exc)}
    signal.setitimer(signal.ITIMER_REAL, 0)
    return {"status": "pass"}


def run_unittest(job: dict, restore_builtins) -> dict:
    """BigCodeBench style: exec program as module ``__test__``, run its ``TestCases`` suite under one time limit."""
    import signal
    import types
    import unittest

    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(job["time_limit"]))
    module = types.ModuleType("__test__")
    module.__file__ = os.path.join(os.getcwd(), "__test__.py")
    sys.modules["__test__"] = module
    result = unittest.TestResult()
    try:
        exec(compile(job["program"], "__test__.py", "exec"), module.__dict__)
        restore_builtins()
        suite = unittest.TestLoader().loadTestsFromTestCase(module.TestCases)
        suite.run(result)
    except _Timeout:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return {"status": "timeout", "tests_run": result.testsRun}
    except BaseException as exc:  # noqa: BLE001
        signal.setitimer(signal.ITIMER_REAL, 0)
        return {"status": "fail", "error": _err(exc), "tests_run": result.testsRun}
    signal.setitimer(signal.ITIMER_REAL, 0)
    problems = [(t.id(), tb[-500:]) for t, tb in result.failures + result.errors]
    ok = result.testsRun > 0 and not problems and not result.unexpectedSuccesses
    return {"status": "pass" if ok else "fail", "tests_run": result.testsRun, "failed": problems[:5],
            "n_failed": len(problems)}


def run_calls(job: dict, restore_builtins) -> dict:
    """EvalPlus style: exec the solution, call the entry point on every input, return the serialised outputs.

    Per-input wall limits (``setitimer``) and a per-phase budget mirror ``evalplus.eval.untrusted_check``. The runner
    stops at the first exception/timeout (the sample fails whatever follows); wrong outputs cannot be recognised here
    because the expected outputs never enter the sandbox.
    """
    import signal
    import time

    with open(job["inputs_path"], encoding="utf-8") as f:
        all_inputs = decode_text(f.read())
    # Bind what the loop needs before candidate code can patch module globals.
    enc, dig = encode, digest
    setitimer, perf, timeout_exc, itimer = signal.setitimer, time.perf_counter, _Timeout, signal.ITIMER_REAL
    signal.signal(signal.SIGALRM, _on_alarm)
    ns: dict = {}
    try:
        signal.setitimer(signal.ITIMER_REAL, float(job["exec_limit"]))
        exec(compile(job["program"], "<solution>", "exec"), ns)
        signal.setitimer(signal.ITIMER_REAL, 0)
        fn = ns[job["entry_point"]]
    except _Timeout:
        return {"exec": "timeout", "phases": {}}
    except BaseException as exc:  # noqa: BLE001
        signal.setitimer(signal.ITIMER_REAL, 0)
        return {"exec": "error", "error": _err(exc), "phases": {}}
    restore_builtins()
    phases = {}
    for phase in job["phases"]:
        name = phase["name"]
        inputs = all_inputs[name]
        limits = phase["time_limits"]
        budget = float(phase["budget"])
        # Full values only where the comparison needs them (tolerances, special oracles); digests otherwise.
        to_wire = enc if phase.get("full") else dig
        outputs: list = []
        status, error = "ok", None
        start = perf()
        for i, inp in enumerate(inputs):
            try:
                setitimer(itimer, float(limits[i]))
                out = fn(*inp)
                # Serialising is harness work (evalplus compares outside the limit) but may run candidate code
                # (subclass __iter__), so it gets its own generous alarm.
                setitimer(itimer, max(10.0, 4 * float(limits[i])))
                encoded = to_wire(out)
                setitimer(itimer, 0)
            except timeout_exc:
                status = "timeout"
                break
            except BaseException as exc:  # noqa: BLE001
                setitimer(itimer, 0)
                status, error = "exception", _err(exc)
                break
            outputs.append(encoded)
            if perf() - start > budget:
                status = "timeout"
                break
        phases[name] = {"status": status, "n_done": len(outputs), "outputs": outputs, "error": error}
        if status != "ok":
            break
    return {"exec": "ok", "phases": phases}


def run_record(job: dict, restore_builtins) -> dict:
    """Ground truth: run the (trusted) reference on every input, recording outputs and per-input wall time."""
    import copy
    import time

    with open(job["inputs_path"], encoding="utf-8") as f:
        all_inputs = decode_text(f.read())
    ns: dict = {}
    exec(compile(job["program"], "<reference>", "exec"), ns)
    fn = ns[job["entry_point"]]
    phases = {}
    for name, inputs in all_inputs.items():
        outs, times = [], []
        for inp in inputs:
            inp = copy.deepcopy(inp)
            t0 = time.perf_counter()
            out = fn(*inp)
            times.append(time.perf_counter() - t0)
            canonical = canon(out)
            small = len(canonical) <= job.get("max_value_chars", 1 << 22)
            outs.append([digest(out, canonical), encode(out) if small else None, is_floats(out)])
            del canonical
        phases[name] = {"outputs": outs, "times": times}
    return {"phases": phases}


MODES = {"script": run_script, "unittest": run_unittest, "calls": run_calls, "record": run_record,
         "serve": boundary.run_serve, "proxy_check": boundary.run_proxy_check}


def _make_serializer():
    """JSON writer for the payload built only from C functions captured before candidate code runs.

    A candidate that patches ``json.dumps`` (or anything reachable through module globals) cannot change it.
    """
    import _json
    from json.encoder import encode_basestring_ascii  # C function

    def default(o):
        raise TypeError(f"not serialisable: {type(o)}")

    c_encode, join = _json.make_encoder(None, default, encode_basestring_ascii, None, ":", ",", False, False, True), \
        "".join

    def ser(x) -> str:
        return join(c_encode(x, 0))

    return ser


def _which(name: str) -> str:
    for d in os.environ.get("PATH", "").split(os.pathsep):
        path = os.path.join(d, name)
        if os.access(path, os.X_OK):
            return path
    return name


def _read_fd(fd: int) -> bytes:
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def main() -> None:
    job_path = sys.argv[1]
    with open(job_path, "rb") as f:
        job = json.loads(f.read())
    os.unlink(job_path)
    try:
        isolation.isolate(job.get("isolation") or {})
    except Exception as exc:  # noqa: BLE001 - parent reports the reason
        sys.stderr.write(f"sandbox isolation failed: {exc!r}\n")
        os._exit(EXIT_ISOLATION_FAILED)
    for path in job.get("sys_path") or ():
        if path not in sys.path:
            sys.path.append(path)
    if job["mode"] == "exec":
        # Move the nonce/result pipes to the fixed fds the appended harness code uses (3 and 4).
        import fcntl

        moved = [fcntl.fcntl(job["nonce_fd"], fcntl.F_DUPFD, 100), fcntl.fcntl(job["result_fd"], fcntl.F_DUPFD, 100)]
        os.close(job["nonce_fd"])
        os.close(job["result_fd"])
        for src, dst in zip(moved, job["fixed_fds"]):
            os.dup2(src, dst)
            os.close(src)
        argv = job["argv"]
        try:
            os.execve(argv[0] if os.sep in argv[0] else _which(argv[0]), argv, os.environ)
        except OSError as exc:
            sys.stderr.write(f"exec failed: {exc!r}\n")
            os._exit(127)
    # Keep what the final write needs in locals of this frame only; candidates never get a reference to it.
    nonce = _read_fd(job["nonce_fd"])
    os.close(job["nonce_fd"])
    out_fd = job["result_fd"]
    os.set_inheritable(out_fd, False)
    write, exit_, ser, mode = os.write, os._exit, _make_serializer(), MODES[job["mode"]]
    # Children the candidate forks (multiprocessing, os.fork) return into this frame too: only the process that
    # started the tests may write the result, the others leave without a word.
    getpid, runner_pid = os.getpid, os.getpid()
    import builtins

    builtins_module, pristine = builtins, dict(builtins.__dict__)

    def restore_builtins():
        # Module-level patches of builtins (e.g. `builtins.abs = ...`) must not change how the tests run.
        builtins_module.__dict__.clear()
        builtins_module.__dict__.update(pristine)
        return builtins_module

    payload = mode(job, restore_builtins)
    if getpid() != runner_pid:
        exit_(1)
    data = nonce + b"\n" + ser(payload).encode("ascii")
    view = memoryview(data)
    while view:
        n = write(out_fd, view)
        view = view[n:]
    exit_(0)


if __name__ == "__main__":
    main()
