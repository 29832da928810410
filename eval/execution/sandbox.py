"""Run one untrusted program and decide, from the harness side only, whether it finished its tests.

**Not a security boundary.** It keeps model-written code from hurting the machine by accident and from faking a pass;
for adversarial code use a container/VM on top (gVisor, Firecracker).

What one run gets (``Sandbox.run``):

* its own session/process group (``start_new_session``) and a fresh temp dir as cwd, ``HOME`` and ``TMPDIR``;
* a scrubbed environment (fixed ``PATH`` whose ``python``/``python3`` are the harness's interpreter,
  ``PYTHONHASHSEED=0``, one BLAS/OMP thread, ``MPLBACKEND=Agg``);
* rlimits: address space (or data segment for JVM/V8), CPU seconds, file size, processes, open files, no core files;
  every value is clamped to the current hard limit (containers often lower it) and configurable by argument or env
  (``CODEBLOCK_SANDBOX_MEMORY_MB``, ``CODEBLOCK_SANDBOX_FSIZE_MB``, ``CODEBLOCK_SANDBOX_NPROC``);
* no network where the OS allows: a new network namespace (root: ``unshare(CLONE_NEWNET)``; otherwise an
  unprivileged user+network namespace). Whether it was active is recorded in every result (``net_isolated``);
* when the harness runs as root: a per-run unprivileged uid/gid from a pool locked across processes
  (``/tmp/codeblock-sandbox-uids``), so ``RLIMIT_NPROC`` is effective and the program owns no file outside its dir;
* where the OS allows (probed once, :func:`~codeblock_eval.execution.sandbox_host.isolation_support`): a pid
  namespace with a fresh ``/proc`` and a mount namespace with private ``/tmp``, ``/dev/shm``, ``/var/tmp`` and an
  empty tmpfs over :attr:`Sandbox.hidden` (data dir, cache, repository, ``$HOME``); see
  :mod:`codeblock_eval.execution.isolation`. Missing layers are warnings and ``describe()["warnings"]``;
* a wall-clock deadline and a disk guard; on expiry, exit or violation the harness SIGKILLs the process group, then
  sweeps ``/proc`` for anything left with the run's uid or its ``CODEBLOCK_SANDBOX_ID`` marker, and waits for the
  direct child, so nothing outlives ``run``; ``PR_SET_PDEATHSIG`` and the pid namespace cover a killed harness, and
  temp folders carry the harness pid so that the next start removes those of a dead one.

Completion protocol (why printing "PASS", ``exit(0)``, ``os._exit(0)`` or ``SystemExit`` raised from ``__del__``
cannot pass): the parent draws a 128-bit nonce per run and writes it into a pipe (nonce pipe) whose write end it closes
at once; a second pipe (result pipe) goes the other way. Stdout/stderr are only kept as diagnostics tails.

* Python modes (:mod:`codeblock_eval.execution.sandbox_runner`): the harness runner reads the nonce and closes the nonce pipe
  *before* exec'ing candidate code, keeps it in a local of its own frame, runs the tests, and only then writes
  ``nonce + "\\n" + payload`` on the result pipe with functions it bound before the candidate ran, and ``os._exit(0)``.
* Compiled/other languages: the harness appends, after the last test statement of the program's ``main``, code that
  copies the nonce pipe (fd 3) to the result pipe (fd 4). Exiting early, crashing or failing an assert never reaches it.

The parent accepts a run as complete only if the result pipe holds that nonce, a newline and exactly one JSON object
(compiled programs: the nonce alone) **and** the exit status is 0; anything else is rejected with a ``reason``.
In ``script``/``unittest`` modes candidates share the runner's process, so deliberate introspection (frame walking,
``gc``) can still find the nonce: benchmarks that need a verdict out of reach use the ``serve``/``proxy_check`` pair
(:mod:`codeblock_eval.execution.boundary`) or ``calls`` (outputs compared in the harness).

Example::

    sb = Sandbox()
    res = sb.run_python({"mode": "script", "program": "x = 1", "test": "assert x == 1", "time_limit": 3}, wall_s=5)
    assert res.verified and res.payload_json()["status"] == "pass"
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import signal
import site
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from codeblock_eval.execution.sandbox_host import (
    _env_int, chown_tree, clean_stale_tempdirs, free_bytes, hidden_pairs, interpreter_bin_dir, isolation_support,
    rmtree, sweep, temp_prefix, uid_pool)

RUNNER_PATH = Path(__file__).with_name("sandbox_runner.py")
NONCE_FD, RESULT_FD = 3, 4  # fd numbers exec'd programs see (see the protocol above)
_TAIL = 8192
_MAX_RESULT = 512 * 1024 * 1024
_TOO_LARGE = "result too large"
EXIT_ISOLATION_FAILED = 121
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


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
    reject: str | None = None  # why a run that exited 0 with the nonce was still not accepted (malformed payload)
    data: dict | None = None  # the parsed payload of an accepted python run

    def payload_json(self):
        if self.data is not None:
            return self.data
        return json.loads(self.payload) if self.payload else None

    @property
    def reason(self) -> str:
        """One line for a verdict's details: why this run does not count as complete."""
        return self.reject or self.error or ("timeout" if self.timed_out else "no completion proof")


