"""Where candidate code runs: a sandbox that nothing in a workspace can see out of.

Two layers, both from what the Linux kernel gives unprivileged users:

* **The grading namespace** (`run_in_grading_namespace`): the whole grading runs in its own
  user, mount, PID and network namespaces (`unshare`). Its network is a private loopback
  shared by the grader, the emulator and dbt, so nothing a candidate runs reaches the machine's
  network or the host's loopback services; the grader is PID 1 there, so every process of the
  grading dies with it (a `setsid` or double fork cannot escape); its work folder is a
  size-limited tmpfs.
* **A jail per process that runs candidate input** (`Jail.command`): the emulator, every dbt
  invocation, the optional Airflow loader each run under bubblewrap: the system folders and
  the interpreter read-only, nothing of the host's home folders, `/etc` reduced to what
  programs need, only the folders named writable, a private /tmp, a fresh PID namespace
  (no view of the grader's processes, its /proc or its environment), an empty environment
  plus what we pass, its own session, and resource limits (address space, file size,
  processes, no core files).

Where neither is available (macOS, a kernel without unprivileged user namespaces, no
bubblewrap) `grade` refuses to run candidate code unless the interviewer passes
`--allow-unisolated`; the report then says so in its header.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GIB = 1024 ** 3
MIB = 1024 ** 2
NAMESPACE_MARKER = "DE_GRADER_NAMESPACE"  # set in the grading namespace's own environment

# What a program needs from /etc; the rest (shadow, ssh keys, machine secrets) stays out.
_ETC_FILES = ("hosts", "nsswitch.conf", "passwd", "group", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
              "localtime", "timezone", "ssl", "ca-certificates", "ca-certificates.conf", "alternatives",
              "mime.types", "os-release", "debian_version", "gai.conf", "host.conf", "protocols", "services")
_TOP_LEVEL_SYSTEM = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


class SandboxError(RuntimeError):
    """The sandbox could not be set up (the grading cannot run candidate code safely)."""


@dataclass(frozen=True)
class Limits:
    """Per-process resource limits for candidate code, and the grading's disk budget."""

    memory_bytes: int | None = 4 * GIB  # address space of each sandboxed process (RLIMIT_AS); None: unbounded
    file_bytes: int = 1 * GIB        # largest file a process may write (RLIMIT_FSIZE)
    processes: int = 1024            # tasks (processes and threads) of the grading's user (RLIMIT_NPROC)
    tmp_bytes: int = 512 * MIB       # each jail's private /tmp
    work_bytes: int = 4 * GIB        # the grading's work folder (a tmpfs in the grading namespace)

    def to_json(self) -> dict[str, int | None]:
        return {"memory_bytes": self.memory_bytes, "file_bytes": self.file_bytes, "processes": self.processes,
                "tmp_bytes": self.tmp_bytes, "work_bytes": self.work_bytes}


@dataclass(frozen=True)
class Isolation:
    """Whether candidate code runs jailed on this machine, and why not when it does not."""

    jailed: bool
    reason: str
    bwrap: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"jailed": self.jailed, "reason": self.reason}


