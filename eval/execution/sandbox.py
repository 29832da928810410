"""Run one untrusted program and decide, from the harness side only, whether it finished its tests.

**Not a security boundary.** It keeps model-written code from hurting the machine by accident and from faking a pass;
for adversarial code use a container/VM on top (gVisor, Firecracker).

What one run gets (``Sandbox.run``):

* its own session/process group (``start_new_session``) and a fresh temp dir as cwd, ``HOME`` and ``TMPDIR``;
* a scrubbed environment (fixed ``PATH``, ``PYTHONHASHSEED=0``, one BLAS/OMP thread, ``MPLBACKEND=Agg``);
* rlimits: address space (or data segment for JVM/V8), CPU seconds, file size, processes, open files, no core files;
  every value is clamped to the current hard limit (containers often lower it) and configurable by argument or env
  (``CODEBLOCK_SANDBOX_MEMORY_MB``, ``CODEBLOCK_SANDBOX_FSIZE_MB``, ``CODEBLOCK_SANDBOX_NPROC``);
* no network where the OS allows: a new network namespace (root: ``unshare(CLONE_NEWNET)``; otherwise an
  unprivileged user+network namespace). Whether it was active is recorded in every result (``net_isolated``);
* when the harness runs as root: a per-run unprivileged uid/gid from a pool locked across processes
  (``/tmp/codeblock-sandbox-uids``). That makes ``RLIMIT_NPROC`` effective (root ignores it), keeps the program out of
  every file it does not own (files outside its temp dir survive ``rm -rf``), and lets the harness find every process
  the run started, even ones that called ``setsid``;
* a wall-clock deadline and a disk guard (free space on the temp filesystem may not drop by more than
  ``CODEBLOCK_SANDBOX_DISK_MB``, default 2048, during the run); on expiry, exit or violation the harness SIGKILLs the
  process group, then sweeps ``/proc`` for anything left with the run's uid or its ``CODEBLOCK_SANDBOX_ID`` marker,
  and waits for the direct child, so nothing outlives ``run``.

Completion protocol (why printing "PASS", ``exit(0)``, ``os._exit(0)`` or ``SystemExit`` raised from ``__del__``
cannot pass): the parent draws a 128-bit nonce per run and writes it into a pipe (nonce pipe) whose write end it closes
at once; a second pipe (result pipe) goes the other way. Stdout/stderr are only kept as diagnostics tails.

* Python modes (:mod:`codeblock_eval.execution.sandbox_runner`): the harness runner reads the nonce and closes the nonce pipe
  *before* exec'ing candidate code, keeps it in a local of its own frame, runs the tests, and only then writes
  ``nonce + "\\n" + payload`` on the result pipe with functions it bound before the candidate ran, and ``os._exit(0)``.
* Compiled/other languages: the harness appends, after the last test statement of the program's ``main``, code that
  copies the nonce pipe (fd 3) to the result pipe (fd 4). Exiting early, crashing or failing an assert never reaches it.

The parent accepts a run as complete only if the result pipe begins with that nonce **and** the exit status is 0.
Candidates share the runner's process, so deliberate introspection (``gc``/``ctypes``) could still find the nonce; that
is the limit of in-process testing and why the docs say "use a container" for hostile code.

Example::

    sb = Sandbox()
    res = sb.run_python({"mode": "script", "program": "x = 1", "test": "assert x == 1", "time_limit": 3}, wall_s=5)
    assert res.verified and res.payload_json()["status"] == "pass"
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import selectors
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

RUNNER_PATH = Path(__file__).with_name("sandbox_runner.py")
UID_LOCK_DIR = Path("/tmp/codeblock-sandbox-uids")
NONCE_FD, RESULT_FD = 3, 4  # fd numbers exec'd programs see (see the protocol above)
_TAIL = 8192
_MAX_RESULT = 512 * 1024 * 1024
EXIT_ISOLATION_FAILED = 121
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"{name}={value!r} is not an integer") from exc


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run. ``memory_mb <= 0`` disables the memory limit."""

    memory_mb: int = field(default_factory=lambda: _env_int("CODEBLOCK_SANDBOX_MEMORY_MB", 4096))
    memory_kind: str = "as"  # "as" (RLIMIT_AS) or "data" (RLIMIT_DATA: JVM/V8 reserve huge unused address space)
    file_size_mb: int = field(default_factory=lambda: _env_int("CODEBLOCK_SANDBOX_FSIZE_MB", 256))
    nproc: int = field(default_factory=lambda: _env_int("CODEBLOCK_SANDBOX_NPROC", 256))
    nofile: int = 1024
    disk_mb: int = field(default_factory=lambda: _env_int("CODEBLOCK_SANDBOX_DISK_MB", 2048))

    def rlimits(self, wall_s: float, uid_isolated: bool) -> dict[str, int]:
        out = {"core": 0, "fsize": self.file_size_mb * 1024 * 1024, "nofile": self.nofile,
               # CPU seconds: a backstop that also ends busy children the wall-clock kill might miss.
               "cpu": int(wall_s) + 2}
        if self.memory_mb > 0:
            out[self.memory_kind] = self.memory_mb * 1024 * 1024
        if uid_isolated:
            # Only meaningful for a fresh uid: the kernel counts processes per user and root ignores the limit.
            out["nproc"] = self.nproc
        return out


