"""The dbt packages a candidate's project declares, installed before the build.

The build itself runs offline in the sandbox, so packages are put into the project's
`dbt_packages/` beforehand, outside it, from one of:

1. the workspace itself (the candidate committed `dbt_packages/`): used as it is;
2. the package cache (`~/.cache/de-exercise-grader/dbt-packages/<key>/`), which the
   interviewer fills in advance on a machine with a network:
       grade packages fetch WORKSPACE        (or: python -m grader.packages fetch WORKSPACE)
3. `dbt deps`, run here when it can succeed: the packages are local folders or git
   repositories on this disk, or the dbt hub / git host answers. Its result fills the cache.

When none works, `install` says why and which command fixes it; the pipeline marks the grading
incomplete and provisional (never a verdict on the candidate).

The cache key is the declared package list (local packages by their content), so two
workspaces declaring the same packages share one cache entry. Only `packages.yml` /
`dependencies.yml` entries are read; `dbt deps` runs in a scratch project of ours (never the
candidate's dbt_project.yml, whose Jinja would run here). Local packages must lie inside the
workspace: a path outside it is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PACKAGE_FILES = ("packages.yml", "dependencies.yml")
DEFAULT_CACHE = Path.home() / ".cache" / "de-exercise-grader" / "dbt-packages"
DEPS_TIMEOUT_S = 300.0
HUB_HOST = "hub.getdbt.com"
FETCH_COMMAND = "grade packages fetch {workspace}"


class PackageError(ValueError):
    """The declared packages cannot be read or are refused (the message says why)."""


@dataclass
class PackageInstall:
    """What `install` did: `source` is none / workspace / cache / dbt deps / unavailable."""

    source: str
    packages: list[str] = field(default_factory=list)
    problem: str | None = None
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None


def declared(project_dir: Path) -> list[dict[str, Any]]:
    """The package entries of packages.yml / dependencies.yml (empty when none is declared)."""
    entries: list[dict[str, Any]] = []
    for name in PACKAGE_FILES:
        path = project_dir / name
        if not path.is_file() or path.is_symlink():
            continue
        try:
            content = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise PackageError(f"{name} is unreadable: {exc}") from exc
        listed = content.get("packages") if isinstance(content, dict) else None
        if listed is None:
            continue
        if not isinstance(listed, list) or not all(isinstance(e, dict) for e in listed):
            raise PackageError(f"{name}: `packages` must be a list of mappings")
        entries.extend(listed)
    return entries


def install(project_dir: Path, workspace_root: Path, cache_root: Path = DEFAULT_CACHE, *,
            allow_deps: bool = True) -> PackageInstall:
    """Make the declared packages present in `project_dir`'s install folder (the grader's private copy)."""
    try:
        entries = declared(project_dir)
        if not entries:
            return PackageInstall("none")
        names = [_name(e) for e in entries]
        target = project_dir / _install_path(project_dir)
        if _all_installed(target, names):
            return PackageInstall("workspace", names)
        key = cache_key(entries, project_dir, workspace_root)
    except PackageError as exc:
        return PackageInstall("unavailable", problem=f"dbt packages: {exc}")
    cached = cache_root / key
    source = "cache"
    if not cached.is_dir() and allow_deps:
        reason = _unreachable(entries)
        if reason is not None:
            return PackageInstall("unavailable", names, _missing(names, reason, workspace_root))
        fetched = _fetch(entries, project_dir, workspace_root, cache_root, key)
        if not fetched.ok:
            return PackageInstall("unavailable", names, _missing(names, fetched.problem or "", workspace_root),
                                  fetched.log)
        source = "dbt deps"
    if not cached.is_dir():
        return PackageInstall("unavailable", names, _missing(names, "not in the package cache", workspace_root))
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(cached, target, symlinks=False)
    return PackageInstall(source, names)


def fetch(workspace: Path, cache_root: Path = DEFAULT_CACHE) -> PackageInstall:
    """`grade packages fetch WORKSPACE`: run `dbt deps` for the workspace's dbt project into the cache."""
    from grader.dbt_run import find_dbt_project

    project_dir = find_dbt_project(workspace)
    if project_dir is None:
        return PackageInstall("unavailable", problem=f"no dbt_project.yml found under {workspace}")
    try:
        entries = declared(project_dir)
        if not entries:
            return PackageInstall("none")
        key = cache_key(entries, project_dir, workspace)
    except PackageError as exc:
        return PackageInstall("unavailable", problem=f"dbt packages: {exc}")
    return _fetch(entries, project_dir, workspace, cache_root, key)


