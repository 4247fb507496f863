"""First pipeline stage: read the candidate's git history, then copy the working tree to a
private directory that every later stage grades instead of the original.

The workspace is untrusted, so this stage only ever reads it and never lets its content
steer what runs or what gets opened:

* git never sees the candidate's ``.git/config`` (``core.fsmonitor``, filter drivers,
  ``include.path`` and friends would run commands or read files of the interviewer's).
  It runs against a private git dir holding copies of HEAD, refs and index, a config we
  write, and the original object store as an alternate. Index refreshes land in the copy.
* The copy walks with ``lstat`` semantics, never follows a symlink whose real path leaves
  the workspace, and never opens FIFOs or devices (an open would block forever).
* Everything is bounded: bytes and files copied, folder depth, entries read per folder,
  commits read, changed paths listed per commit and in all, findings kept. Each inode is
  copied once: a second path to it (a hard link, or a symlink inside the workspace) becomes
  a hard link in the copy, so a hundred links to one big file cost its size once. What a
  bound left out is counted in ``Snapshot.left_out`` and said in the findings.
"""

from __future__ import annotations

import hashlib
import os
import re
import select
import shutil
import stat
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

import git

from grader.ignored import DBT_OUTPUT_DIRS, TOOLING_DIRS

DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_FILES = 20_000
DEFAULT_MAX_DIRS = 20_000
# Deeper folders are not copied: nothing a dbt project needs is 64 folders down, and every
# later reader (dbt, the static checks, rmtree) stays far from recursion and PATH_MAX limits.
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_COMMITS = 500
# Changed paths listed per commit and over the whole history; the counts stay exact.
DEFAULT_MAX_FILES_PER_COMMIT = 100
DEFAULT_MAX_FILES_LISTED = 5_000
MAX_MESSAGE_CHARS = 2_000
MAX_YAML_BYTES = 1024 * 1024
# A dbt properties file that declares tests (a `tests:` or `data_tests:` key).
DBT_TESTS_KEY = re.compile(rb"^\s*(data_)?tests\s*:", re.MULTILINE)
MAX_AUTHOR_CHARS = 200
# Findings kept for the report; the rest are counted by kind.
MAX_FINDINGS = 200
# Reading the history stops here; commits not reached keep no file list.
HISTORY_TIME_LIMIT_S = 120.0

# The one list of folders that are not the candidate's work, by name.

_COPY_CHUNK = 1024 * 1024
# O_NONBLOCK: if a path turns out to be a FIFO, open() returns instead of hanging.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class SnapshotError(ValueError):
    """The workspace argument cannot be snapshotted at all (the CLI exits with 2)."""


@dataclass(frozen=True)
class SnapshotLimits:
    """How much of a workspace (and of its history) a snapshot takes at most."""

    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_files: int = DEFAULT_MAX_FILES
    max_dirs: int = DEFAULT_MAX_DIRS
    max_depth: int = DEFAULT_MAX_DEPTH
    max_commits: int = DEFAULT_MAX_COMMITS
    max_files_per_commit: int = DEFAULT_MAX_FILES_PER_COMMIT
    max_files_listed: int = DEFAULT_MAX_FILES_LISTED
    history_time_limit_s: float = HISTORY_TIME_LIMIT_S


