"""Why a BigCodeBench task is excluded: one cause per task, decided from how its reference solution failed here.

A task is excluded when its reference solution does not pass in our sandbox. The reference sweep records, per task,
``"pass"`` or ``"<status>: <evidence>"`` (the exception or the failing tests' traceback tails). This module turns that
evidence into a cause, so that a reader sees *why* a task is missing, not just that it is:

* ``missing_library`` — an import failed (``No module named 'x'``); the detail names the module.
* ``needs_network`` — the reference reaches the network (DNS, HTTP, sockets); the sandbox has none, not even loopback.
  Seen in the error, or, when a reference swallows the error and only an assertion fails, in its code: it calls a
  network API (``socket.gethostbyaddr``, ``requests.get``, ``urlopen``, ...) that its tests do not mock.
* ``needs_data_download`` — the reference needs data fetched at run time (nltk/textblob corpora).
* ``missing_program`` — an external program is not installed (tesseract) or not on the sandbox's PATH.
* ``timeout`` — the suite ran past its limit.
* ``flaky`` — failed once, passed on the rerun: unreliable here, so excluded.
* ``reference_fails`` — anything else (mostly library-version differences); the detail is the exception line.

    >>> classify_exclusion("fail: ModuleNotFoundError: No module named 'seaborn'")
    ('missing_library', 'seaborn')
    >>> classify_exclusion("timeout: suite ran past 240 s")
    ('timeout', 'suite ran past 240 s')
"""

from __future__ import annotations

import collections
import re

CAUSES = ("missing_library", "needs_network", "needs_data_download", "missing_program", "timeout", "flaky",
          "reference_fails")
CAUSE_LABELS = {
    "missing_library": "library not installed",
    "needs_network": "needs network",
    "needs_data_download": "needs data downloads",
    "missing_program": "external program missing",
    "timeout": "timeout",
    "flaky": "flaky (failed, then passed on rerun)",
    "reference_fails": "reference fails for another reason",
}
# Status prefixes the sweep writes; "flaky" is the rerun verdict, not a sandbox status.
STATUSES = ("fail", "timeout", "error", "flaky")

_MISSING_MODULE = re.compile(r"No module named '([A-Za-z0-9_.]+)'")
_NETWORK = re.compile(
    r"Temporary failure in name resolution|Name or service not known|nodename nor servname|Network is unreachable|"
    r"NewConnectionError|Max retries exceeded|Failed to establish a new connection|gaierror|URLError|"
    r"Cannot assign requested address|No route to host|getaddrinfo failed|ConnectionRefusedError|"
    r"Connection refused|requests\.exceptions\.ConnectionError|HTTPSConnectionPool|HTTPConnectionPool")
_DATA_DOWNLOAD = re.compile(r"Resource \S+ not found|nltk_data|nltk\.download|MissingCorpusError|"
                            r"python -m textblob\.download_corpora")
_PROGRAM = re.compile(r"TesseractNotFoundError|tesseract is not installed|(?:command|executable) not found")
_MISSING_COMMAND = re.compile(r"FileNotFoundError: \[Errno 2\] No such file or directory: '([A-Za-z][\w-]*)'")
# The last "SomeError: message" line of a traceback tail, for the reference_fails detail.
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failure)\b.*)$",
                             re.MULTILINE)


# Calls that need a real network, for references that swallow the network error (``except socket.herror: None``).
_NETWORK_CALL = re.compile(r"\b(socket\.(?:gethostbyaddr|gethostbyname(?:_ex)?|getaddrinfo|create_connection)|"
                           r"requests\.(?:get|post|head|request)|urlopen|urlretrieve|smtplib\.SMTP|ftplib\.FTP|"
                           r"wikipedia\.\w+|Nominatim|mechanize\.Browser)\b")


