"""What the static checks (lint.*, dag.*, history.*) read: the candidate's files, dbt's
manifest and compiled SQL, the DAG files and the commit history.

Nothing here executes candidate code: DAG files are read as text (the dag checks parse
them with `ast`), dbt models as text or from the manifest the grader's own dbt run wrote.

    ctx = StaticContext.build(root, dbt_project_dir, manifest, compiled_dir, commits)

`source_location(ctx, node, needle)` maps a finding to the candidate's original source
file and line (not only the compiled file), so the report can say `dbt/models/x.sql:12`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from grader.dbt_run import find_dbt_project

# Folders never searched for DAGs, docs or models (tooling, vendored packages, build output).
IGNORED_DIRS = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "env",
        ".tox",
        "node_modules",
        "__pycache__",
        "site-packages",
        "dbt_packages",
        "dbt_modules",
        "target",
        "logs",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".idea",
        ".vscode",
        "reports",
    }
)
DOC_SUFFIXES = (".md", ".markdown", ".rst", ".txt")
MAX_TEXT_BYTES = 2_000_000  # a candidate file larger than this is not read

_AIRFLOW_IMPORT = re.compile(r"^\s*(from|import)\s+airflow\b", re.MULTILINE)
_DAG_HINT = re.compile(r"\bDAG\s*\(|@dag\b|\bdag\s*\(", re.MULTILINE)


@dataclass
class StaticContext:
    root: Path
    dbt_project_dir: Path | None = None
    manifest: dict | None = None
    compiled_dir: Path | None = None
    dag_files: list[Path] = field(default_factory=list)
    commits: list[dict] = field(default_factory=list)
    docs_files: list[Path] = field(default_factory=list)
    # Relative paths of files known to be the exercise's own handout, unchanged by the
    # candidate (the pipeline may fill it); they never count as the candidate's writing.
    starter_files: frozenset[str] = frozenset()
    # A pristine copy of the exercise as handed out (optional): lines of the candidate's
    # docs that appear verbatim in the handout's docs are not the candidate's writing.
    starter_root: Path | None = None
    # Interpreter of a separate venv holding apache-airflow; only when set does
    # dag.airflow_import_errors run the candidate's DAGs (in a sandboxed subprocess).
    airflow_python: Path | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        root: Path | str,
        dbt_project_dir: Path | str | None = None,
        manifest: dict | None = None,
        compiled_dir: Path | str | None = None,
        commits: list[dict] | None = None,
        **extra: Any,
    ) -> "StaticContext":
        """Discover DAGs and docs under `root`; find the dbt project when not given.

        `commits=None` reads the history of `root` with gitpython when it is a git
        repository (an empty list otherwise); pass a list to use given commits."""
        root = Path(root).resolve()
        dbt_dir = Path(dbt_project_dir).resolve() if dbt_project_dir else find_dbt_project(root)
        if compiled_dir is None and dbt_dir is not None and manifest is not None:
            compiled_dir = find_compiled_dir(dbt_dir, manifest)  # beside the manifest it came with
        if commits is None:
            commits = load_commits(root)
        if "starter_root" not in extra:
            extra["starter_root"] = default_starter_root()
        return cls(
            root=root,
            dbt_project_dir=dbt_dir,
            manifest=manifest,
            compiled_dir=Path(compiled_dir).resolve() if compiled_dir else None,
            dag_files=discover_dag_files(root),
            commits=list(commits),
            docs_files=discover_docs(root),
            **extra,
        )

    # -- helpers shared by the checks -------------------------------------------------
    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute once per context (parsed SQL, DAG syntax trees, model index)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def rel(self, path: Path | str) -> str:
        """A path as the report shows it: relative to the workspace root when inside it."""
        p = Path(path)
        try:
            return p.resolve().relative_to(self.root).as_posix()
        except (ValueError, OSError):
            return p.as_posix()

    @property
    def project_name(self) -> str | None:
        if self.manifest:
            name = (self.manifest.get("metadata") or {}).get("project_name")
            if name:
                return name
        if self.dbt_project_dir is not None:
            return dbt_project_config(self.dbt_project_dir).get("name")
        return None


# -- discovery ------------------------------------------------------------------------


def _walk(root: Path, suffixes: tuple[str, ...]) -> Iterable[Path]:
    if not root.is_dir():
        return
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            entries = sorted(d.iterdir())
        except OSError:
            continue
        for p in entries:
            if p.is_symlink():
                continue  # never follow links out of the workspace copy
            if p.is_dir():
                if p.name not in IGNORED_DIRS and not p.name.startswith(".venv"):
                    stack.append(p)
            elif p.suffix.lower() in suffixes:
                yield p


def default_starter_root() -> Path | None:
    """The exercise as handed out, shipped beside the grader (environment/), if present."""
    here = Path(__file__).resolve().parents[1] / "environment"
    return here if here.is_dir() else None


def read_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def dbt_project_config(dbt_dir: Path) -> dict:
    import yaml

    text = read_text(dbt_dir / "dbt_project.yml")
    if not text:
        return {}
    try:
        data = yaml.safe_load(re.sub(r"\{\{.*?\}\}", "x", text))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def find_compiled_dir(dbt_dir: Path, manifest: dict | None) -> Path | None:
    name = ((manifest or {}).get("metadata") or {}).get("project_name") or dbt_project_config(dbt_dir).get("name")
    if not name:
        return None
    d = dbt_dir / "target" / "compiled" / str(name)
    return d if d.is_dir() else None


def load_manifest(path: Path | str) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def discover_dag_files(root: Path) -> list[Path]:
    """Python files in a `dags` folder, or anywhere that import airflow and define a DAG.

    Files are read as text only; nothing is imported."""
    out: list[Path] = []
    for p in _walk(root, (".py",)):
        rel_parts = p.relative_to(root).parts[:-1]
        if "dags" in rel_parts:
            out.append(p)
            continue
        if p.name.startswith("test_") or any(part in ("tests", "test") for part in rel_parts):
            continue
        text = read_text(p) or ""
        if _AIRFLOW_IMPORT.search(text) and _DAG_HINT.search(text):
            out.append(p)
    return sorted(out)


def discover_docs(root: Path) -> list[Path]:
    return sorted(_walk(root, DOC_SUFFIXES))


def load_commits(root: Path) -> list[dict]:
    """The repository's commits, oldest first, as {sha, author_time, author, message, files}.

    Empty when `root` is not a git repository (a plain folder workspace)."""
    if not (Path(root) / ".git").exists():
        return []
    try:
        import git

        repo = git.Repo(root)
        if not repo.head.is_valid():
            return []
        out = []
        for c in repo.iter_commits(rev="HEAD", reverse=True):
            out.append(
                {
                    "sha": c.hexsha,
                    "author_time": datetime.fromtimestamp(c.authored_date, tz=timezone.utc).isoformat(),
                    "author": str(c.author.name or c.author.email or ""),
                    "message": c.message.strip(),
                    "files": sorted(str(f) for f in c.stats.files),
                }
            )
        return out
    except Exception:  # a damaged repository is no history, not a crash
        return []


# -- locations --------------------------------------------------------------------------


def _needle_regex(needle: str | re.Pattern) -> re.Pattern:
    if isinstance(needle, re.Pattern):
        return needle
    parts = [re.escape(p) for p in needle.split()]
    return re.compile(r"\s+".join(parts), re.IGNORECASE)


def find_line(text: str, needle: str | re.Pattern, *, last: bool = False) -> tuple[int, str] | None:
    """1-based line of the first (or last) match of `needle` in `text`, and that line."""
    rx = _needle_regex(needle)
    matches = list(rx.finditer(text))
    if not matches:
        return None
    m = matches[-1] if last else matches[0]
    line = text.count("\n", 0, m.start()) + 1
    return line, text.splitlines()[line - 1].strip() if text.splitlines() else ""


def node_source_path(ctx: StaticContext, node: dict) -> Path | None:
    """The candidate's file behind a manifest node (or a model-index entry)."""
    if node.get("abs_path"):
        return Path(node["abs_path"])
    ofp = node.get("original_file_path") or node.get("path")
    if not ofp:
        return None
    base = ctx.dbt_project_dir or ctx.root
    return (base / ofp).resolve()