@dataclass(frozen=True)
class Commit:
    sha: str
    author_time: str  # ISO-8601, UTC
    author: str
    message: str
    files: list[str]  # changed paths, sorted; at most max_files_per_commit of them
    files_total: int | None = None  # how many paths changed (None: not read, time limit)
    # Listed .yml/.yaml files whose content at this commit declares dbt tests: what
    # history.tests_early needs, read here because only this stage may read git.
    yaml_with_tests: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Snapshot:
    source: str
    root: Path
    commit: str | None
    branch: str | None
    dirty: bool
    commits: list[Commit]
    tree_sha256: str
    files: int
    bytes: int
    skipped_dirs: dict[str, int] = field(default_factory=dict)
    findings: list[dict[str, str]] = field(default_factory=list)
    # Findings beyond MAX_FINDINGS, by kind; and what the size limits kept out of the copy.
    findings_omitted: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Everything but ``root``: a private temp path would make reports differ per run."""
        return {
            "source": self.source,
            "commit": self.commit,
            "branch": self.branch,
            "dirty": self.dirty,
            "tree_sha256": self.tree_sha256,
            "files": self.files,
            "bytes": self.bytes,
            "skipped_dirs": dict(sorted(self.skipped_dirs.items())),
            "commits": [c.to_json() for c in self.commits],
            "findings": list(self.findings),
            "findings_omitted": dict(sorted(self.findings_omitted.items())),
            "left_out": dict(sorted(self.left_out.items())),
        }


def take_snapshot(workspace: Path, work_dir: Path, *, limits: SnapshotLimits = SnapshotLimits()) -> Snapshot:
    """Read history from ``workspace``, then copy its working tree to ``work_dir/workspace``.

    History is read first so that it describes the tree that gets copied.
    """
    ws = _resolve_workspace(workspace)
    root = _make_root(ws, Path(work_dir))
    findings = _Findings()
    history = _read_history(ws, limits, findings)
    copier = _Copier(ws, root, limits, findings)
    copier.run()
    return Snapshot(
        source=str(ws),
        root=root,
        commit=history.commit,
        branch=history.branch,
        dirty=history.dirty,
        commits=history.commits,
        tree_sha256=copier.tree_sha256(),
        files=copier.files,
        bytes=copier.bytes,
        skipped_dirs=dict(copier.skipped),
        findings=findings.kept,
        findings_omitted=dict(findings.omitted),
        left_out={key: value for key, value in copier.left_out.items() if value},
    )


def read_commits(workspace: Path, limits: SnapshotLimits = SnapshotLimits()) -> list[Commit]:
    """The history alone, read as take_snapshot reads it (for callers that hold a
    workspace but no snapshot of it)."""
    return _read_history(_resolve_workspace(workspace), limits, _Findings()).commits


def _resolve_workspace(workspace: Path) -> Path:
    path = Path(workspace)
    if not path.exists():
        raise SnapshotError(f"workspace does not exist: {path}")
    if not path.is_dir():
        raise SnapshotError(f"workspace is not a directory: {path}")
    return path.resolve(strict=True)


def _make_root(ws: Path, work_dir: Path) -> Path:
    """A fresh directory outside the workspace, so the copy can neither include itself nor
    write into the original."""
    root = work_dir.resolve() / "workspace"
    if root.is_relative_to(ws) or ws.is_relative_to(root):
        raise SnapshotError(f"work dir {work_dir} must be outside the workspace {ws}")
    try:
        root.mkdir(parents=True)
    except FileExistsError:
        raise SnapshotError(f"{root} already exists; use a fresh work dir") from None
    return root


class _Findings:
    """The first MAX_FINDINGS findings in the order met; the rest only counted by kind."""

    def __init__(self) -> None:
        self.kept: list[dict[str, str]] = []
        self.omitted: Counter[str] = Counter()

    def add(self, kind: str, path: str, detail: str, *, always: bool = False) -> None:
        """`always`: kept beyond the cap (the few findings that say what a limit left out)."""
        if always or len(self.kept) < MAX_FINDINGS:
            self.kept.append({"kind": kind, "path": _printable(path)[:1000], "detail": _printable(detail)[:1000]})
        else:
            self.omitted[kind] += 1


def _text(value: str | bytes) -> str:
    """Git metadata as text (gitpython gives bytes for a message it could not decode)."""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _printable(path: str) -> str:
    """Undecodable file-name bytes become U+FFFD so every report encoder accepts them."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


# --------------------------------------------------------------------------- history


@dataclass
class _History:
    commit: str | None = None
    branch: str | None = None
    dirty: bool = False
    commits: list[Commit] = field(default_factory=list)


class _UnsafeGitDir(Exception):
    """The .git directory has something that would make git read outside the workspace."""


# Files of a git dir that git needs for HEAD, branches, status and history. Everything
# else (config, hooks, logs, ...) stays behind.
_GITDIR_FILES = ("HEAD", "packed-refs", "index", "shallow", "info/exclude")