@dataclass
class RunResult:
    exit_code: int | None
    timed_out: bool
    verified: bool  # nonce seen on the result pipe AND exit status 0 (or exit 0 when no nonce was expected)
    payload: bytes | None
    stdout: str
    stderr: str
    wall_s: float
    net_isolated: bool
    uid_isolated: bool
    error: str | None = None

    def payload_json(self):
        return json.loads(self.payload) if self.payload else None


# ----------------------------------------------------------------------------------------------------------------
# capability probe and uid pool
# ----------------------------------------------------------------------------------------------------------------
_probe_lock = threading.Lock()
_probe_result: dict | None = None


def isolation_support() -> dict:
    """Which isolation the OS grants this process: {"net": "netns"|"userns"|None, "root": bool}. Cached."""
    global _probe_result
    with _probe_lock:
        if _probe_result is None:
            net = None
            if os.environ.get("CODEBLOCK_SANDBOX_NETWORK", "1") != "0":
                for kind, flag in (("netns", "CLONE_NEWNET"), ("userns", "CLONE_NEWUSER | r.CLONE_NEWNET")):
                    code = f"import sys; sys.path.insert(0, {str(RUNNER_PATH.parent)!r}); import sandbox_runner as r; r.unshare(r.{flag})"
                    try:
                        rc = subprocess.run([sys.executable, "-S", "-c", code], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20).returncode
                    except (OSError, subprocess.TimeoutExpired):
                        rc = 1
                    if rc == 0:
                        net = kind
                        break
            root = os.geteuid() == 0 and os.environ.get("CODEBLOCK_SANDBOX_DROP_UID", "1") != "0"
            if root:
                # A uid drop needs the interpreter (e.g. pyenv under /root) visible; check the mount trick works.
                code = (f"import sys; sys.path.insert(0, {str(RUNNER_PATH.parent)!r}); import sandbox_runner as r; "
                        f"r.expose({hidden_pairs([sys.base_prefix])!r}); r.unshare(r.CLONE_NEWNS)")
                try:
                    ok = subprocess.run([sys.executable, "-S", "-c", code], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20).returncode == 0
                except (OSError, subprocess.TimeoutExpired):
                    ok = False
                root = ok
            _probe_result = {"net": net, "root": root}
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


_UIDS = _UidPool(_env_int("CODEBLOCK_SANDBOX_UID_BASE", 62000), 1024)


def _find_pids(*, uid: int | None = None, marker: str | None = None, pgid: int | None = None) -> list[int]:
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


def _sweep(*, uid: int | None = None, marker: str | None = None, pgid: int | None = None) -> int:
    """SIGKILL every matching process until none is left; returns how many were killed."""
    killed = 0
    for _ in range(200):
        pids = _find_pids(uid=uid, marker=marker, pgid=pgid)
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


def _rmtree(path: Path) -> None:
    def fix(func, p, exc_info):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)


def _chown_tree(path: Path, uid: int) -> None:
    os.chown(path, uid, uid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)
            except OSError:
                pass