def prefetch(workspace: Path, cache_root: Path = DEFAULT_CACHE, progress: Any = None) -> PackageInstall | None:
    """Before the grading enters its network-less namespace: fill the cache for the workspace's
    declared packages when they are neither in the workspace nor cached yet. Never raises; a
    failure is reported by `install` inside the grading."""
    from grader.dbt_run import find_dbt_project

    project_dir = find_dbt_project(workspace)
    try:
        if project_dir is None:
            return None
        entries = declared(project_dir)
        if not entries or _all_installed(project_dir / _install_path(project_dir), [_name(e) for e in entries]) \
                or (cache_root / cache_key(entries, project_dir, workspace)).is_dir() or _unreachable(entries):
            return None
    except PackageError:
        return None
    if progress is not None:
        progress("installing the declared dbt packages (dbt deps)")
    return fetch(workspace, cache_root)


def cache_key(entries: list[dict[str, Any]], project_dir: Path, workspace_root: Path) -> str:
    """sha256 of the declared entries, local packages replaced by the digest of their files."""
    normalised = []
    for entry in entries:
        if "local" in entry:
            folder = _local_folder(entry, project_dir, workspace_root)
            normalised.append({"local": _tree_digest(folder)})
        else:
            normalised.append(entry)
    return hashlib.sha256(json.dumps(normalised, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _fetch(entries: list[dict[str, Any]], project_dir: Path, workspace_root: Path, cache_root: Path,
           key: str) -> PackageInstall:
    """Run `dbt deps` in a scratch project declaring `entries` (local paths made absolute); on
    success its dbt_packages/ (symlinks followed) becomes cache entry `key`."""
    names = [_name(e) for e in entries]
    with tempfile.TemporaryDirectory(prefix="dbt-deps-") as scratch_name:
        scratch = Path(scratch_name)
        try:
            resolved = [{**e, "local": str(_local_folder(e, project_dir, workspace_root))} if "local" in e else e
                        for e in entries]
            for entry in entries:
                _refuse_git_outside(entry, workspace_root)
        except PackageError as exc:
            return PackageInstall("unavailable", names, str(exc))
        (scratch / "dbt_project.yml").write_text(
            'name: grader_package_fetch\nversion: "1.0.0"\nconfig-version: 2\nprofile: none\n', encoding="utf-8")
        (scratch / "packages.yml").write_text(yaml.safe_dump({"packages": resolved}, sort_keys=False), encoding="utf-8")
        command = [str(Path(sys.executable).parent / "dbt"), "deps", "--project-dir", str(scratch),
                   "--no-use-colors", "--log-path", str(scratch / "logs")]
        env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(scratch), "LANG": "C.UTF-8",
               "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1",
               "GIT_TERMINAL_PROMPT": "0"}
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy"):
            if name in os.environ:
                env[name] = os.environ[name]
        try:
            done = subprocess.run(command, cwd=scratch, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=DEPS_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return PackageInstall("unavailable", names, f"`dbt deps` did not finish within {DEPS_TIMEOUT_S:g} s")
        log = (done.stdout + done.stderr)[-4000:]
        installed = scratch / "dbt_packages"
        if done.returncode != 0 or not installed.is_dir():
            return PackageInstall("unavailable", names, f"`dbt deps` failed (exit {done.returncode}): "
                                  f"{_last_error(log)}", log)
        cache_root.mkdir(parents=True, exist_ok=True)
        partial = cache_root / f"{key}.{os.getpid()}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(installed, partial, symlinks=False)
        final = cache_root / key
        if final.is_dir():  # another grading filled it meanwhile: same content
            shutil.rmtree(partial, ignore_errors=True)
        else:
            os.replace(partial, final)
    return PackageInstall("dbt deps", names, log=log)


def _unreachable(entries: list[dict[str, Any]]) -> str | None:
    """Why `dbt deps` cannot succeed here (a host it needs does not resolve), or None: spares the
    half minute dbt spends retrying an unreachable hub."""
    hosts = set()
    for entry in entries:
        if "package" in entry:
            hosts.add(HUB_HOST)
        for key in ("git", "tarball", "private"):
            url = entry.get(key)
            if isinstance(url, str) and "://" in url:
                host = urllib.parse.urlsplit(url).hostname
                if host:
                    hosts.add(host)
            elif isinstance(url, str) and "@" in url and ":" in url:  # git@github.com:org/repo.git
                hosts.add(url.split("@", 1)[1].split(":", 1)[0])
            elif key == "private" and isinstance(url, str):
                hosts.add("github.com")
    down = sorted(h for h in hosts if not _resolves(h))
    return f"no network here ({', '.join(down)} does not resolve)" if down else None


def _resolves(host: str, timeout: float = 3.0) -> bool:
    answer: list[bool] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, 443)
            answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


def _missing(names: list[str], reason: str, workspace_root: Path) -> str:
    return (f"dbt packages {', '.join(names)} missing: run `{FETCH_COMMAND.format(workspace=workspace_root)}` on a "
            f"machine with a network, then grade again ({reason})")


def _name(entry: dict[str, Any]) -> str:
    for key in ("package", "git", "local", "tarball", "private"):
        if key in entry:
            if key == "tarball" and entry.get("name"):
                return str(entry["name"])
            return str(entry[key]).rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    return json.dumps(entry, sort_keys=True, default=str)


def _install_path(project_dir: Path) -> str:
    try:
        project = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return "dbt_packages"
    path = project.get("packages-install-path") if isinstance(project, dict) else None
    if isinstance(path, str) and path and not Path(path).is_absolute() and ".." not in Path(path).parts:
        return path
    return "dbt_packages"


def _all_installed(target: Path, names: list[str]) -> bool:
    if not target.is_dir():
        return False
    present = {p.name for p in target.iterdir() if (p / "dbt_project.yml").is_file()}
    return all({n, n.replace("-", "_")} & present for n in names)


def _local_folder(entry: dict[str, Any], project_dir: Path, workspace_root: Path) -> Path:
    folder = (project_dir / str(entry["local"])).resolve()
    root = workspace_root.resolve()
    if folder != root and root not in folder.parents:
        raise PackageError(f"local package {entry['local']!r} lies outside the workspace: refused")
    if not (folder / "dbt_project.yml").is_file():
        raise PackageError(f"local package {entry['local']!r} has no dbt_project.yml")
    return folder


def _refuse_git_outside(entry: dict[str, Any], workspace_root: Path) -> None:
    """A git package on this disk (a path or file:// URL) must lie inside the workspace too."""
    url = entry.get("git")
    if not isinstance(url, str) or ("://" in url and not url.startswith("file://")) or ("@" in url and ":" in url):
        return
    path = Path(url.removeprefix("file://")).resolve()
    root = workspace_root.resolve()
    if path != root and root not in path.parents:
        raise PackageError(f"git package {url!r} is a repository on this disk outside the workspace: refused")


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1][:300]


def main(argv: list[str] | None = None) -> int:
    """`grade packages fetch WORKSPACE [--cache DIR]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="grade packages", description="Fill the dbt package cache the grader "
                                     "uses offline: run `dbt deps` for the workspace's declared packages.")
    parser.add_argument("action", choices=["fetch"])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"cache folder (default {DEFAULT_CACHE})")
    args = parser.parse_args(argv)
    if not args.workspace.is_dir():
        print(f"grade packages: {args.workspace}: not a directory", file=sys.stderr)
        return 2
    result = fetch(args.workspace, args.cache)
    if result.source == "none":
        print("no dbt packages declared: nothing to fetch")
        return 0
    if not result.ok:
        print(f"grade packages: {result.problem}", file=sys.stderr)
        return 3
    print(f"cached {', '.join(result.packages)} in {args.cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