def _read_history(ws: Path, limits: SnapshotLimits, findings: _Findings) -> _History:
    """History of a git workspace; a plain folder, or a repo git cannot read, has none."""
    dot_git = ws / ".git"
    if not os.path.lexists(dot_git):
        return _History()
    with tempfile.TemporaryDirectory(prefix="snapshot-git-") as tmp:
        private = Path(tmp) / "git"
        try:
            _build_private_gitdir(dot_git, private, limits)
            return _query_history(private, ws, limits, findings)
        except _UnsafeGitDir as exc:
            findings.add("git_unsafe", ".git", f"history not read: {exc}")
        # A corrupt repo fails in many ways (git errors, gitpython parse errors, missing
        # files); all of them mean "no readable history", none should stop grading.
        except Exception as exc:  # noqa: BLE001
            findings.add("git_unreadable", ".git", _describe(exc, {str(private): ".git", str(ws): "."}))
    return _History()


def _describe(exc: Exception, replacements: dict[str, str]) -> str:
    """One deterministic line: no private temp paths, no multi-line command dumps."""
    text = str(exc)
    if isinstance(exc, git.GitCommandError) and exc.stderr:
        text = exc.stderr.strip().removeprefix("stderr:").strip().strip("'")
    text = " ".join(text.split())
    for old, new in replacements.items():
        text = text.replace(old, new)
    return f"{type(exc).__name__}: {text}"[:500]


def _build_private_gitdir(dot_git: Path, private: Path, limits: SnapshotLimits) -> None:
    """Copy the small mutable parts of the git dir; objects stay put and are borrowed.
    What gets copied is bounded like the working tree (files, bytes, depth)."""
    if not stat.S_ISDIR(os.lstat(dot_git).st_mode):
        raise _UnsafeGitDir(".git is a symlink or a gitfile (linked worktree, submodule)")
    for name in ("objects/info/alternates", "commondir"):
        if os.path.lexists(dot_git / name):
            raise _UnsafeGitDir(f".git/{name} may point outside the workspace")
    _check_plain_tree(dot_git / "objects", limits.max_depth)
    files, size = _check_plain_tree(dot_git / "refs", limits.max_depth)
    names = _GITDIR_FILES + tuple(p.name for p in dot_git.glob("sharedindex.*"))
    present = [dot_git / name for name in names if os.path.lexists(dot_git / name)]
    for src in present:
        _check_plain(src, stat.S_ISREG)
        size += os.lstat(src).st_size
    if files > limits.max_files or size > limits.max_total_bytes:
        raise _UnsafeGitDir(f"refs and index too large to read ({files} ref files, {size} bytes)")

    (private / "objects" / "info").mkdir(parents=True)
    (private / "objects" / "info" / "alternates").write_text(f"{dot_git / 'objects'}\n")
    shutil.copytree(dot_git / "refs", private / "refs")
    (private / "info").mkdir()
    for src in present:
        shutil.copyfile(src, private / src.relative_to(dot_git))
    (private / "config").write_text(_private_config(dot_git / "config"))


def _check_plain_tree(top: Path, max_depth: int) -> tuple[int, int]:
    """Only real directories and regular files, not too deep: no symlink out, no FIFO for
    git to hang on, no nesting that recursive copies choke on. Returns (files, bytes)."""
    _check_plain(top, stat.S_ISDIR)
    files = size = 0
    pending = [(str(top), 0)]
    while pending:
        folder, depth = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if depth >= max_depth:
                        raise _UnsafeGitDir(f"{top.name} in .git is nested more than {max_depth} folders deep")
                    pending.append((entry.path, depth + 1))
                elif entry.is_file(follow_symlinks=False):
                    files += 1
                    size += entry.stat(follow_symlinks=False).st_size
                else:
                    raise _UnsafeGitDir(f"{_printable(entry.name)} in .git is a symlink or special file")
    return files, size


def _check_plain(path: Path, is_kind: Callable[[int], bool]) -> None:
    """``path`` (inside the resolved .git) has no symlink in any component and is of the kind."""
    if os.path.realpath(path) != str(path) or not is_kind(os.lstat(path).st_mode):
        raise _UnsafeGitDir(f"{path.name} in .git is a symlink or of an unexpected type")