# ----------------------------------------------------------------------------------------------------------------
# the sandbox
# ----------------------------------------------------------------------------------------------------------------
class Sandbox:
    """Factory for isolated runs; thread-safe (one instance is shared by all evaluation workers)."""

    def __init__(self, limits: Limits | None = None, *, isolate_network: bool = True, drop_privileges: bool = True):
        self.limits = limits or Limits()
        support = isolation_support()
        self.net_mode = support["net"] if isolate_network else None
        self.uid_isolation = bool(support["root"] and drop_privileges)
        self._site_paths = [p for p in site.getsitepackages() if os.path.isdir(p)]
        self.started_ids: set[str] = set()  # run ids / uids this instance used (lets tests look for leftovers)
        self.used_uids: set[int] = set()
        self._expose = hidden_pairs([sys.base_prefix, sys.prefix, *self._site_paths]) if self.uid_isolation else []

    def describe(self) -> dict:
        """What isolation runs get; recorded in evaluation summaries."""
        return {"network_isolated": self.net_mode is not None, "network_mode": self.net_mode,
                "uid_isolated": self.uid_isolation, "memory_mb": self.limits.memory_mb,
                "file_size_mb": self.limits.file_size_mb, "nproc": self.limits.nproc,
                "disk_mb": self.limits.disk_mb}

    def new_workdir(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="cb-sbx-"))
        os.chmod(path, 0o700)
        return path

    def run_python(self, job: dict, *, wall_s: float, workdir: Path | None = None, site_packages: bool = True,
                   limits: Limits | None = None) -> RunResult:
        """Run one of the runner's python modes (``script``, ``unittest``, ``calls``, ``record``)."""
        return self._run(job=dict(job), wall_s=wall_s, workdir=workdir, limits=limits, expect_nonce=True,
                         site_packages=site_packages, drop_privileges=True, extra_env=None, extra_path=())

    def run_command(self, argv: list[str], *, wall_s: float, workdir: Path | None = None, expect_nonce: bool = True,
                    limits: Limits | None = None, drop_privileges: bool = True, extra_env: dict | None = None,
                    extra_path: tuple[str, ...] = ()) -> RunResult:
        """Exec ``argv`` inside the sandbox. ``expect_nonce=False`` for trusted steps such as compilers."""
        job = {"mode": "exec", "argv": list(argv)}
        return self._run(job=job, wall_s=wall_s, workdir=workdir, limits=limits, expect_nonce=expect_nonce,
                         site_packages=False, drop_privileges=drop_privileges, extra_env=extra_env,
                         extra_path=extra_path)

    # -- internals ---------------------------------------------------------------------------------------------
    def _run(self, *, job, wall_s, workdir, limits, expect_nonce, site_packages, drop_privileges, extra_env,
             extra_path) -> RunResult:
        limits = limits or self.limits
        own_workdir = workdir is None
        workdir = self.new_workdir() if own_workdir else Path(workdir)
        uid = _UIDS.acquire() if (self.uid_isolation and drop_privileges) else None
        run_id = secrets.token_hex(8)
        self.started_ids.add(run_id)
        if uid is not None:
            self.used_uids.add(uid)
        marker = f"CODEBLOCK_SANDBOX_ID={run_id}"
        nonce = secrets.token_hex(16).encode()
        fds_to_close: list[int] = []
        start = time.monotonic()
        try:
            if uid is not None:
                _chown_tree(workdir, uid)
            nonce_r, nonce_w = os.pipe()
            os.write(nonce_w, nonce)
            os.close(nonce_w)
            res_r, res_w = os.pipe()
            fds_to_close += [nonce_r, res_r, res_w]
            if uid is not None:  # so the program may also reopen them as /dev/fd/3 and /dev/fd/4 (Java)
                for fd in (nonce_r, res_w):
                    os.fchown(fd, uid, uid)
            job["nonce_fd"], job["result_fd"] = nonce_r, res_w
            job["isolation"] = {"net": self.net_mode, "uid": uid,
                                "expose": (self._expose + hidden_pairs(extra_path)) if uid is not None else [],
                                "rlimits": limits.rlimits(wall_s, uid is not None)}
            if job["mode"] == "exec":
                job["fixed_fds"] = [NONCE_FD, RESULT_FD]
            if not site_packages:
                job["sys_path"] = self._site_paths
            job_path = workdir / f".job-{run_id}.json"
            fd = os.open(job_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(job, f)
            env = {"PATH": ":".join([*extra_path, BASE_PATH]), "HOME": str(workdir), "TMPDIR": str(workdir),
                   "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
                   "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3", "CODEBLOCK_SANDBOX_ID": run_id,
                   **(extra_env or {})}
            argv = [sys.executable, "-s", "-P"] + ([] if site_packages else ["-S"]) + [str(RUNNER_PATH), str(job_path)]
            proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, pass_fds=(nonce_r, res_w), start_new_session=True)
            os.close(nonce_r)
            os.close(res_w)
            fds_to_close = [res_r]
            out, err, result, timed_out, error = self._drain(proc, res_r, start + wall_s, workdir, limits, uid,
                                                             marker)
            exit_code = proc.returncode
        finally:
            for fd in fds_to_close:
                try:
                    os.close(fd)
                except OSError:
                    pass
            if uid is not None:
                _UIDS.release(uid)
            if own_workdir:
                _rmtree(workdir)
        if exit_code == EXIT_ISOLATION_FAILED and error is None:
            error = "sandbox isolation failed: " + err.strip()[-300:]
        payload, verified = None, False
        if not timed_out and exit_code == 0 and error is None:
            if expect_nonce:
                if secrets.compare_digest(result[: len(nonce)], nonce):
                    verified, payload = True, result[len(nonce):].lstrip(b"\n")
            else:
                verified = True
        return RunResult(exit_code=exit_code, timed_out=timed_out, verified=verified, payload=payload,
                         stdout=out.decode("utf-8", "replace"), stderr=err.decode("utf-8", "replace"),
                         wall_s=time.monotonic() - start, net_isolated=self.net_mode is not None,
                         uid_isolated=uid is not None, error=error)

    def _drain(self, proc, res_r, deadline, workdir, limits, uid, marker):
        """Read stdout/stderr tails and the result pipe until exit or deadline, then kill everything left."""
        sel = selectors.DefaultSelector()
        bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray(), res_r: bytearray()}
        for fd in bufs:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        timed_out, error, exited_at = False, None, None
        disk_start = _free_bytes(workdir)
        next_disk = time.monotonic() + 0.5
        open_fds = set(bufs)
        try:
            while open_fds:
                now = time.monotonic()
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at > 0.2:
                    break  # the main process is gone; only escaped children can still hold the pipes
                if now >= deadline:
                    timed_out = exited_at is None
                    break
                if now >= next_disk and limits.disk_mb > 0:
                    next_disk = now + 0.5
                    if disk_start is not None and disk_start - (_free_bytes(workdir) or 0) > limits.disk_mb << 20:
                        error = f"disk guard: run wrote more than {limits.disk_mb} MiB"
                        break
                for key, _ in sel.select(timeout=min(0.05, max(0.0, deadline - now))):
                    fd = key.fd
                    try:
                        chunk = os.read(fd, 1 << 16)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        sel.unregister(fd)
                        open_fds.discard(fd)
                        continue
                    buf = bufs[fd]
                    buf += chunk
                    if fd == res_r:
                        if len(buf) > _MAX_RESULT:
                            error = "result too large"
                            open_fds.clear()
                            break
                    elif len(buf) > 4 * _TAIL:
                        del buf[: len(buf) - _TAIL]
        finally:
            sel.close()
            self._kill(proc, uid, marker)
        out, err = bytes(bufs[proc.stdout.fileno()][-_TAIL:]), bytes(bufs[proc.stderr.fileno()][-_TAIL:])
        proc.stdout.close()
        proc.stderr.close()
        return out, err, bytes(bufs[res_r]), timed_out, error

    @staticmethod
    def _kill(proc, uid, marker):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        proc.wait()
        if uid is not None:
            _sweep(uid=uid)
        else:
            _sweep(marker=marker, pgid=proc.pid)


def _free_bytes(path: Path) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize

