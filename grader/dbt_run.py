"""Run a candidate's (untrusted) dbt project against the grading warehouse.

The candidate's project is read for as little as possible (its profile name and its
declared packages); everything that decides where dbt connects and what it can see is
ours: our profiles.yml, a scrubbed environment, a private HOME, target and log folders
outside the candidate's tree, its own process group and a hard timeout.

`build()` runs `dbt seed` then `dbt build` and turns dbt's artifacts (run_results.json,
manifest.json) and its log into a `DbtRun` that the report and later checks use;
`rerun()` runs one more command for the checks that rebuild; `relation_of()` finds the
table a model really built. Every command of a grading goes to one `DbtSession`, a
long-lived dbt worker in the jail, so dbt starts once per grading, not once per command.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from collections.abc import Callable, Iterator

import yaml

from grader.engine_faults import explain as explain_engine_fault
from grader.sandbox import Jail, Limits, adopt_orphans, kill_adopted, signals_deferred

DEFAULT_PROFILE_NAME = "default"
TARGET_NAME = "grader"
SKIP_DIRS = frozenset({"dbt_packages", "target", ".venv", "node_modules", ".git"})
PACKAGE_FILES = ("packages.yml", "dependencies.yml")
LOG_TAIL_LINES = 40
PARSE_STATE = "partial_parse.msgpack"
WORKER = Path(__file__).with_name("dbt_worker.py")
TERM_GRACE_S = 5.0

Progress = Callable[[str], None]

# "12:00:01  3 of 12 OK created sql view model staging.stg_orders ....... [OK in 0.31s]"
_NODE_DONE = re.compile(r"^\S*\s*\d+ of (\d+) (?:OK|PASS|FAIL|WARN|ERROR|SKIP)\b")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")
_LOG_TIMESTAMP = re.compile(r"^\d\d:\d\d:\d\d(?:\.\d+)?\s+")

# dbt's per-node statuses (run and test) folded into the contract's five counts.
_COUNT_OF_STATUS = {
    "success": "pass",
    "pass": "pass",
    "fail": "fail",
    "warn": "warn",
    "error": "error",
    "runtime error": "error",
    "partial success": "error",
    "skipped": "skip",
    "no-op": "skip",
}


def find_dbt_project(root: Path) -> Path | None:
    """The candidate's dbt project folder: `root/dbt` by convention of the exercise,
    else the shallowest folder holding a dbt_project.yml (sorted, so the choice is
    deterministic). Tool folders (dbt_packages, target, virtualenvs, node_modules, .git)
    are skipped; symlinks are never followed: they could point outside the workspace."""
    conventional = root / "dbt"
    if not conventional.is_symlink() and _is_regular_file(conventional / "dbt_project.yml"):
        return conventional
    level = [root]
    while level:
        next_level: list[Path] = []
        for folder in level:
            if _is_regular_file(folder / "dbt_project.yml"):
                return folder
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            next_level.extend(
                Path(e.path)
                for e in entries
                if e.name not in SKIP_DIRS and e.is_dir(follow_symlinks=False)
            )
        level = next_level
    return None


def _is_regular_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def profile_name(project_dir: Path) -> str:
    """The profile name the candidate's dbt_project.yml asks for (the only thing we
    take from it for connections), or a default when absent, unreadable or not a plain
    name (a Jinja expression would be rendered by dbt in our profiles.yml)."""
    try:
        project = _read_yaml(project_dir / "dbt_project.yml")
    except (OSError, yaml.YAMLError):
        return DEFAULT_PROFILE_NAME
    name = project.get("profile") if isinstance(project, dict) else None
    return name if isinstance(name, str) and _PLAIN_NAME.fullmatch(name) else DEFAULT_PROFILE_NAME


def write_profile(
    profiles_dir: Path,
    project_dir: Path,
    endpoint: str,
    project: str = "marketplace-analytics",
    dataset: str = "staging",
    threads: int = 4,
    job_timeout_s: int = 300,
) -> Path:
    """Write OUR profiles.yml (target `grader`) under the candidate's profile name.

    oauth-secrets with a dummy token is the one method that neither looks for Google
    credentials nor calls Google's token endpoint; `api_endpoint` points the BigQuery
    client at the emulator. No retries: a failed query should fail, not be repeated.
    """
    profiles_dir.mkdir(parents=True, exist_ok=True)
    output = {
        "type": "bigquery",
        "method": "oauth-secrets",
        "token": "grader-dummy-token",
        "project": project,
        "dataset": dataset,
        "api_endpoint": endpoint,
        "location": "US",
        "threads": threads,
        "job_execution_timeout_seconds": job_timeout_s,
        "job_retries": 0,
    }
    profile = {profile_name(project_dir): {"target": TARGET_NAME, "outputs": {TARGET_NAME: output}}}
    path = profiles_dir / "profiles.yml"
    path.write_text(yaml.safe_dump(profile, sort_keys=True), encoding="utf-8")
    return path


def package_problems(project_dir: Path) -> list[str]:
    """Problems with the packages the project declares: `dbt deps` never runs (the
    grader is offline), so a declared package is usable only if the candidate's
    workspace already holds it in its packages install folder."""
    declared: list[tuple[str, str]] = []
    problems: list[str] = []
    for file_name in PACKAGE_FILES:
        path = project_dir / file_name
        if not _is_regular_file(path):
            continue
        try:
            content = _read_yaml(path)
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f"{file_name} unreadable: {exc}")
            continue
        entries = content.get("packages") if isinstance(content, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                declared.append(_package_kind_and_name(entry))
    if not declared:
        return problems
    installed = _installed_packages(project_dir)
    missing: dict[str, list[str]] = {}
    for kind, name in declared:
        if not {name, name.replace("-", "_")} & installed:
            missing.setdefault(kind, []).append(name)
    problems.extend(
        f"{kind} packages declared but unavailable offline: {', '.join(names)}"
        for kind, names in sorted(missing.items())
    )
    return problems


def _package_kind_and_name(entry: dict[str, Any]) -> tuple[str, str]:
    """("hub", "dbt_utils") for `dbt-labs/dbt_utils`; git/tarball/local by their last
    path segment, which is how they are usually named once installed."""
    for kind, key in (("hub", "package"), ("git", "git"), ("local", "local"), ("tarball", "tarball"), ("private", "private")):
        if key in entry:
            if kind == "tarball" and entry.get("name"):
                return kind, str(entry["name"])
            tail = str(entry[key]).rstrip("/").rsplit("/", 1)[-1]
            return kind, tail.removesuffix(".git")
    return "unknown", str(entry)


def _installed_packages(project_dir: Path) -> set[str]:
    install_path = "dbt_packages"
    try:
        project = _read_yaml(project_dir / "dbt_project.yml")
        if isinstance(project, dict) and isinstance(project.get("packages-install-path"), str):
            install_path = project["packages-install-path"]
    except (OSError, yaml.YAMLError):
        pass
    folder = project_dir / install_path
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if (p / "dbt_project.yml").is_file()}


@dataclass
class DbtInvocation:
    """One dbt command as run: what, how it ended, how long it took, its last log lines."""

    command: list[str]
    exit_code: int | None
    timed_out: bool
    duration_s: float
    log_path: Path
    log_tail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "command": " ".join(self.command),
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "duration_s": round(self.duration_s, 2),
        }


def dbt_executable() -> Path:
    """The dbt of the grader's own environment, never whatever `dbt` is on PATH."""
    return Path(sys.executable).parent / "dbt"


