"""Fixtures for the execution side of the evaluation harness: one shared sandbox, a private harness cache.

Ground-truth outputs/timings and reference-failure lists go to a per-session cache, never the user's. The cache is
set as ``CODEBLOCK_CACHE_DIR`` only while a test of this folder runs (setup, call and teardown, so module- and
session-scoped fixtures built here see it too) and restored after each phase: tests collected later (recipes, labels)
keep the user's model cache. An autouse session fixture would leak the variable into them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_CACHE: dict[str, Path] = {}


def eval_cache_dir() -> Path:
    """This session's private harness cache (created on first use, removed when the session ends)."""
    if "path" not in _CACHE:
        _CACHE["path"] = Path(tempfile.mkdtemp(prefix="codeblock-eval-cache-"))
    return _CACHE["path"]


def _witheval_cache():
    old = os.environ.get("CODEBLOCK_CACHE_DIR")
    os.environ["CODEBLOCK_CACHE_DIR"] = str(eval_cache_dir())
    try:
        return (yield)
    finally:
        if old is None:
            os.environ.pop("CODEBLOCK_CACHE_DIR", None)
        else:
            os.environ["CODEBLOCK_CACHE_DIR"] = old


# Item hooks of a folder's conftest run only for that folder's items (pytest calls them through item.ihook).
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _witheval_cache())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _witheval_cache())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    return (yield from _witheval_cache())


def pytest_sessionfinish(session):
    path = _CACHE.pop("path", None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def eval_cache() -> Path:
    """The harness cache folder the code under test writes to (for tests that look inside it)."""
    return eval_cache_dir()


@pytest.fixture(scope="session")
def sandbox():
    from codeblock_eval.execution.sandbox import Sandbox

    return Sandbox()


@pytest.fixture(scope="session")
def leftovers(sandbox):
    """Callable returning processes of this session's sandbox runs still alive (must be empty after every run)."""
    return lambda: leftover_processes(sandbox)


def _uid_taken_by_another_harness(uid: int) -> bool:
    """A released uid may be handed to another harness running at the same time (the pool is shared through lock
    files): its processes are that harness's, not survivors of ours."""
    import fcntl

    from codeblock_eval.execution.sandbox_host import UID_LOCK_DIR

    try:
        fd = os.open(UID_LOCK_DIR / f"{uid}.lock", os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def leftover_processes(sandbox) -> list[int]:
    """Live processes that carry one of the sandbox's run markers or run under one of its uids."""
    markers = [f"CODEBLOCK_SANDBOX_ID={i}".encode() for i in sandbox.started_ids]
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            st_uid = os.stat(f"/proc/{name}").st_uid
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            if state in (b"Z", b"X"):
                continue
            if st_uid in sandbox.used_uids and not _uid_taken_by_another_harness(st_uid):
                found.append(int(name))
                continue
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
            if b"CODEBLOCK_SANDBOX_ID=" in env and any(m in env for m in markers):
                found.append(int(name))
        except OSError:
            continue
    return found
