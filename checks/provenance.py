"""What the candidate wrote versus what the exercise handed out.

The starter that environment/ ships (its dbt project, DAG, docs) passes some checks on its
own: its sources declare freshness, its DAG sets a schedule and catchup. Credit for those
belongs to nobody. Here each workspace file is compared (by content hash) with the starter
file at the same path; a static check whose subject files are all unchanged starter files is
marked `inherited` (the rubric counts it 0 and no level rests on it), and a finding pinned to
an unchanged starter file is marked `inherited` (the candidate left it, did not write it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable

from checks.static_context import IGNORED_DIRS, default_starter_root, discover_dag_files
from grader.dbt_run import find_dbt_project
from grader.resources import HANDOUT_DATA_DIRS

# Folders of a dbt project that hold the candidate's models, tests and macros.
DBT_CODE_DIRS = ("models", "macros", "tests", "snapshots", "analyses", "seeds")
DBT_CODE_SUFFIXES = (".sql", ".yml", ".yaml", ".py", ".csv", ".md")
MAX_HASHED_BYTES = 2_000_000
# Checks judged on the candidate's history or docs handle the handout themselves.
OWN_PROVENANCE = ("history.",)


def content_hash(path: Path) -> str | None:
    """sha256 of a text file with line endings and trailing whitespace normalised."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_HASHED_BYTES:
            return None
        text = path.read_bytes().replace(b"\r\n", b"\n")
    except OSError:
        return None
    return hashlib.sha256(b"\n".join(line.rstrip() for line in text.strip().split(b"\n"))).hexdigest()


@dataclass
class Provenance:
    """Which workspace files are the starter's, unchanged."""

    root: Path
    starter: dict[str, str]  # starter-relative path -> content hash

    @classmethod
    def of(cls, root: Path, starter_root: Path | None = None) -> Provenance:
        starter_root = starter_root or default_starter_root()
        hashes: dict[str, str] = {}
        if starter_root is not None:
            for path in _files(starter_root):
                digest = content_hash(path)
                if digest:
                    hashes[path.relative_to(starter_root).as_posix()] = digest
        return cls(Path(root).resolve(), hashes)

    def untouched(self, rel: str) -> bool:
        """The workspace file `rel` equals the starter's file at the same path (or at the
        same path below a folder the candidate nested the exercise in)."""
        path = self.root / rel
        parts = Path(rel).parts
        for start in range(len(parts)):
            candidate_rel = "/".join(parts[start:])
            if candidate_rel in self.starter:
                return content_hash(path) == self.starter[candidate_rel]
        return False

    def rel(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    def dbt_code(self) -> list[str]:
        project = find_dbt_project(self.root)
        if project is None:
            return []
        found = []
        for folder in DBT_CODE_DIRS:
            found += [self.rel(p) for p in _files(project / folder) if p.suffix.lower() in DBT_CODE_SUFFIXES]
        return sorted(found)

    def source_files(self) -> list[str]:
        """The dbt YAML files that declare sources."""
        return [rel for rel in self.dbt_code() if rel.endswith((".yml", ".yaml"))
                and "sources:" in ((self.root / rel).read_text(encoding="utf-8", errors="replace")
                                   if (self.root / rel).stat().st_size <= MAX_HASHED_BYTES else "")]

    def dag_files(self) -> list[str]:
        return [self.rel(p) for p in discover_dag_files(self.root)]


def _files(root: Path) -> list[Path]:
    if not root.is_dir() or root.is_symlink():
        return []
    out, stack = [], [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if entry.name not in IGNORED_DIRS and entry.name not in HANDOUT_DATA_DIRS:
                    stack.append(entry)
            elif entry.is_file():
                out.append(entry)
    return out


def _subject(check_id: str) -> Callable[[Provenance], list[str]] | None:
    """The files a check judges: a pass earns credit only when one of them is the candidate's."""
    if check_id.startswith(OWN_PROVENANCE):
        return None
    if check_id == "lint.source_freshness":
        return Provenance.source_files
    if check_id.startswith("dag."):
        return Provenance.dag_files
    if check_id.startswith("lint.") or check_id == "dbt.build":
        return Provenance.dbt_code
    return None


def mark_inherited(checks: list[dict[str, Any]], provenance: Provenance) -> list[dict[str, Any]]:
    """Mark, in place, checks and findings that rest only on unchanged starter files; return
    the list the report shows under `inherited`."""
    inherited: list[dict[str, Any]] = []
    subjects: dict[Callable[[Provenance], list[str]], list[str]] = {}
    for check in checks:
        subject = _subject(check["id"])
        if subject is None or check["status"] not in ("pass", "fail"):
            continue
        if subject not in subjects:
            subjects[subject] = subject(provenance)
        files = subjects[subject]
        findings = (check.get("evidence") or {}).get("findings") or []
        for finding in findings:
            if finding.get("file") and provenance.untouched(finding["file"]):
                finding["inherited"] = True
                inherited.append({"check": check["id"], "file": finding["file"], "line": finding.get("line"),
                                  "message": finding.get("message")})
        if files and all(provenance.untouched(f) for f in files):
            check["inherited"] = True
            check["inherited_files"] = files[:20]
            if check["status"] == "pass":
                where = ", ".join(files[:5])
                inherited.append({"check": check["id"], "file": None, "line": None,
                                  "message": f"passes only on the unchanged starter ({where}): no credit"})
    return inherited