def private_paths(profiles_dir: Path) -> dict[str, Path]:
    """The private folder is the profiles folder: dbt's target, logs and HOME live in it,
    outside the candidate's tree."""
    return {
        "target": profiles_dir / "target",
        "logs": profiles_dir / "dbt-logs",
        "home": profiles_dir / "home",
    }


def scrubbed_env(profiles_dir: Path, env_extra: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment dbt gets: nothing of ours (no cloud credentials, tokens or
    config) can leak into a candidate's `env_var()` or into Google's client libraries."""
    home = private_paths(profiles_dir)["home"]
    env = {
        "PATH": os.pathsep.join([str(dbt_executable().parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
        "DBT_PROFILES_DIR": str(profiles_dir),
    }
    env.update(env_extra or {})
    return env


class DbtWorkerDied(RuntimeError):
    """The worker ended between commands or could not be sent one."""


class DbtSession:
    """Every dbt command of one grading, run by one long-lived worker (grader.dbt_worker).

    dbt's start-up (Python, dbt, the BigQuery client libraries) costs seconds that a dozen
    fresh `dbt` processes would pay a dozen times; the worker pays them once, and can pay them
    early (`start()`) while the grader loads the raw data. Each command still gets its own
    private folder, log and time limit: a command that runs out of time, or a worker that dies,
    ends that worker, and the next command starts a fresh one.

    The worker runs the candidate's Jinja and SQL, so it runs in a jail (grader.sandbox): it
    reads `readable_root` (the snapshot; default `project_dir`), writes only `work_dir` (every
    command's private folder lies under it), shares the grading's private loopback with the
    emulator, and has `limits` (memory, file size, processes). It runs in its own process
    group, so a timeout, a Ctrl-C or `close()` ends it and anything it started.
    """

    def __init__(self, project_dir: Path, work_dir: Path, endpoint: str | None = None,
                 readable_root: Path | None = None, limits: Limits | None = None) -> None:
        self.project_dir = project_dir.resolve()
        self.work_dir = work_dir.resolve()
        self.env_extra: dict[str, str] = {}
        if endpoint is not None:
            self.connect(endpoint)
        self.readable_root = readable_root or self.project_dir
        self.limits = limits or Limits()
        self.starts = 0  # workers started: more than one means a command timed out or dbt died
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending = b""
        self._unanswered = 0  # commands sent without waiting (parse_ahead)

    def connect(self, endpoint: str) -> None:
        """The warehouse the commands from now on talk to (it may start after the worker)."""
        self.env_extra = {"BIGQUERY_EMULATOR_HOST": endpoint}

    @property
    def parse_ahead_dir(self) -> Path:
        return self.work_dir / "parse-ahead"

    def parse_ahead(self) -> None:
        """Parse the project now, without waiting, while the warehouse starts: the first command
        then starts from this parse (dbt's partial parsing) instead of parsing every file.

        The warehouse's address is not part of what dbt's partial parsing compares (the profile's
        connection keys), so a profile naming no warehouse yet parses the same. A parse that
        fails leaves no state, and the first command parses again and reports the error itself.
        """
        write_profile(self.parse_ahead_dir, self.project_dir, "http://127.0.0.1:9")
        for folder in private_paths(self.parse_ahead_dir).values():
            folder.mkdir(parents=True, exist_ok=True)
        self.start()
        self._send(self._command_line(["parse"], self.parse_ahead_dir, reuse_parse=False),
                   self.parse_ahead_dir / "dbt-parse.log")
        self._unanswered += 1

    def parsed_state(self, deadline: float) -> Path | None:
        """The partial-parse state `parse_ahead` left, once its parse has ended (waited for until
        `deadline`; a parse still running then is stopped, and None returned)."""
        try:
            self.wait_ahead(deadline)
        except TimeoutError:
            self._stop_worker()
            return None
        state = private_paths(self.parse_ahead_dir)["target"] / PARSE_STATE
        return state if state.is_file() else None

    def __enter__(self) -> DbtSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the worker if none is running (it imports dbt in the background)."""
        if self._proc is not None and self._proc.poll() is None:
            return
        for folder in private_paths(self.work_dir).values():
            folder.mkdir(parents=True, exist_ok=True)
        jail = Jail(limits=self.limits, writable=[self.work_dir], readable=[self.readable_root, WORKER],
                    env=scrubbed_env(self.work_dir, self.env_extra), cwd=self.project_dir)
        adopt_orphans()
        with open(self.work_dir / "dbt-worker.log", "ab") as errors, signals_deferred():
            self._proc = subprocess.Popen(
                jail.command([sys.executable, "-I", str(WORKER)]),
                cwd=self.project_dir, env=jail.environment(),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, start_new_session=True,
            )
        self._pending = b""
        self.starts += 1

    def invoke(self, args: list[str], profiles_dir: Path, log_path: Path, timeout_s: float,
               on_line: Callable[[str], None] | None = None, reuse_parse: bool = False) -> DbtInvocation:
        """Run one dbt command (`["build"]`, `["seed"]`, ...; the isolation flags are added
        here) with `profiles_dir` as its private folder, its output in `log_path` (`on_line`
        sees each line as it comes, for progress), ended after `timeout_s`.

        `reuse_parse`: use the partial_parse.msgpack already in the private target folder
        (written by an earlier command on the same, unchanged copy of the project) instead of
        parsing every file again.
        """
        for folder in private_paths(profiles_dir).values():
            folder.mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_bytes(b"")
        command = self._command_line(args, profiles_dir, reuse_parse)
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        follower = _LogFollower(log_path, tail, on_line)
        started = time.monotonic()
        exit_code: int | None = None
        timed_out = False
        try:
            self.wait_ahead(started + timeout_s)
            self.start()
            follower.start()
            exit_code = self._run(command, log_path, started + timeout_s)
        except TimeoutError:
            timed_out = True
            self._stop_worker()
        except BaseException:  # Ctrl-C, or SIGTERM turned into SystemExit: dbt ends with us
            self._stop_worker()
            kill_adopted(str(self.work_dir))  # a jail killed while it started (see adopt_orphans)
            raise
        finally:
            follower.stop()
        if timed_out:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"\n[grader] dbt killed after the {round(timeout_s, 1):g} s timeout\n")
        return DbtInvocation(command=["dbt", *args], exit_code=exit_code, timed_out=timed_out,
                             duration_s=time.monotonic() - started, log_path=log_path, log_tail="".join(tail))

    def close(self) -> None:
        """End the worker: end of input first (it exits between commands), then its group."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=TERM_GRACE_S)
        self._stop_worker()

    def wait_ahead(self, deadline: float) -> None:
        """Wait for the commands sent ahead (parse_ahead) to end; TimeoutError at `deadline`."""
        while self._unanswered and self._proc is not None:
            try:
                while "exit_code" not in self._message(deadline):
                    pass
                self._unanswered -= 1
            except DbtWorkerDied:
                self._stop_worker()  # nothing is pending any more

    def _command_line(self, args: list[str], profiles_dir: Path, reuse_parse: bool) -> list[str]:
        return [
            *args,
            "--project-dir", str(self.project_dir),
            "--profiles-dir", str(profiles_dir),
            "--profile", profile_name(self.project_dir),
            "--target", TARGET_NAME,
            "--target-path", str(private_paths(profiles_dir)["target"]),
            "--log-path", str(private_paths(profiles_dir)["logs"]),
            "--no-use-colors",
            "--partial-parse" if reuse_parse else "--no-partial-parse",
            "--no-version-check",  # a require-dbt-version pinned to the candidate's laptop is no error here
        ]

    def _send(self, command: list[str], log_path: Path) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        proc.stdin.write(json.dumps({"args": command, "log": str(log_path), "env": self.env_extra}).encode() + b"\n")
        proc.stdin.flush()

    def _run(self, command: list[str], log_path: Path, deadline: float) -> int | None:
        """Send one command and wait for its exit code; None when the worker died (its own
        exit status, a signal's negative number, is then written to the log)."""
        proc = self._proc
        assert proc is not None
        try:
            self._send(command, log_path)
            while True:
                message = self._message(deadline)
                if "exit_code" in message:
                    return int(message["exit_code"])
        except (DbtWorkerDied, BrokenPipeError):
            status = proc.wait()
            self._stop_worker()
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"\n[grader] the dbt process ended unexpectedly (status {status})\n")
            return status if status != 0 else None

    def _message(self, deadline: float) -> dict[str, Any]:
        """The worker's next message; TimeoutError at `deadline`, DbtWorkerDied at its end."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise DbtWorkerDied("the dbt worker ended")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise DbtWorkerDied(f"the dbt worker said something unexpected: {line[:200]!r}") from exc
        return message if isinstance(message, dict) else {}

    def _stop_worker(self) -> None:
        self._unanswered = 0
        proc, self._proc = self._proc, None
        if proc is not None:
            _kill_group(proc)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()


class _LogFollower:
    """Reads a command's log as the worker writes it: each new line to `on_line` (progress)
    and to `tail` (the report's last lines). A failing `on_line` is dropped."""

    POLL_S = 0.2

    def __init__(self, path: Path, tail: deque[str], on_line: Callable[[str], None] | None) -> None:
        self.path, self.tail, self.on_line = path, tail, on_line
        self._offset = 0
        self._partial = ""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._done.set()
            self._thread.join(timeout=TERM_GRACE_S)
        self._read(final=True)

    def _follow(self) -> None:
        while not self._done.wait(self.POLL_S):
            self._read(final=False)

    def _read(self, final: bool) -> None:
        try:
            with open(self.path, "rb") as log:
                log.seek(self._offset)
                data = log.read()
        except OSError:
            return
        self._offset += len(data)
        lines = (self._partial + data.decode("utf-8", errors="replace")).split("\n")
        last = lines.pop()  # after the last newline: a line still being written
        self._partial = "" if final else last
        if final and last:
            lines.append(last)
        for line in lines:
            self.tail.append(line + "\n")
            if self.on_line is not None:
                try:
                    self.on_line(line + "\n")
                except Exception:
                    self.on_line = None


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM dbt's whole process group, then SIGKILL what is left after a grace period."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=TERM_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@dataclass
class NodeResult:
    """One executed dbt node (model, seed, snapshot, test, unit test) as the report shows it."""

    unique_id: str
    resource_type: str
    name: str
    status: str
    execution_time: float
    message: str | None
    failures: int | None
    relation_name: str | None
    compiled_path: str | None
    original_file_path: str | None
    engine_fault: str | None = None  # why the failure looks like the engine's, not the candidate's (engine_faults)

    def to_json(self) -> dict[str, Any]:
        return {
            "unique_id": self.unique_id,
            "resource_type": self.resource_type,
            "name": self.name,
            "status": self.status,
            "execution_time": round(self.execution_time, 3),
            "message": self.message,
            "failures": self.failures,
            "relation_name": self.relation_name,
            "original_file_path": self.original_file_path,
            "engine_fault": self.engine_fault,
        }


@dataclass
class DbtRun:
    """The outcome of `build()`: what the report's dbt section and dbt.build check need,
    plus the paths to the manifest and compiled SQL that static checks read later."""

    status: Literal["success", "error", "skipped"]
    project_dir: Path | None
    results: list[NodeResult] = field(default_factory=list)
    nodes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("pass", "fail", "error", "skip", "warn"), 0))
    invocations: list[DbtInvocation] = field(default_factory=list)
    timed_out: bool = False
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    manifest_path: Path | None = None
    compiled_dir: Path | None = None
    duration_s: float = 0.0
    versions: dict[str, str | None] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any] | None:
        """The manifest, loaded on demand (it can be megabytes)."""
        if self.manifest_path is None:
            return None
        return json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def to_json(self) -> dict[str, Any]:
        """The small form for report.json: no manifest, no compiled SQL."""
        return {
            "status": self.status,
            "nodes": dict(self.nodes),
            "results": [r.to_json() for r in self.results],
            "problems": list(self.problems),
            "error": self.error,
            "timed_out": self.timed_out,
            "duration_s": round(self.duration_s, 2),
            "invocations": [i.to_json() for i in self.invocations],
            "versions": dict(self.versions),
        }