@functools.cache
def detect() -> Isolation:
    """Probe once: bubblewrap present and able to create the namespaces a jail uses.

    GRADE_SANDBOX=off turns the sandbox off (to measure its cost, or to debug); `grade` then
    refuses candidate code unless --allow-unisolated is also given.
    """
    if os.environ.get("GRADE_SANDBOX") == "off":
        return Isolation(False, "the sandbox is turned off (GRADE_SANDBOX=off)")
    if not sys.platform.startswith("linux"):
        return Isolation(False, f"no sandbox on {sys.platform}: it needs Linux namespaces (bubblewrap)")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Isolation(False, "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)")
    probe = [bwrap, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-user", "--unshare-pid",
             "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--", "true"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return Isolation(False, f"bubblewrap could not run: {exc}")
    if result.returncode != 0:
        return Isolation(False, "bubblewrap cannot create namespaces here (unprivileged user namespaces "
                                f"disabled?): {result.stderr.strip()[:300]}")
    return Isolation(True, "bubblewrap jail in the grading's own namespaces", bwrap)


def in_grading_namespace() -> bool:
    return os.environ.get(NAMESPACE_MARKER) == "1"


@dataclass
class Jail:
    """How to run one candidate-facing program: what it may read and write, what it is told.

    `readable` and `writable` are host paths bound at the same place; the interpreter of
    `python` (its venv and base installation) is made readable automatically.
    """

    limits: Limits
    writable: list[Path] = field(default_factory=list)
    readable: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    network: bool = True  # share the grading's loopback (the emulator); False: no network at all
    python: Path | None = None

    def command(self, argv: list[str], isolation: Isolation | None = None) -> list[str]:
        """`argv` under the limits (util-linux `prlimit`, so no Python runs between fork and
        exec) and wrapped in bubblewrap (unwrapped when the grading runs unisolated)."""
        isolation = isolation or detect()
        prefix = limited([], self.limits)
        if not isolation.jailed:
            return [*prefix, *argv]
        args = [*prefix, isolation.bwrap or "bwrap", "--die-with-parent", "--new-session", "--unshare-user", "--unshare-pid",
                "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--clearenv"]
        if not self.network:
            args.append("--unshare-net")
        args += ["--ro-bind", "/usr", "/usr"]
        for name in _TOP_LEVEL_SYSTEM:
            top = Path("/") / name
            if top.is_symlink():
                args += ["--symlink", os.readlink(top), str(top)]
            elif top.is_dir():
                args += ["--ro-bind", str(top), str(top)]
        for name in _ETC_FILES:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp"]
        for path in _dedupe([*self._interpreter_paths(), *self.readable]):
            args += ["--ro-bind", str(path), str(path)]
        for path in _dedupe(self.writable):
            args += ["--bind", str(path), str(path)]
        for key, value in sorted(self.env.items()):
            args += ["--setenv", key, value]
        if self.cwd is not None:
            args += ["--chdir", str(self.cwd)]
        return [*args, "--", *argv]

    def environment(self) -> dict[str, str]:
        """The environment to start the command with (bubblewrap clears it inside the jail)."""
        return dict(self.env)


    def _interpreter_paths(self) -> list[Path]:
        python = Path(os.path.abspath(self.python or sys.executable))
        paths = [python.parent.parent]  # the venv (or installation) the interpreter belongs to
        config = python.parent.parent / "pyvenv.cfg"
        if config.is_file():
            for line in config.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home" and value.strip():
                    paths.append(Path(value.strip()).parent)  # the base installation
        paths.append(Path(os.path.realpath(python)).parent.parent)
        return [p for p in paths if p.exists() and not is_inside(p, Path("/usr"))]


def limited(argv: list[str], limits: Limits) -> list[str]:
    """`argv` under `limits` (address space, file size, tasks, no core files; inherited by
    everything it starts) and killed when the grader dies, through util-linux `prlimit` and
    `setpriv --pdeathsig` (no Python runs between fork and exec)."""
    prefix: list[str] = []
    setpriv = shutil.which("setpriv")
    if setpriv is not None and sys.platform.startswith("linux"):
        prefix += [setpriv, "--pdeathsig", "KILL", "--"]
    prlimit = shutil.which("prlimit")
    if prlimit is not None:
        address_space = "unlimited" if limits.memory_bytes is None else limits.memory_bytes
        prefix += [prlimit, f"--as={address_space}", f"--fsize={limits.file_bytes}",
                   f"--nproc={limits.processes}", "--core=0", "--"]
    return [*prefix, *argv]


@contextlib.contextmanager
def signals_deferred(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a jailed process is being created; deliver them after.

    A signal landing inside `Popen` loses the `Popen` object, so nothing would stop the process,
    and the grader could die before the child armed its parent-death signal (measured: an engine
    left running after a Ctrl-C during start). Only the main thread can swap handlers; elsewhere
    this does nothing (Python delivers signals to the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {signum: signal.signal(signum, lambda received, _frame: pending.append(received))
                for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in pending:
            signal.raise_signal(signum)


def sandbox_children(pid: int) -> list[int]:
    """Every descendant of `pid` (Linux /proc), nearest first."""
    found: list[int] = []
    queue = [pid]
    while queue:
        current = queue.pop(0)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                children = [int(c) for c in task.read_text().split()]
            except (OSError, ValueError):
                continue
            found.extend(children)
            queue.extend(children)
    return found


def adopt_orphans() -> None:
    """Make this process the reaper of its orphaned descendants (Linux PR_SET_CHILD_SUBREAPER).

    Bubblewrap's inner process arms its parent-death signal only after it is cloned (and loses it
    when it changes credentials): when the jail is killed in that window, it would be re-parented
    to init and outlive the grading (measured: 1 run in 3 with a Ctrl-C during the engine's start).
    Adopted, it stays findable by `kill_adopted`. Inside the grading namespace the grader is PID 1
    and adopts everything anyway."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def kill_adopted(marker: str) -> None:
    """SIGKILL and reap this process's children whose command line contains `marker` (a jail's
    private folder): what `adopt_orphans` kept of a jail killed while it started."""
    for pid in sandbox_children(os.getpid()):
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1] != str(os.getpid()):
                continue  # only direct children: a descendant dies with its jail
            if marker.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (OSError, ChildProcessError, IndexError):
            continue


# --- the grading namespace ------------------------------------------------------------


def grading_namespace_support() -> str | None:
    """None when `unshare` can make the grading's namespaces here, else why not."""
    if not sys.platform.startswith("linux"):
        return f"no namespaces on {sys.platform}"
    unshare = shutil.which("unshare")
    if unshare is None:
        return "util-linux `unshare` is not installed"
    try:
        result = subprocess.run(_unshare_prefix(unshare, network=True) + ["true"], capture_output=True, text=True,
                                timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unshare could not run: {exc}"
    if result.returncode != 0:
        return f"unshare cannot create user namespaces here: {result.stderr.strip()[:300]}"
    return None


def _unshare_prefix(unshare: str, network: bool) -> list[str]:
    return [unshare, "--user", "--map-current-user", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
            *(["--net"] if network else []), "--"]


def run_in_grading_namespace(payload: dict[str, Any], network: bool) -> int:
    """Run `python -m grader.isolated` (the grading) in its own namespaces; its exit status.

    `payload` is what the inner grading needs (JSON). `network` False keeps the host's network
    (a warehouse outside the machine's loopback); the report then says so. Ctrl-C and SIGTERM
    reach the inner grader, which stops in order and writes its report.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        raise SandboxError("util-linux `unshare` is not installed")
    fd, payload_path = tempfile.mkstemp(prefix="grade-payload-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
    env = dict(os.environ)
    env[NAMESPACE_MARKER] = "1"
    command = [*_unshare_prefix(unshare, network), sys.executable, "-m", "grader.isolated", payload_path]
    try:
        process = subprocess.Popen(command, env=env)
        forwarded = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def forward(signum: int, _frame: Any) -> None:
            for child in sandbox_children(process.pid)[:1] or [process.pid]:
                try:
                    os.kill(child, signum)
                except ProcessLookupError:
                    pass

        for sig in forwarded:
            signal.signal(sig, forward)
        try:
            return process.wait()
        finally:
            for sig, handler in forwarded.items():
                signal.signal(sig, handler)
    finally:
        os.unlink(payload_path)


def bring_loopback_up() -> None:
    """`ip link set lo up` without iproute2: a fresh network namespace starts with lo down."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def mount_tmpfs(path: Path, size_bytes: int) -> None:
    """A size-limited tmpfs over `path` (in the grading's own mount namespace): the disk budget."""
    libc = ctypes.CDLL(None, use_errno=True)
    options = f"size={size_bytes},mode=0700".encode()
    if libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", 0, options) != 0:
        errno = ctypes.get_errno()
        raise SandboxError(f"could not mount the work folder's tmpfs on {path}: {os.strerror(errno)}")


def _dedupe(paths: list[Path]) -> list[Path]:
    seen: list[Path] = []
    for path in paths:
        path = Path(os.path.abspath(path))
        if path not in seen:
            seen.append(path)
    return seen


def is_inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or under it, symlinks resolved on both sides."""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
        return True
    except ValueError:
        return False