def parse_payload(payload: bytes) -> tuple[dict | None, str | None]:
    """Exactly one JSON object, nothing before or after it (a forked child writing too, garbage, a torn write:
    all rejected with a reason, never an exception)."""
    try:
        text = payload.decode("ascii")
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, f"malformed payload: {type(exc).__name__}: {str(exc)[:120]}"
    if not isinstance(value, dict):
        return None, f"malformed payload: a JSON {type(value).__name__}, not an object"
    return value, None


# ----------------------------------------------------------------------------------------------------------------
# the sandbox
# ----------------------------------------------------------------------------------------------------------------
class Sandbox:
    """Factory for isolated runs; thread-safe (one instance is shared by all evaluation workers)."""

    def __init__(self, limits: Limits | None = None, *, isolate_network: bool = True, drop_privileges: bool = True,
                 hide: tuple = ()):
        self.limits = limits or Limits()
        support = isolation_support()
        self.net_mode = support["net"] if isolate_network else None
        self.uid_isolation = bool(support["root"] and drop_privileges)
        self.pidns = bool(support["pidns"])
        self.fs_view = bool(support["fs"])
        self._site_paths = [p for p in site.getsitepackages() if os.path.isdir(p)]
        self.removed_stale = clean_stale_tempdirs()  # before the bin folder below exists
        # `python`/`python3` on every run's PATH run this interpreter (tasks call `subprocess.call(["python", f])`).
        self.bin_dir = interpreter_bin_dir()
        self.started_ids: set[str] = set()  # run ids / uids this instance used (lets tests look for leftovers)
        self.used_uids: set[int] = set()
        exposed = [sys.base_prefix, sys.prefix, *self._site_paths, self.bin_dir]
        self._expose = hidden_pairs(exposed) if self.uid_isolation else []
        # What the candidate may not see: the data (answer keys), the repository, the user's home and caches.
        self.hidden: list[str] = []
        for path in (os.environ.get("CODEBLOCK_DATA_DIR"), os.environ.get("CODEBLOCK_CACHE_DIR"),
                     os.environ.get("XDG_CACHE_HOME"), str(Path(__file__).resolve().parents[2]),
                     os.path.expanduser("~"), *hide):
            self.hide(path)
        self.warnings = [w for w in self._degraded() if w]
        for w in self.warnings:
            warnings.warn(w, RuntimeWarning, stacklevel=2)

    def hide(self, path) -> None:
        """Make ``path`` (a directory) invisible to every later run (an empty tmpfs over it)."""
        if path and os.path.isdir(path):
            real = os.path.realpath(path)
            if real != "/" and real not in self.hidden:
                self.hidden.append(real)

    def _degraded(self):
        yield None if self.net_mode else "sandbox: no network namespace (runs can reach the network)"
        yield None if self.pidns else ("sandbox: no pid namespace (runs see host processes, /proc/<ppid>/cmdline; "
                                       "survivors of a killed harness rely on PR_SET_PDEATHSIG only)")
        yield None if self.fs_view else ("sandbox: no private filesystem view (runs can read the data dir and "
                                         "write to /tmp, /dev/shm, /var/tmp)")

    def describe(self) -> dict:
        """What isolation runs get; recorded in evaluation summaries (``warnings`` lists every missing layer)."""
        return {"network_isolated": self.net_mode is not None, "network_mode": self.net_mode,
                "uid_isolated": self.uid_isolation, "pid_namespace": self.pidns, "private_filesystem": self.fs_view,
                "hidden_paths": list(self.hidden) if self.fs_view else [], "warnings": list(self.warnings),
                "memory_mb": self.limits.memory_mb, "file_size_mb": self.limits.file_size_mb,
                "nproc": self.limits.nproc, "disk_mb": self.limits.disk_mb}

    def new_workdir(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix=temp_prefix("cb-sbx")))
        os.chmod(path, 0o700)
        return path

    def run_python(self, job: dict, *, wall_s: float, workdir: Path | None = None, site_packages: bool = True,
                   limits: Limits | None = None, pass_fds: tuple[int, ...] = ()) -> RunResult:
        """Run one of the runner's python modes (``script``, ``unittest``, ``calls``, ``record``, ``serve``,
        ``proxy_check``). ``pass_fds`` are handed to the run (same numbers) and closed here once it started."""
        return self._run(job=dict(job), wall_s=wall_s, workdir=workdir, limits=limits, expect_nonce=True,
                         site_packages=site_packages, drop_privileges=True, extra_env=None, extra_path=(),
                         pass_fds=tuple(pass_fds))

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
             extra_path, pass_fds=()) -> RunResult:
        limits = limits or self.limits
        own_workdir = workdir is None
        workdir = self.new_workdir() if own_workdir else Path(workdir)
        uid = uid_pool().acquire() if (self.uid_isolation and drop_privileges) else None
        run_id = secrets.token_hex(8)
        self.started_ids.add(run_id)
        if uid is not None:
            self.used_uids.add(uid)
        marker = f"CODEBLOCK_SANDBOX_ID={run_id}"
        nonce = secrets.token_hex(16).encode()
        fds_to_close: list[int] = list(pass_fds)
        start = time.monotonic()
        try:
            if uid is not None:
                chown_tree(workdir, uid)
            nonce_r, nonce_w = os.pipe()
            os.write(nonce_w, nonce)
            os.close(nonce_w)
            res_r, res_w = os.pipe()
            fds_to_close += [nonce_r, res_r, res_w]
            for fd in pass_fds:
                if uid is not None:
                    os.fchown(fd, uid, uid)
            if uid is not None:  # so the program may also reopen them as /dev/fd/3 and /dev/fd/4 (Java)
                for fd in (nonce_r, res_w):
                    os.fchown(fd, uid, uid)
            job["nonce_fd"], job["result_fd"] = nonce_r, res_w
            job["isolation"] = {"net": self.net_mode, "uid": uid, "pidns": self.pidns,
                                "expose": (self._expose + hidden_pairs(extra_path)) if uid is not None else [],
                                "rlimits": limits.rlimits(wall_s, uid is not None)}
            if self.fs_view:
                keep = [str(workdir), sys.prefix, sys.base_prefix, *self._site_paths, self.bin_dir, *extra_path,
                        *(os.path.dirname(p.rstrip("/")) for p in extra_path)]
                if job.get("inputs_path"):
                    keep.append(os.path.dirname(job["inputs_path"]))
                job["isolation"]["fs"] = {"private_tmp": True, "hide": self.hidden,
                                          "keep": [os.path.realpath(k) for k in keep if k]}
            if job["mode"] == "exec":
                job["fixed_fds"] = [NONCE_FD, RESULT_FD]
            if not site_packages:
                job["sys_path"] = self._site_paths
            job_path = workdir / f".job-{run_id}.json"
            fd = os.open(job_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(job, f)
            env = {"PATH": ":".join([*extra_path, self.bin_dir, BASE_PATH]), "HOME": str(workdir),
                   "TMPDIR": str(workdir),
                   "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
                   "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3", "CODEBLOCK_SANDBOX_ID": run_id,
                   **(extra_env or {})}
            argv = [sys.executable, "-s", "-P"] + ([] if site_packages else ["-S"]) + [str(RUNNER_PATH), str(job_path)]
            proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, pass_fds=(nonce_r, res_w, *pass_fds),
                                    start_new_session=True)
            for fd in (nonce_r, res_w, *pass_fds):
                os.close(fd)
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
                uid_pool().release(uid)
            if own_workdir:
                rmtree(workdir)
        if exit_code == EXIT_ISOLATION_FAILED and error is None:
            error = "sandbox isolation failed: " + err.decode("utf-8", "replace").strip()[-300:]
        payload, verified, data, reject = None, False, None, None
        if error == _TOO_LARGE:
            error, reject = None, f"result pipe over {_MAX_RESULT >> 20} MiB"
        if not timed_out and exit_code == 0 and error is None and reject is None:
            if expect_nonce and job["mode"] == "exec":  # compiled programs copy the nonce and nothing else
                verified = secrets.compare_digest(result, nonce)
                if not verified and secrets.compare_digest(result[: len(nonce)], nonce):
                    reject = "extra data after the completion proof"
            elif expect_nonce:
                if secrets.compare_digest(result[: len(nonce) + 1], nonce + b"\n"):
                    payload = result[len(nonce) + 1:]
                    data, reject = parse_payload(payload)
                    verified = reject is None
            else:
                verified = True
        return RunResult(exit_code=exit_code, timed_out=timed_out, verified=verified, payload=payload,
                         stdout=out.decode("utf-8", "replace"), stderr=err.decode("utf-8", "replace"),
                         wall_s=time.monotonic() - start, net_isolated=self.net_mode is not None,
                         uid_isolated=uid is not None, error=error, reject=reject, data=data)

    def _drain(self, proc, res_r, deadline, workdir, limits, uid, marker):
        """Read stdout/stderr tails and the result pipe until exit or deadline, then kill everything left."""
        sel = selectors.DefaultSelector()
        bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray(), res_r: bytearray()}
        for fd in bufs:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        timed_out, error, exited_at = False, None, None
        disk_start = free_bytes(workdir)
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
                    if disk_start is not None and disk_start - (free_bytes(workdir) or 0) > limits.disk_mb << 20:
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
                            error = _TOO_LARGE
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
            sweep(uid=uid)
        else:
            sweep(marker=marker, pgid=proc.pid)
