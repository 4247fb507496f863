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
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

from grader.dbt_run import find_dbt_project
from grader.ignored import IGNORED_DIRS  # folders never searched for DAGs, docs or models

DOC_SUFFIXES = (".md", ".markdown", ".rst", ".txt")
MAX_TEXT_BYTES = 2_000_000  # a candidate file larger than this is not read
# SQL larger than this (compiled, or raw with its Jinja) is not parsed: the model gets a
# lint.models_analysed finding instead. The largest reference-solution model is under 10 KB.
MAX_SQL_BYTES = 512 * 1024
# Parsing one model's SQL may take this long (sqlglot is pure Python; 512 KB parse in ~3 s).
PARSE_TIME_LIMIT_S = 10.0
# Deeper sqlglot trees are not analysed: every walk over them (and sqlglot's own SQL
# generation) recurses per level.
MAX_TREE_DEPTH = 150
# Folders deeper than this below where a search starts are not searched (the snapshot
# copies at most 64 levels; tests and other callers may hand any folder).
MAX_WALK_DEPTH = 64

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
    # dag.airflow_loads run the candidate's DAGs (in a sandboxed subprocess).
    airflow_python: Path | None = None
    # Where (model file) -> why its SQL was not analysed (too large, too slow, too deep).
    not_analysed: dict[str, str] = field(default_factory=dict)
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
    ) -> StaticContext:
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

    def unmet_needs(self) -> dict[str, str]:
        """The catalogue's needs this context cannot meet, with why (read by run_check)."""
        return {} if self.commits else {"history": "skipped: the workspace has no git history"}

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


def walk_files(
    root: Path, suffixes: tuple[str, ...], skip: frozenset[str] = IGNORED_DIRS, max_depth: int = MAX_WALK_DEPTH
) -> list[Path]:
    """Files under `root` with one of the suffixes, sorted; folders named in `skip` and
    folders deeper than `max_depth` are not entered, symlinks never followed. Iterative, so
    no nesting of the candidate's can exhaust the stack (pathlib's rglob recurses)."""
    if not root.is_dir() or root.is_symlink():
        return []
    found = []
    stack = [(root, 0)]
    while stack:
        d, depth = stack.pop()
        try:
            entries = sorted(d.iterdir())
        except OSError:
            continue
        for p in entries:
            if p.is_symlink():
                continue  # never follow links out of the workspace copy
            if p.is_dir():
                if depth < max_depth and p.name not in skip and not p.name.startswith(".venv"):
                    stack.append((p, depth + 1))
            elif p.suffix.lower() in suffixes:
                found.append(p)
    return sorted(found)


def default_starter_root() -> Path | None:
    """The exercise as handed out (environment/, package data of the grader), if present."""
    from grader.resources import HANDOUT_DIR

    return HANDOUT_DIR if HANDOUT_DIR.is_dir() else None


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
    for p in walk_files(root, (".py",)):
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
    return walk_files(root, DOC_SUFFIXES)


def load_commits(root: Path) -> list[dict]:
    """The repository's commits, oldest first, as the snapshot stage reads them (never
    through the candidate's git config; bounded). Empty for a plain folder."""
    from grader.snapshot import read_commits

    return [c.to_json() for c in read_commits(Path(root))]


# -- bounded SQL analysis ----------------------------------------------------------------


class AnalysisTimeout(BaseException):
    """A time_limit() ran out. A BaseException, so that the `except Exception` of the code
    it interrupts (sqlglot turns errors into ParseError) cannot swallow it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise AnalysisTimeout in the block after `seconds` of wall time (SIGALRM, so only in
    the main thread; elsewhere the block runs unlimited and the static stage's own process
    limit is the guard). Pure-Python work such as sqlglot's parser is interrupted promptly."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise AnalysisTimeout(f"took more than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def within_size_limit(ctx: StaticContext, text: str, where: str) -> bool:
    """Whether `text` is small enough to analyse; records why not otherwise."""
    size = len(text.encode("utf-8", "surrogateescape"))
    if size <= MAX_SQL_BYTES:
        return True
    ctx.not_analysed.setdefault(where, f"{size} bytes of SQL > limit {MAX_SQL_BYTES}")
    return False


def parse_sql(ctx: StaticContext, sql: str, dialect: str, where: str) -> Any:
    """The last statement of `sql` as a sqlglot tree, or None when it does not parse. SQL
    too large, too slow to parse or nested too deep is not analysed (None, and the reason
    recorded in ctx.not_analysed under `where`)."""
    import sqlglot

    sql = sql.strip().rstrip(";").strip()
    if not sql or not within_size_limit(ctx, sql, where):
        return None
    try:
        with time_limit(PARSE_TIME_LIMIT_S):
            statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except AnalysisTimeout as exc:
        ctx.not_analysed.setdefault(where, f"parsing {exc}")
        return None
    except RecursionError:
        ctx.not_analysed.setdefault(where, "nested too deep to parse")
        return None
    except MemoryError:
        ctx.not_analysed.setdefault(where, "ran out of memory while parsing")
        return None
    except Exception:  # sqlglot raises several error types on unusual SQL
        return None
    if not statements:
        return None
    tree = statements[-1]  # pre-statements (DECLARE, SET) come first; the model is last
    if tree_depth(tree) > MAX_TREE_DEPTH:
        ctx.not_analysed.setdefault(where, f"SQL nested more than {MAX_TREE_DEPTH} levels deep")
        return None
    return tree


def tree_depth(tree: Any) -> int:
    """Depth of a sqlglot tree, measured without recursion."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_TREE_DEPTH:
            break
        for child in node.iter_expressions():
            stack.append((child, depth + 1))
    return deepest


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
