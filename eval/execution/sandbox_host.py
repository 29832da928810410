"""Host side of the sandbox: what the OS grants (probe), the uid pool, finding and killing a run's processes,
and cleaning what a killed harness left behind. Used by :mod:`codeblock_eval.execution.sandbox` only."""

from __future__ import annotations

import atexit
import fcntl
import os
import re
import secrets
import shutil
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RUNNER_DIR = Path(__file__).parent
UID_LOCK_DIR = Path("/tmp/codeblock-sandbox-uids")
# Temp folders carry the harness pid: cb-sbx-<pid>-..., cb-inputs-<pid>-..., cb-bin-<pid>-...; see
# clean_stale_tempdirs.
TEMP_PREFIXES = ("cb-sbx-", "cb-inputs-", "cb-bin-")
_STALE = re.compile(r"^(?:cb-sbx|cb-inputs|cb-bin)-(\d+)-")
INTERPRETER_NAMES = ("python", "python3")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"{name}={value!r} is not an integer") from exc


def temp_prefix(kind: str) -> str:
    """``cb-sbx-<pid>-`` / ``cb-inputs-<pid>-``: a later harness removes the folders of a pid that is gone."""
    return f"{kind}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_tempdirs(root: str | None = None) -> list[str]:
    """Remove temp folders of harness processes that no longer exist (a run killed with SIGKILL)."""
    root = root or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    for name in names:
        m = _STALE.match(name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            path = os.path.join(root, name)
            rmtree(Path(path))
            if not os.path.exists(path):
                removed.append(path)
    return removed


# ----------------------------------------------------------------------------------------------------------------
# capability probe and uid pool
# ----------------------------------------------------------------------------------------------------------------
_probe_lock = threading.Lock()
_probe_result: dict | None = None


def _probe(code: str) -> bool:
    code = f"import sys; sys.path.insert(0, {str(RUNNER_DIR)!r}); import isolation as r; " + code
    try:
        return subprocess.run([sys.executable, "-S", "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def isolation_support() -> dict:
    """What the OS grants this process, cached: {"net": "netns"|"userns"|None, "root": bool (uid drop),
    "pidns": bool (pid + mount namespace, fresh /proc), "fs": bool (private /tmp and hidden paths)}.

    ``CODEBLOCK_SANDBOX_NETWORK=0``, ``CODEBLOCK_SANDBOX_DROP_UID=0``, ``CODEBLOCK_SANDBOX_PIDNS=0`` and
    ``CODEBLOCK_SANDBOX_FS=0`` switch a layer off (recorded as inactive, with a warning)."""
    global _probe_result
    with _probe_lock:
        if _probe_result is None:
            net = None
            if os.environ.get("CODEBLOCK_SANDBOX_NETWORK", "1") != "0":
                for kind, flag in (("netns", "CLONE_NEWNET"), ("userns", "CLONE_NEWUSER | r.CLONE_NEWNET")):
                    if _probe(f"r.unshare(r.{flag})"):
                        net = kind
                        break
            pidns = os.environ.get("CODEBLOCK_SANDBOX_PIDNS", "1") != "0" and _probe(
                "r.isolate({'pidns': True}); import os; os._exit(0 if os.getpid() == 1 else 1)")
            fs = os.environ.get("CODEBLOCK_SANDBOX_FS", "1") != "0" and _probe(
                "r.isolate({'pidns': %r, 'fs': {'private_tmp': True, 'hide': [], 'keep': [%r]}})"
                % (pidns, sys.base_prefix))
            root = os.geteuid() == 0 and os.environ.get("CODEBLOCK_SANDBOX_DROP_UID", "1") != "0"
            if root:
                # A uid drop needs the interpreter (e.g. pyenv under /root) visible; check the mount trick works.
                root = _probe(f"r.isolate({{'expose': {hidden_pairs([sys.base_prefix])!r}}})")
            _probe_result = {"net": net, "root": root, "pidns": pidns, "fs": fs}
        return dict(_probe_result)


def hidden_pairs(paths) -> list[list[str]]:
    """[hidden ancestor, path] for each path some ancestor of which others cannot traverse (mode lacks o+x)."""
    pairs = []
    for path in paths:
        path = os.path.realpath(path)
        parts = Path(path).parts
        for i in range(2, len(parts) + 1):
            ancestor = os.path.join(*parts[:i])
            try:
                if not os.stat(ancestor).st_mode & 0o001:
                    if ancestor != path:
                        pairs.append([ancestor, path])
                    break
            except OSError:
                break
    return pairs


class _UidPool:
    """Hands out unprivileged uids, exclusive across threads (set) and processes (flock on a lock file)."""

    def __init__(self, base: int, size: int):
        self.base, self.size = base, size
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}

    def acquire(self) -> int:
        UID_LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        start = secrets.randbelow(self.size)
        with self._lock:
            for k in range(self.size):
                uid = self.base + (start + k) % self.size
                if uid in self._held:
                    continue
                fd = os.open(UID_LOCK_DIR / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                self._held[uid] = fd
                break
            else:
                raise RuntimeError(f"no free sandbox uid in {self.base}..{self.base + self.size - 1}")
        return uid

    def release(self, uid: int) -> None:
        with self._lock:
            fd = self._held.pop(uid)
        os.close(fd)


_UIDS: _UidPool | None = None


def uid_pool() -> _UidPool:
    global _UIDS
    if _UIDS is None:
        _UIDS = _UidPool(_env_int("CODEBLOCK_SANDBOX_UID_BASE", 62000), 1024)
    return _UIDS


def find_pids(*, uid: int | None = None, marker: str | None = None, pgid: int | None = None) -> list[int]:
    """Live (non-zombie) processes matching the run's uid, process group or environment marker."""
    me = os.getpid()
    found = []
    my_uid = os.geteuid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        try:
            st_uid = os.stat(f"/proc/{pid}").st_uid
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2:].split()
            if fields[0] in (b"Z", b"X"):
                continue
            if (uid is not None and st_uid == uid) or (pgid is not None and int(fields[2]) == pgid):
                found.append(pid)
                continue
            if marker is not None and st_uid == my_uid:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(pid)
        except (OSError, ValueError, IndexError):
            continue
    return found


def sweep(*, uid: int | None = None, marker: str | None = None, pgid: int | None = None) -> int:
    """SIGKILL every matching process until none is left; returns how many were killed."""
    killed = 0
    for _ in range(200):
        pids = find_pids(uid=uid, marker=marker, pgid=pgid)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.005)
    return killed


def rmtree(path: Path) -> None:
    def fix(func, p, exc_info):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)


