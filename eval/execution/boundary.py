"""The out-of-process boundary for assertion-style Python tests (HumanEval's ``check(candidate)``). Stdlib only.

Two sandboxed processes per sample, joined by two pipes:

* ``serve`` (the **candidate** process): execs the candidate program, answers ``OK`` (or ``F <reason>`` if the program
  failed or timed out), then for each request line (the call's arguments as tagged plain data) calls the entry point
  and answers ``R <tagged plain data>``, ``E <exception>`` or ``T`` (time budget spent). Everything this process
  does is untrusted: it may answer anything, in any order, or nothing.
* ``proxy_check`` (the **checker** process, harness code only): execs the dataset's own prompt (its helpers such as
  ``poly`` or ``encode_cyclic``, never the candidate's copies), binds the entry point name to a proxy that forwards
  each call to the candidate process, execs the dataset's test and runs ``check``. Every answer is parsed as data
  only (:func:`codeblock_eval.execution.plaindata.decode_text`, then :func:`~plaindata.check_plain`): no objects, no
  pickles, no code. The assertions, tolerances included, are evaluated here, out of the candidate's reach; the
  checker's payload (nonce-protected, see :mod:`codeblock_eval.execution.sandbox`) is the verdict.
"""

from __future__ import annotations

import json
import os
import signal
import time

if __package__:
    from codeblock_eval.execution import plaindata
else:  # loaded by the runner script from its own directory
    import plaindata

MAX_LINE = 64 << 20  # one answer; more is a malformed answer (the candidate's fail)


class _Timeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _writer(fd: int):
    def send(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    return send


def run_serve(job: dict, restore_builtins) -> dict:
    """Candidate side: exec the program, then answer calls until the checker closes the request pipe."""
    send = _writer(job["response_fd"])
    reader = os.fdopen(job["request_fd"], "rb")
    budget = float(job["time_limit"])
    signal.signal(signal.SIGALRM, _on_alarm)
    ns: dict = {}
    start, me = time.perf_counter(), os.getpid()
    # A child the program forks (and does not end) returns here too: only the first process answers.
    orphan = lambda: os.getpid() != me and os._exit(0)  # noqa: E731
    try:
        signal.setitimer(signal.ITIMER_REAL, budget)
        exec(compile(job["program"], "<program>", "exec"), ns)
        signal.setitimer(signal.ITIMER_REAL, 0)
        fn = ns[job["entry_point"]]
    except _Timeout:
        orphan()
        send(b"F " + json.dumps("timeout").encode() + b"\n")
        return {"status": "served", "stage": "program"}
    except BaseException as exc:  # noqa: BLE001
        signal.setitimer(signal.ITIMER_REAL, 0)
        orphan()
        send(b"F " + json.dumps(_err(exc)).encode() + b"\n")
        return {"status": "served", "stage": "program"}
    orphan()
    restore_builtins()
    send(b"OK\n")
    calls = 0
    while True:
        line = reader.readline(MAX_LINE)
        if not line:
            break
        args = plaindata.decode_text(line.decode("utf-8", "surrogatepass"))
        left = budget - (time.perf_counter() - start)
        try:
            if left <= 0:
                raise _Timeout()
            signal.setitimer(signal.ITIMER_REAL, left)
            out = fn(*args)
            answer = b"R " + plaindata.dumps(out).encode("utf-8", "surrogatepass") + b"\n"
            signal.setitimer(signal.ITIMER_REAL, 0)
        except _Timeout:
            send(b"T\n")
            break
        except BaseException as exc:  # noqa: BLE001
            signal.setitimer(signal.ITIMER_REAL, 0)
            answer = b"E " + json.dumps(_err(exc)).encode() + b"\n"
        orphan()
        calls += 1
        send(answer)
    return {"status": "served", "calls": calls}


class CandidateError(Exception):
    """The candidate raised, died, or answered something that is not plain data."""


class CandidateTimeout(BaseException):
    """The candidate spent its time budget (BaseException: tests' ``except Exception`` cannot swallow it)."""


def run_proxy_check(job: dict, restore_builtins) -> dict:
    """Checker side: the dataset's prompt and test, with the entry point forwarded to the candidate process."""
    send = _writer(job["request_fd"])
    reader = os.fdopen(job["response_fd"], "rb")
    decode, is_plain, dumps, loads = plaindata.decode_text, plaindata.check_plain, plaindata.dumps, json.loads

    def receive():
        line = reader.readline(MAX_LINE)
        if not line.endswith(b"\n"):
            raise CandidateError("the candidate process ended or sent a torn answer")
        kind, _, rest = line[:-1].partition(b" ")
        return kind, rest

    def candidate(*args, **kwargs):
        if kwargs:
            raise CandidateError("keyword arguments are not forwarded")
        send(dumps(list(args)).encode("utf-8", "surrogatepass") + b"\n")
        kind, rest = receive()
        if kind == b"R":
            try:
                value = decode(rest.decode("utf-8", "surrogatepass"))
            except (ValueError, TypeError, RecursionError) as exc:
                raise CandidateError(f"malformed answer: {type(exc).__name__}") from None
            if not is_plain(value):
                raise CandidateError("answer is not plain data")
            return value
        if kind == b"E":
            raise CandidateError(str(loads(rest))[:300] if rest[:1] == b'"' else "malformed answer")
        if kind == b"T":
            raise CandidateTimeout()
        raise CandidateError("malformed answer")

    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(job["time_limit"]))
    stage = "program"
    try:
        kind, rest = receive()
        if kind == b"F":
            reason = str(loads(rest))[:300] if rest[:1] == b'"' else "malformed answer"
            if reason == "timeout":
                signal.setitimer(signal.ITIMER_REAL, 0)
                return {"status": "timeout", "stage": stage}
            raise CandidateError(reason)
        if kind != b"OK":
            raise CandidateError("malformed greeting")
        stage = "test"
        ns: dict = {}
        exec(compile(job["prompt"], "<prompt>", "exec"), ns)
        ns[job["entry_point"]] = candidate
        exec(compile(job["test"], "<test>", "exec"), ns)
    except (_Timeout, CandidateTimeout):
        signal.setitimer(signal.ITIMER_REAL, 0)
        return {"status": "timeout", "stage": stage}
    except BaseException as exc:  # noqa: BLE001
        signal.setitimer(signal.ITIMER_REAL, 0)
        return {"status": "fail", "stage": stage, "error": _err(exc)}
    signal.setitimer(signal.ITIMER_REAL, 0)
    return {"status": "pass"}