def dbt_versions() -> dict[str, str | None]:
    """The dbt packages actually installed (the report's environment.versions)."""
    versions: dict[str, str | None] = {}
    for dist in ("dbt-core", "dbt-bigquery"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def build(
    project_dir: Path | None,
    warehouse_endpoint: str,
    work_dir: Path,
    timeout_s: float = 900,
    progress: Progress | None = None,
    project: str = "marketplace-analytics",
    readable_root: Path | None = None,
    limits: Limits | None = None,
    session: DbtSession | None = None,
) -> DbtRun:
    """Seed, then build, the candidate's project; `timeout_s` bounds both together.

    `dbt seed` runs first so that a seed problem is reported on its own; `dbt build`
    runs even when a seed failed, because only build's results show the whole DAG
    (what passed, what errored, what was skipped because of the seed). Build loads the
    seeds again, which costs little and keeps its results complete. When seed stopped
    before running any node (the project does not parse or compile, or the warehouse
    is unreachable) build is not run: it would stop the same way.

    `work_dir` is this run's private folder (profile, HOME, target, logs); its previous
    target/ is cleared so no stale artifact is read. `project_dir` None (no dbt project
    in the workspace) gives a "skipped" run. `session`: the grading's dbt worker (on
    `work_dir`); without one, a worker is started for these two commands.
    """
    versions = dbt_versions()
    if project_dir is None:
        return DbtRun(status="skipped", project_dir=None, problems=["no dbt_project.yml found in the workspace"], versions=versions)
    project_dir = project_dir.resolve()
    work_dir = work_dir.resolve()
    target = private_paths(work_dir)["target"]
    shutil.rmtree(target, ignore_errors=True)
    write_profile(work_dir, project_dir, warehouse_endpoint, project=project)
    run = DbtRun(status="error", project_dir=project_dir, problems=package_problems(project_dir), versions=versions)
    started = time.monotonic()
    build_step: DbtInvocation | None = None
    with _session(session, project_dir, work_dir, warehouse_endpoint, readable_root, limits) as dbt:
        dbt.connect(warehouse_endpoint)
        parsed = adopt_parse_state(dbt.parsed_state(started + timeout_s), target)  # parsed while the warehouse started
        for step in ("seed", "build"):
            (target / "run_results.json").unlink(missing_ok=True)
            _report(progress, f"dbt {step}")
            invocation = dbt.invoke([step], work_dir, work_dir / f"dbt-{step}.log",
                                    max(timeout_s - (time.monotonic() - started), 0.0),
                                    on_line=_progress_lines(progress, step),
                                    reuse_parse=step == "build" or parsed)
            run.invocations.append(invocation)
            if invocation.timed_out:
                run.timed_out = True
                run.problems.append(f"dbt {step} killed: the {timeout_s:g} s budget for seed and build was spent")
                break
            if step == "seed" and invocation.exit_code != 0:
                if not (target / "run_results.json").is_file():
                    run.problems.append("dbt stopped before running any node (see error); dbt build, which would "
                                        "stop the same way, was not run")
                    break
                run.problems.append(f"dbt seed failed (exit {invocation.exit_code}); dbt build was still run")
            if step == "build":
                build_step = invocation
    run.duration_s = time.monotonic() - started
    return _collect(run, target, completed=build_step is not None)


def rerun(project_dir: Path, warehouse_endpoint: str, work_dir: Path, args: list[str], timeout_s: float,
          label: str, project: str = "marketplace-analytics", readable_root: Path | None = None,
          limits: Limits | None = None, session: DbtSession | None = None,
          parse_state: Path | None = None) -> DbtRun:
    """One more dbt command (`["build"]` again, a selection, ...) on a project `build()`
    already ran: the rebuilding checks (idempotency, variant data, mutations) use it.

    It runs in its own private folder, `work_dir`/reruns/`label`, so the first build's
    manifest, compiled SQL and logs, which the report and static checks read, stay as
    they were. `session`: the grading's dbt worker (on `work_dir`), else a worker of its own.
    `parse_state`: the parse to start from (default: that of the build in `work_dir`).
    """
    project_dir = project_dir.resolve()
    private = work_dir.resolve() / "reruns" / label
    target = private_paths(private)["target"]
    shutil.rmtree(target, ignore_errors=True)
    write_profile(private, project_dir, warehouse_endpoint, project=project)
    # the project copy is unchanged since build(): start from its parse
    adopt_parse_state(parse_state or private_paths(work_dir.resolve())["target"] / PARSE_STATE, target)
    with _session(session, project_dir, work_dir.resolve(), warehouse_endpoint, readable_root, limits) as dbt:
        invocation = dbt.invoke(args, private, private / "dbt.log", timeout_s, reuse_parse=True)
    run = DbtRun(status="error", project_dir=project_dir, invocations=[invocation], versions=dbt_versions(),
                 timed_out=invocation.timed_out, duration_s=invocation.duration_s)
    if invocation.timed_out:
        run.problems.append(f"dbt {' '.join(args)} killed after the {round(timeout_s, 1):g} s timeout")
    return _collect(run, target, completed=not invocation.timed_out)


def adopt_parse_state(state: Path | None, target: Path) -> bool:
    """Copy a partial-parse state into a command's target folder; False when there is none."""
    if state is None or not state.is_file():
        return False
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(state, target / PARSE_STATE)
    return True


@contextlib.contextmanager
def _session(session: DbtSession | None, project_dir: Path, work_dir: Path, endpoint: str,
             readable_root: Path | None, limits: Limits | None) -> Iterator[DbtSession]:
    """The grading's worker when given (it must serve `work_dir`), else one for this call."""
    if session is not None:
        if session.work_dir != work_dir or session.project_dir != project_dir:
            raise ValueError(f"the dbt session serves {session.work_dir}, not {work_dir}")
        yield session
        return
    with DbtSession(project_dir, work_dir, endpoint, readable_root=readable_root, limits=limits) as own:
        yield own


def _collect(run: DbtRun, target: Path, completed: bool) -> DbtRun:
    """Fill `run` from what dbt left in `target` (manifest, run_results) and its log.

    `completed`: the command whose results count ran to its end; its run_results.json
    (removed before it started) is then the only one there. Without results the error
    dbt printed is kept instead (parse and compile errors write none).
    """
    manifest = _load_json(target / "manifest.json")
    if manifest is not None:
        run.manifest_path = target / "manifest.json"
        compiled = target / "compiled" / str(manifest.get("metadata", {}).get("project_name"))
        run.compiled_dir = compiled if compiled.is_dir() else None
    run_results = _load_json(target / "run_results.json") if completed else None
    if run_results is not None:
        run.results = _node_results(run_results, manifest or {})
        for result in run.results:
            run.nodes[_COUNT_OF_STATUS.get(result.status, "error")] += 1
    elif not run.timed_out:
        run.error = error_text(run.invocations[-1].log_path)
    if completed and all(i.exit_code == 0 for i in run.invocations):
        run.status = "success"
    return run


def _report(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _progress_lines(progress: Progress | None, step: str) -> Callable[[str], None] | None:
    """Turn dbt's "3 of 12 OK ..." lines into "dbt build (3/12 nodes)". Threads finish
    out of order, so the count is of lines seen, not dbt's own index."""
    if progress is None:
        return None
    done = 0

    def on_line(line: str) -> None:
        nonlocal done
        match = _NODE_DONE.match(line.strip())
        if match:
            done += 1
            progress(f"dbt {step} ({done}/{match.group(1)} nodes)")

    return on_line


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _node_results(run_results: dict[str, Any], manifest: dict[str, Any]) -> list[NodeResult]:
    """run_results joined with the manifest for each node's type, name and files."""
    nodes = manifest.get("nodes", {})
    results = []
    for r in run_results.get("results", []):
        uid = r.get("unique_id", "")
        node = nodes.get(uid, {})
        results.append(
            NodeResult(
                unique_id=uid,
                resource_type=node.get("resource_type") or uid.split(".", 1)[0],
                name=node.get("name") or uid.rsplit(".", 1)[-1],
                status=str(r.get("status")),
                execution_time=float(r.get("execution_time") or 0.0),
                message=r.get("message"),
                failures=r.get("failures"),
                relation_name=r.get("relation_name") or node.get("relation_name"),
                compiled_path=node.get("compiled_path"),
                original_file_path=node.get("original_file_path"),
                engine_fault=explain_engine_fault(r.get("message")) if r.get("status") in ("error", "runtime error") else None,
            )
        )
    return sorted(results, key=lambda n: n.unique_id)


def error_text(log_path: Path) -> str:
    """The error dbt printed when it stopped before running nodes (parse, compile,
    connection): from "Encountered an error" on, else the log's last lines."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    lines = [_LOG_TIMESTAMP.sub("", line) for line in lines]
    start = next((i for i, line in enumerate(lines) if line.startswith("Encountered an error")), None)
    chosen = lines[start + 1:] if start is not None else lines[-LOG_TAIL_LINES:]
    return "\n".join(line for line in chosen if line.strip()).strip()


def relation_of(manifest: dict[str, Any], model_name: str) -> str | None:
    """`project.dataset.table` a model (or snapshot) really built, whatever schema naming
    or alias the candidate used; the root project's node wins over a package's, the
    latest version over older ones. None when absent or ephemeral."""
    root = manifest.get("metadata", {}).get("project_name")
    candidates = [
        node
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") in ("model", "snapshot")
        and node.get("name") == model_name
        and node.get("config", {}).get("materialized") != "ephemeral"
        and node.get("version") == node.get("latest_version")
    ]
    if not candidates:
        return None
    node = sorted(candidates, key=lambda n: (n.get("package_name") != root, n.get("unique_id", "")))[0]
    table = node.get("alias") or node.get("name")
    return f"{node.get('database')}.{node.get('schema')}.{table}"