def chown_tree(path: Path, uid: int) -> None:
    os.chown(path, uid, uid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)
            except OSError:
                pass


def free_bytes(path: Path) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize



_bin_lock = threading.Lock()
_bin_dirs: dict[int, str] = {}


def interpreter_bin_dir() -> str:
    """A folder (one per harness process) whose ``python`` and ``python3`` run this interpreter; runs get it first
    on ``PATH``, as the official BigCodeBench image has its Python there. Shell scripts, not symlinks: a symlink to a
    venv's python outside the venv would not find the venv's site-packages.

    >>> os.path.basename(shutil.which("python", path=interpreter_bin_dir())) == "python"
    True
    """
    with _bin_lock:
        path = _bin_dirs.get(os.getpid())  # keyed by pid: a forked harness makes its own (the parent's may go away)
        if path and os.path.isdir(path):
            return path
        path = tempfile.mkdtemp(prefix=temp_prefix("cb-bin"))
        for name in INTERPRETER_NAMES:
            script = os.path.join(path, name)
            with open(script, "w", encoding="utf-8") as f:
                f.write(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
            os.chmod(script, 0o755)
        os.chmod(path, 0o755)  # a dropped uid must be able to list and run them
        _bin_dirs[os.getpid()] = path
        atexit.register(rmtree, Path(path))
        return path