def classify_exclusion(verdict: str, code: str = "", test: str = "") -> tuple[str, str]:
    """``(cause, detail)`` for one recorded reference verdict (``"<status>: <evidence>"``; not ``"pass"``).

    ``code``/``test`` (the reference program and its tests) let a failure without network errors in its evidence still
    be traced to an unmocked network call.
    """
    status, _, evidence = verdict.partition(":")
    evidence = evidence.strip()
    if status == "timeout":
        return "timeout", evidence.replace(" after ? tests", "")[:120]  # "?": written by an earlier version
    if status == "flaky":
        return "flaky", _exception_line(evidence)
    # Order matters: an import error is the root cause even when a network error follows in another test.
    module = _MISSING_MODULE.search(evidence)
    if module:
        return "missing_library", module.group(1).split(".")[0]
    data = _DATA_DOWNLOAD.search(evidence)
    if data:
        return "needs_data_download", _resource_name(evidence) or data.group(0)
    net = _NETWORK.search(evidence)
    if net:
        return "needs_network", net.group(0)
    program = _PROGRAM.search(evidence)
    if program:
        return "missing_program", program.group(0)
    # subprocess could not find a bare command name (a data file would have a path or an extension). `python` and
    # `python3` are always there: the sandbox puts the harness's interpreter first on every run's PATH.
    command = _MISSING_COMMAND.search(evidence)
    if command:
        return "missing_program", f"{command.group(1)} (not on the sandbox's PATH)"
    call = _unmocked_network_call(code, test)
    if call:
        return "needs_network", f"calls {call} (not mocked by its tests)"
    return "reference_fails", _exception_line(evidence)


def _unmocked_network_call(code: str, test: str) -> str | None:
    for match in _NETWORK_CALL.finditer(code):
        name = match.group(1)
        if not ("patch" in test and name.rsplit(".", 1)[-1] in test):
            return name
    return None


def _resource_name(evidence: str) -> str | None:
    match = re.search(r"Resource (?:\x1b\[93m)?'?(\w+)", evidence)
    return f"nltk:{match.group(1)}" if match else None


def _exception_line(evidence: str) -> str:
    lines = _EXCEPTION_LINE.findall(evidence)
    line = lines[-1] if lines else evidence.strip().splitlines()[-1] if evidence.strip() else "no evidence recorded"
    return re.sub(r"\s+", " ", line)[:160]


def exclusion_breakdown(excluded: dict[str, str], n_tasks: int,
                        sources: dict[str, tuple[str, str]] | None = None) -> dict:
    """Counts per cause, the missing libraries by task count, and each excluded task's cause and detail.

    ``sources`` maps a task id to its ``(reference program, tests)`` (see :func:`classify_exclusion`).

    >>> b = exclusion_breakdown({"T/1": "fail: No module named 'cv2'", "T/2": "timeout: 240 s"}, 10)
    >>> b["by_cause"], b["missing_libraries"], b["n_excluded"]
    ({'missing_library': 1, 'timeout': 1}, {'cv2': 1}, 2)
    """
    tasks = {}
    for task_id, verdict in excluded.items():
        cause, detail = classify_exclusion(verdict, *(sources or {}).get(task_id, ("", "")))
        tasks[task_id] = {"cause": cause, "detail": detail}
    by_cause = collections.Counter(t["cause"] for t in tasks.values())
    libraries = collections.Counter(t["detail"] for t in tasks.values() if t["cause"] == "missing_library")
    return {
        "n_tasks": n_tasks,
        "n_excluded": len(excluded),
        "by_cause": {c: by_cause[c] for c in CAUSES if by_cause[c]},
        "missing_libraries": dict(sorted(libraries.items(), key=lambda kv: (-kv[1], kv[0]))),
        "tasks": dict(sorted(tasks.items(), key=lambda kv: _task_order(kv[0]))),
    }


def summary_line(name: str, breakdown: dict) -> str:
    """One line: how many tasks are excluded, and why.

    >>> summary_line("bigcodebench", exclusion_breakdown({"T/1": "fail: No module named 'cv2'"}, 10))
    'bigcodebench: 1 of 10 tasks excluded (10.0%): library not installed 1 (cv2 1)'
    """
    n, total = breakdown["n_excluded"], breakdown["n_tasks"]
    head = f"{name}: {n} of {total} tasks excluded ({100.0 * n / max(total, 1):.1f}%)"
    if not n:
        return head
    parts = []
    for cause, count in breakdown["by_cause"].items():
        part = f"{CAUSE_LABELS[cause]} {count}"
        if cause == "missing_library":
            libs = list(breakdown["missing_libraries"].items())
            shown = ", ".join(f"{lib} {c}" for lib, c in libs[:6]) + (", ..." if len(libs) > 6 else "")
            part += f" ({shown})"
        parts.append(part)
    return f"{head}: {'; '.join(parts)}"


def _task_order(task_id: str) -> tuple:
    prefix, _, number = task_id.rpartition("/")
    return (prefix, int(number)) if number.isdigit() else (prefix, 0, number)