def _private_config(original: Path) -> str:
    """Our own config. Only a few settings that change how status reads files are carried
    over, and only as validated literals, so nothing of the candidate's lands in it."""
    core = {
        "bare": "false",
        "fsmonitor": "false",
        "untrackedCache": "false",
        "excludesFile": os.devnull,
        "attributesFile": os.devnull,
        "hooksPath": os.devnull,
    }
    object_format = "sha1"
    if os.path.lexists(original):
        _check_plain(original, stat.S_ISREG)
        parsed = git.GitConfigParser(str(original), read_only=True, merge_includes=False)
        for key in ("filemode", "symlinks", "ignorecase", "autocrlf"):
            value = parsed.get_value("core", key, "")
            if isinstance(value, bool) or (key == "autocrlf" and value == "input"):
                core[key] = str(value).lower()
        if parsed.get_value("extensions", "objectformat", "") == "sha256":
            object_format = "sha256"
    lines = ["[core]", f"repositoryformatversion = {0 if object_format == 'sha1' else 1}"]
    lines += [f"{key} = {value}" for key, value in core.items()]
    if object_format == "sha256":
        lines += ["[extensions]", "objectformat = sha256"]
    return "\n".join(lines) + "\n"


def _git_env(private: Path, ws: Path) -> dict[str, str]:
    return {
        "GIT_DIR": str(private),
        "GIT_WORK_TREE": str(ws),
        "GIT_INDEX_FILE": str(private / "index"),
        "GIT_OBJECT_DIRECTORY": str(private / "objects"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        # A workspace owned by another user (copied in, mounted) must not be refused as
        # "dubious ownership": the config git reads is ours, which is what that check guards.
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": "*",
        # refs/replace would let a repo present a history other than its real one.
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_TERMINAL_PROMPT": "0",
    }


def _query_history(private: Path, ws: Path, limits: SnapshotLimits, findings: _Findings) -> _History:
    env = _git_env(private, ws)
    ends = time.monotonic() + limits.history_time_limit_s
    with git.Repo(private) as repo:
        repo.git.update_environment(**env)
        branch = None if repo.head.is_detached else repo.active_branch.name
        dirty = _GitStream(["status", "--porcelain", "-z", "--untracked-files=normal", "--ignore-submodules=all"],
                           env, ends).any_output()
        if dirty is None:
            findings.add("history_time_limit", ".", "git status did not finish in time; counted as dirty")
        history = _History(branch=branch, dirty=dirty is not False)
        try:
            history.commit = repo.git.rev_parse("--quiet", "--verify", "HEAD")
        except git.GitCommandError as exc:
            if exc.status == 1:  # unborn branch: a repo without commits
                return history
            raise
        newest_first = list(repo.iter_commits(history.commit, max_count=limits.max_commits + 1, topo_order=True))
        if len(newest_first) > limits.max_commits:
            findings.add("history_truncated", ".git", f"only the newest {limits.max_commits} commits are listed")
        listed = _ChangedPaths(env, ends, limits, findings)
        history.commits = [_commit(c, listed) for c in reversed(newest_first[: limits.max_commits])]
        listed.report()
        return history


def _commit(commit: git.Commit, listed: _ChangedPaths) -> Commit:
    files, total = listed.of(commit)
    return Commit(
        sha=commit.hexsha,
        author_time=datetime.fromtimestamp(commit.authored_date, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        author=_printable(str(commit.author.name or ""))[:MAX_AUTHOR_CHARS],
        message=_printable(_text(commit.message).strip())[:MAX_MESSAGE_CHARS],
        files=files,
        files_total=total,
        yaml_with_tests=listed.yaml_with_tests(commit, files),
    )


class _ChangedPaths:
    """Paths each commit changed (root commit: against the empty tree; merges: against
    their first parent), listed up to the per-commit and overall caps and counted exactly.

    git computes the difference (`diff-tree`, one process per commit, so no path a
    candidate names can be mistaken for a commit header); its output is streamed, so a
    commit that touches a million paths costs time but not memory."""

    def __init__(self, env: dict[str, str], ends: float, limits: SnapshotLimits, findings: _Findings) -> None:
        self.env, self.ends, self.limits, self.findings = env, ends, limits, findings
        self.listed = 0
        self.unlisted = 0
        self.unread = 0
        self.failed = 0

    def of(self, commit: git.Commit) -> tuple[list[str], int | None]:
        if time.monotonic() >= self.ends:
            self.unread += 1
            return [], None
        base = [commit.parents[0].hexsha, commit.hexsha] if commit.parents else ["--root", commit.hexsha]
        room = max(0, min(self.limits.max_files_per_commit, self.limits.max_files_listed - self.listed))
        command = ["diff-tree", "-r", "-z", "--name-only", "--no-renames", "--no-commit-id", "--no-ext-diff",
                   "--no-textconv", *base]
        try:
            kept, total = _GitStream(command, self.env, self.ends).nul_separated(room)
        except git.GitCommandError:  # e.g. the parent of a shallow clone's oldest commit is absent
            self.failed += 1
            return [], None
        if total is None:
            self.unread += 1
            return [], None
        self.listed += len(kept)
        self.unlisted += total - len(kept)
        return sorted(_printable(os.fsdecode(path)) for path in kept), total

    def yaml_with_tests(self, commit: git.Commit, files: list[str]) -> list[str]:
        """Which of the listed YAML files declared dbt tests in this commit's tree (files
        larger than MAX_YAML_BYTES are not read)."""
        found = []
        for path in files:
            if not path.endswith((".yml", ".yaml")) or time.monotonic() >= self.ends:
                continue
            try:
                blob = commit.tree[path]
                if blob.type != "blob" or blob.size > MAX_YAML_BYTES:
                    continue
                text = blob.data_stream.read()
            except (KeyError, ValueError, OSError, git.GitCommandError):
                continue  # deleted in this commit, or a name git spells differently
            if DBT_TESTS_KEY.search(text):
                found.append(path)
        return found

    def report(self) -> None:
        if self.unlisted:
            self.findings.add("history_files_capped", ".git",
                              f"{self.unlisted} changed paths counted but not listed (at most "
                              f"{self.limits.max_files_per_commit} per commit, {self.limits.max_files_listed} in all)")
        if self.failed:
            self.findings.add("history_files_unreadable", ".git",
                              f"git could not list the changed paths of {self.failed} commits (shallow or damaged)")
        if self.unread:
            self.findings.add("history_time_limit", ".git",
                              f"changed paths of {self.unread} commits not read: reading the history took more "
                              f"than {self.limits.history_time_limit_s:g} s")


class _GitStream:
    """One git command whose output is read as it comes, and killed at the deadline."""

    def __init__(self, args: list[str], env: dict[str, str], ends: float) -> None:
        self.args, self.ends = args, ends
        # Only our git variables: none the grader inherited (GIT_DIR of a hook, GIT_EXTERNAL_DIFF...).
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | env
        self.timed_out = False

    def _run(self) -> Iterator[bytes]:
        """The output in chunks. Ends early (killing git) when the consumer stops or the
        deadline passes (then ``timed_out``); a failing git raises GitCommandError."""
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen([git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *self.args], env=self.env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
            assert proc.stdout is not None
            finished = False
            try:
                while True:
                    left = self.ends - time.monotonic()
                    if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
                        self.timed_out = True
                        return
                    chunk = os.read(proc.stdout.fileno(), _COPY_CHUNK)
                    if not chunk:
                        finished = True
                        break
                    yield chunk
            finally:
                if not finished:
                    proc.kill()
                proc.stdout.close()
                proc.wait()
            if proc.returncode:
                errors.seek(0)
                raise git.GitCommandError([*self.args], proc.returncode, errors.read(2000))

    def any_output(self) -> bool | None:
        """Whether the command printed anything (read no further); None at the deadline."""
        for _ in self._run():
            return True
        return None if self.timed_out else False

    def nul_separated(self, keep: int) -> tuple[list[bytes], int | None]:
        """The first `keep` NUL-terminated items and how many there were (None: deadline)."""
        kept: list[bytes] = []
        total, partial = 0, b""
        for chunk in self._run():
            items = (partial + chunk).split(b"\0")
            partial = items.pop()
            total += len(items)
            kept += items[: max(0, keep - len(kept))]
        return ([], None) if self.timed_out else (kept, total)


# --------------------------------------------------------------------------- copy


class _Copier:
    """Copies the working tree within the limits and accumulates counts, findings and the
    tree hash."""

    def __init__(self, ws: Path, root: Path, limits: SnapshotLimits, findings: _Findings) -> None:
        self.ws = ws
        self.root = root
        self.limits = limits
        self.findings = findings
        self.files = 0
        self.dirs = 0
        self.bytes = 0
        self.skipped: Counter[str] = Counter()
        # What the limits kept out: files and their bytes, folders (with what they hold unknown).
        self.left_out: Counter[str] = Counter()
        self._by_limit: Counter[str] = Counter()
        self._by_limit_bytes: Counter[str] = Counter()
        self._first_left_out: dict[str, str] = {}  # limit -> first path it kept out
        # (path, content marker) pairs in walk order, which is name order at every level.
        self._digest = hashlib.sha256()
        # Real directories already copied through a symlink; copying one a second time
        # through another link is refused so that chains of links cannot fan out exponentially.
        self._linked_dirs: set[str] = set()
        # (device, inode) of every source file copied -> (its copy, content marker): a second
        # path to the same file becomes a hard link to the first copy.
        self._copied: dict[tuple[int, int], tuple[Path, str]] = {}

    def run(self) -> None:
        """Iterative depth-first walk: a deeply nested tree cannot exhaust the Python stack.
        Each pending directory carries the real paths of its ancestors to detect loops."""
        pending: list[tuple[str, str, tuple[str, ...]]] = [(str(self.ws), "", (str(self.ws),))]
        while pending:
            real_dir, rel_dir, ancestors = pending.pop()
            try:
                entries = self._entries(real_dir, rel_dir)
            except OSError as exc:
                self.findings.add("unreadable", rel_dir or ".", exc.strerror or str(exc))
                continue
            dbt_project = any(e.name == "dbt_project.yml" and e.is_file(follow_symlinks=False) for e in entries)
            subdirs = []
            for entry in entries:  # name order: the limits keep the first files by name
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    subdir = self._entry(entry, rel, ancestors, dbt_project)
                    if subdir is not None and self._room_for_dir(rel, len(ancestors)):
                        os.mkdir(self.root / rel)
                        self.dirs += 1
                        subdirs.append((subdir, rel, ancestors + (subdir,)))
                except OSError as exc:
                    self.findings.add("unreadable", rel, exc.strerror or str(exc))
            pending.extend(reversed(subdirs))  # reversed: the stack then pops them in name order
        self._report_left_out()

    def _entries(self, real_dir: str, rel_dir: str) -> list[os.DirEntry[str]]:
        """The folder's entries in name order; a folder with more entries than the whole
        copy may hold is read only that far (in the file system's order)."""
        cap = self.limits.max_files + self.limits.max_dirs
        with os.scandir(real_dir) as it:
            entries = [entry for _, entry in zip(range(cap + 1), it)]
        if len(entries) > cap:
            entries.pop()
            self._leave_out("entries", rel_dir or ".", "folders")
        return sorted(entries, key=lambda e: e.name)

    def _room_for_dir(self, rel: str, depth: int) -> bool:
        if depth > self.limits.max_depth:
            self._leave_out("depth", rel, "folders")
            return False
        if self.dirs >= self.limits.max_dirs:
            self._leave_out("dirs", rel, "folders")
            return False
        return True

    def _leave_out(self, limit: str, rel: str, what: str, size: int = 0) -> None:
        self.left_out[what] += 1
        self.left_out["bytes"] += size
        self._by_limit[limit] += 1
        self._by_limit_bytes[limit] += size
        self._first_left_out.setdefault(limit, rel)

    def _report_left_out(self) -> None:
        """One finding per limit that was reached, with how much it kept out."""
        detail = {
            "depth": f"folders nested more than {self.limits.max_depth} deep are not copied",
            "dirs": f"more than {self.limits.max_dirs} folders: the rest are not copied",
            "entries": f"a folder holds more than {self.limits.max_files + self.limits.max_dirs} entries: "
                       "the rest are not read",
            "files": f"more than {self.limits.max_files} files: the rest are not copied",
            "total_bytes": f"more than {self.limits.max_total_bytes} bytes in all: the rest are not copied",
        }
        for limit, first in sorted(self._first_left_out.items()):
            count, size = self._by_limit[limit], self._by_limit_bytes[limit]
            amount = f"{count} left out" + (f", {size} bytes" if size else "")
            self.findings.add("limit_" + limit, first, f"{detail[limit]} ({amount}; the first here)", always=True)

    def _entry(self, entry: os.DirEntry[str], rel: str, ancestors: tuple[str, ...], dbt_project: bool) -> str | None:
        """Copy or record one entry; return the real path of a directory still to walk."""
        is_link = entry.is_symlink()
        if entry.name == ".git" or (
            (is_link or entry.is_dir(follow_symlinks=False))
            and (entry.name in TOOLING_DIRS or (dbt_project and entry.name in DBT_OUTPUT_DIRS))
        ):
            self.skipped[entry.name] += 1
            return None
        if is_link:
            return self._symlink(entry.path, rel, ancestors)
        if entry.is_dir(follow_symlinks=False):
            return entry.path
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISREG(st.st_mode):
            self._file(entry.path, rel, st)
        else:
            self.findings.add("special_file", rel, "FIFO, socket or device; not copied")
        return None

    def _symlink(self, link: str, rel: str, ancestors: tuple[str, ...]) -> str | None:
        """Links inside the workspace are materialised (a file becomes a copy of its target,
        a directory is walked as if it were real), which is what tools like dbt see.
        Links leaving it are recorded by their literal target and never opened."""
        target = os.readlink(link)
        real = os.path.realpath(link)
        if not Path(real).is_relative_to(self.ws):
            self.findings.add("symlink_outside", rel, f"points outside the workspace: {target}")
            return None
        try:
            st = os.stat(real)
        except OSError:
            self.findings.add("symlink_dangling", rel, f"target missing or a symlink loop: {target}")
            return None
        if stat.S_ISDIR(st.st_mode):
            if real in ancestors:
                self.findings.add("symlink_loop", rel, f"points to its own ancestor: {target}")
                return None
            if real in self._linked_dirs:
                self.findings.add("symlink_duplicate", rel, f"directory already copied through another link: {target}")
                return None
            self._linked_dirs.add(real)
            return real
        if stat.S_ISREG(st.st_mode):
            self._file(real, rel, st)
        else:
            self.findings.add("special_file", rel, f"symlink to a FIFO, socket or device: {target}")
        return None

    def _file(self, src: str, rel: str, st: os.stat_result) -> None:
        """Copy bytes as they are, each source inode once. Files kept out by a size limit
        enter the hash by name and size, so replacing one is still visible."""
        size = st.st_size
        if self.files >= self.limits.max_files:
            self._leave_out("files", rel, "files", size)
            self._hash(rel, f"size:{size}")
            return
        if (st.st_dev, st.st_ino) in self._copied:
            first, marker = self._copied[(st.st_dev, st.st_ino)]
            try:
                os.link(first, self.root / rel)
                self.files += 1
                self._hash(rel, marker)
                return
            except OSError:  # a file system without hard links, or one at its link limit: copy
                pass
        if size > self.limits.max_file_bytes:
            self.findings.add("file_too_large", rel, f"{size} bytes > limit {self.limits.max_file_bytes}; not copied")
            self._hash(rel, f"size:{size}")
            return
        room = self.limits.max_total_bytes - self.bytes
        if size > room:
            self._leave_out("total_bytes", rel, "files", size)
            self._hash(rel, f"size:{size}")
            return
        fd = os.open(src, _OPEN_FLAGS)
        with os.fdopen(fd, "rb") as source:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode):  # swapped for a FIFO since the scan
                self.findings.add("special_file", rel, "not a regular file when opened; not copied")
                return
            digest = hashlib.sha256()
            copied = 0
            dest = self.root / rel
            try:
                with open(dest, "xb") as out:
                    # Never more than the room left: a file growing while copied stops there.
                    while copied < room and (chunk := source.read(min(_COPY_CHUNK, room - copied))):
                        digest.update(chunk)
                        out.write(chunk)
                        copied += len(chunk)
            except OSError:  # a read error mid-file must not leave half a file in the copy
                dest.unlink(missing_ok=True)
                raise
        os.chmod(dest, 0o755 if opened.st_mode & stat.S_IXUSR else 0o644)
        marker = digest.hexdigest()
        self.files += 1
        self.bytes += copied
        self._hash(rel, marker)
        self._copied[(opened.st_dev, opened.st_ino)] = (dest, marker)

    def _hash(self, rel: str, marker: str) -> None:
        self._digest.update(os.fsencode(rel) + b"\0" + marker.encode() + b"\0")

    def tree_sha256(self) -> str:
        """sha256 over (path, content hash) pairs in walk order: independent of mtimes,
        ownership, permissions, the location of the workspace and of anything not copied."""
        return self._digest.hexdigest()