def compiled_path(ctx: StaticContext, node: dict) -> Path | None:
    """target/compiled/<project>/<original_file_path> of a model, when that file exists."""
    ofp = node.get("original_file_path")
    if ctx.compiled_dir is None or not ofp:
        return None
    p = ctx.compiled_dir / ofp
    return p if p.is_file() else None


def source_location(
    ctx: StaticContext, node: dict, needle: str | re.Pattern | None = None, *, last: bool = False
) -> tuple[str | None, int | None, str | None]:
    """(file relative to the workspace, line, snippet) of `needle` in the node's own source.

    Searches the original file first (raw SQL/YAML as the candidate wrote it), then the
    manifest's raw_code, then the compiled file. Without a needle, or when it is not found,
    the file is returned with line None."""
    path = node_source_path(ctx, node)
    rel = ctx.rel(path) if path else None
    if needle is None:
        return rel, None, None
    texts: list[tuple[str | None, str | None]] = []
    if path is not None:
        texts.append((rel, read_text(path)))
    texts.append((rel, node.get("raw_code")))
    cpath = compiled_path(ctx, node)
    if cpath is not None:
        texts.append((ctx.rel(cpath), read_text(cpath)))
    if node.get("compiled_code"):
        texts.append((f"{rel} (compiled)", node.get("compiled_code")))
    for where, text in texts:
        if not text:
            continue
        hit = find_line(text, needle, last=last)
        if hit:
            line, snippet = hit
            return where, line, snippet[:240]
    return rel, None, None
