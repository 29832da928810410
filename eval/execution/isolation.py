"""Isolation steps the sandbox runner applies to itself before any candidate code runs. Standard library only.

Order (:func:`isolate`): parent-death signal; new network namespace; new mount + pid namespaces with a fork, so the
candidate runs as pid 1 of its own pid namespace (the kernel kills every process of that namespace when its pid 1
dies, and the pid-1 process gets SIGKILL when the runner above it dies, which gets SIGKILL when the harness dies);
a fresh ``/proc`` (host processes, ``/proc/<ppid>/cmdline`` included, are invisible); the filesystem view (empty
tmpfs over ``/tmp``, ``/dev/shm``, ``/var/tmp`` and over hidden paths such as the data dir, the repository and
``$HOME``, with only the run's own temp dir and the interpreter bound back); rlimits; the uid drop; umask.
Every step is optional and driven by the job's ``isolation`` dict; the parent probes what the OS grants.
"""

from __future__ import annotations

import os
import signal

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWPID = 0x00020000, 0x10000000, 0x40000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 0x1, 0x2, 0x4, 0x8, 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG = 1
O_PATH = getattr(os, "O_PATH", 0o10000000)
EXIT_ISOLATION_FAILED = 121
PRIVATE_TMP = ("/tmp", "/dev/shm", "/var/tmp")
_RLIMITS = {"as": "RLIMIT_AS", "data": "RLIMIT_DATA", "cpu": "RLIMIT_CPU", "fsize": "RLIMIT_FSIZE",
            "nproc": "RLIMIT_NPROC", "nofile": "RLIMIT_NOFILE", "core": "RLIMIT_CORE", "stack": "RLIMIT_STACK"}


def _libc():
    import ctypes

    return ctypes, ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        ctypes, _ = _libc()
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    """``unshare(2)`` (``os.unshare`` only exists from Python 3.12)."""
    ctypes, libc = _libc()
    _check(libc.unshare(ctypes.c_int(flags)), f"unshare({flags:#x})")


def die_with_parent(expected_ppid: int | None = None) -> None:
    """SIGKILL this process when the thread that forked it exits (``PR_SET_PDEATHSIG``); if the parent is already
    gone (re-parented before the call), exit now. Cleared by fork and by credential changes: call it again."""
    ctypes, libc = _libc()
    _check(libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if expected_ppid is not None and os.getppid() != expected_ppid:
        os._exit(EXIT_ISOLATION_FAILED)


def mount(src, target, fstype, flags, data) -> None:
    ctypes, libc = _libc()
    enc = lambda v: v.encode() if isinstance(v, str) else v  # noqa: E731
    _check(libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {src} on {target}")


def loopback_up() -> None:
    # A fresh network namespace has `lo` down; tests that talk to localhost expect it up. Best effort.
    import fcntl
    import socket
    import struct

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", 0x1 | 0x8 | 0x40, b"\0" * 14))  # SIOCSIFFLAGS
    except OSError:
        pass


def _overlay(hide: list, keep: list) -> None:
    """Empty tmpfs over each path in ``hide``; then every path in ``keep`` bound back at its own place.

    ``keep`` paths are opened (O_PATH) before anything is covered, so they stay reachable."""
    fds = []
    for path in dict.fromkeys(keep):
        try:
            fds.append((path, os.open(path, O_PATH)))
        except OSError:
            continue
    for path in dict.fromkeys(hide):
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=01777,size=512m" if path in PRIVATE_TMP
                  else "mode=0755,size=256k")
    for path, fd in fds:
        try:
            os.makedirs(path, mode=0o755, exist_ok=True)
        except OSError:
            pass  # already visible (not under a hidden path)
        if not any(path == h or path.startswith(h.rstrip("/") + "/") for h in hide):
            os.close(fd)
            continue
        mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
        os.close(fd)


def expose(pairs: list) -> None:
    """Make paths under non-traversable dirs (e.g. a Python in /root/.pyenv) visible to the dropped uid (needs a
    private mount namespace, see :func:`isolate`)."""
    _overlay([h for h, _ in pairs], [p for _, p in pairs])


def _fork_into_pid_namespace() -> None:
    """Fork; the parent (outside the new pid namespace) waits and mirrors the child's exit; the child returns as
    pid 1 of the namespace. The parent keeps no pipe: only the child can write a result."""
    pid = os.fork()
    if pid == 0:
        return
    # Not /proc/self/fd: the child is about to mount its own /proc in the mount namespace both share.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def isolate(iso: dict) -> dict:
    """Apply the job's isolation; returns what was applied (for the diagnostics the runner may print)."""
    import resource

    parent = os.getppid()
    die_with_parent(parent)
    net = iso.get("net")
    if net == "netns":
        unshare(CLONE_NEWNET)
        loopback_up()
    elif net == "userns":
        unshare(CLONE_NEWUSER | CLONE_NEWNET)
    fs = iso.get("fs") or {}
    if iso.get("pidns") or iso.get("expose") or fs:
        unshare(CLONE_NEWNS | (CLONE_NEWPID if iso.get("pidns") else 0))
        mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    if iso.get("pidns"):
        _fork_into_pid_namespace()
        die_with_parent()  # pid 1 of the new namespace: getppid() is 0 here, so no re-parenting check
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    if fs:
        # Hide first (tmpfs over data, repository, home, /tmp...), then bind back the interpreter and the workdir.
        _overlay(list(fs.get("hide", ())) + [p for p in PRIVATE_TMP if fs.get("private_tmp")],
                 list(fs.get("keep", ())))
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
        die_with_parent()  # a credential change clears the parent-death signal
    os.umask(0o077)
    return {"pidns": bool(iso.get("pidns")), "fs": bool(fs)}
