"""`history.*`: how the candidate worked — commits over the session, when tests arrived,
and whether a written account of the traps and decisions exists.

Informational only (severity "info"): these signals inform rubric criteria and the
interviewer's discussion; they never decide a verdict alone.
"""

from __future__ import annotations

import re
import statistics
from datetime import datetime, UTC
from pathlib import Path, PurePosixPath

from checks.registry import CheckResult, check, result
from checks.static_context import StaticContext, read_text, walk_files

# The exercise's own handout: never counted as the candidate's writing.
HANDOUT_NAMES = {
    "exercise_instructions.md",
    "evaluation_rubric.md",
    "license",
    "license.md",
    "license.txt",
    "requirements.txt",
    "changelog.md",
}
INFO_PASS = 0.5
# Longest list of commits, files or sources a check puts in its evidence; the rest are counted.
MAX_LISTED = 100

_GENERIC_WORDS = {
    "wip",
    "update",
    "updates",
    "updated",
    "fix",
    "fixes",
    "fixed",
    "change",
    "changes",
    "changed",
    "stuff",
    "misc",
    "tmp",
    "temp",
    "test",
    "tests",
    "testing",
    "commit",
    "more",
    "minor",
    "small",
    "final",
    "done",
    "save",
    "saved",
    "work",
    "progress",
    "initial",
    "files",
    "file",
    "code",
    "again",
    "and",
    "the",
    "some",
    "a",
    "it",
    "this",
    "things",
    "edit",
    "edits",
    "cleanup",
    "asdf",
    "todo",
    "first",
    "second",
    "last",
    "new",
    "add",
    "added",
    "stuff.",
    "ok",
    "try",
    "attempt",
}


def _words(msg: str) -> list[str]:
    first = (msg or "").strip().splitlines()[0] if (msg or "").strip() else ""
    return re.findall(r"[a-z0-9_./-]+", first.lower())


def meaningful_message(msg: str) -> bool:
    """A commit subject that says what changed: 2+ words, not only generic words."""
    words = _words(msg)
    if len(words) < 2:
        return False
    return any(w.strip("./-") not in _GENERIC_WORDS and not w.isdigit() for w in words)


def _when(c: dict) -> datetime | None:
    t = c.get("author_time")
    if isinstance(t, datetime):
        return t if t.tzinfo else t.replace(tzinfo=UTC)
    try:
        d = datetime.fromisoformat(str(t).replace("Z", "+00:00"))
        return d if d.tzinfo else d.replace(tzinfo=UTC)
    except ValueError:
        return None


@check("history.commits", stage="history", needs=("history",), severity="info",
       title="Commits over the session: how many, how spaced, how many say what changed",
       why="Small commits with messages that say what changed show how the candidate worked through the session "
           "and make their reasoning reviewable; one commit at the end hides both. Informational: it informs the "
           "discussion and the debugging criterion, never a verdict alone.",
       fix="Commit each working step (a model, its tests, a fix) with a subject that names the change, e.g. "
           "\"stg_payments: keep the first delivery per event_id\", not \"wip\" or \"fix\".")
def commits(ctx: StaticContext) -> CheckResult:
    cs = ctx.commits
    times = [t for t in (_when(c) for c in cs) if t is not None]
    gaps = [(b - a).total_seconds() / 60 for a, b in zip(times, times[1:])]
    good = [c for c in cs if meaningful_message(c.get("message", ""))]
    share = len(good) / len(cs)
    span = (times[-1] - times[0]).total_seconds() / 60 if len(times) > 1 else 0.0
    score = 0.5 * min(1.0, len(cs) / 6) + 0.5 * share
    passed = len(cs) >= 3 and share >= 0.5
    weak = [
        c.get("message", "").strip().splitlines()[0][:80] if c.get("message", "").strip() else "(empty)"
        for c in cs
        if c not in good
    ]
    msg = (
        f"{len(cs)} commit(s) over {span:.0f} min; median gap "
        f"{statistics.median(gaps):.0f} min, max {max(gaps):.0f} min; "
        if gaps
        else f"{len(cs)} commit(s); "
    ) + f"{len(good)}/{len(cs)} meaningful messages"
    return result("pass" if passed else "fail", msg, score=score, evidence=dict(
        count=len(cs),
        span_minutes=round(span, 1),
        median_gap_minutes=round(statistics.median(gaps), 1) if gaps else None,
        max_gap_minutes=round(max(gaps), 1) if gaps else None,
        meaningful_share=round(share, 3),
        weak_messages=weak[:20],
        commits=[
            {
                "sha": c.get("sha", "")[:10],
                "time": c.get("author_time"),
                "message": (c.get("message") or "").strip().splitlines()[0][:100]
                if (c.get("message") or "").strip()
                else "",
                "files": _files_changed(c),
            }
            for c in cs[:MAX_LISTED]
        ],
        commits_omitted=max(0, len(cs) - MAX_LISTED),
    ))


def _files_changed(c: dict) -> int | None:
    """How many paths the commit changed (the snapshot lists only the first ones)."""
    return c["files_total"] if "files_total" in c else len(c.get("files") or [])


def _is_dbt_test_file(path: str) -> bool:
    p = PurePosixPath(path)
    parts = [x.lower() for x in p.parts]
    if p.suffix == ".sql" and ("tests" in parts or "data-tests" in parts or "data_tests" in parts):
        return True
    return False


def _yaml_with_tests(c: dict, files: list[str]) -> list[str]:
    """The commit's models YAML files that declared tests at that commit, as the snapshot
    read them (`yaml_with_tests`); never today's files, which say nothing about then."""
    at_commit = set(c.get("yaml_with_tests") or [])
    return [f for f in files if f in at_commit and f.endswith((".yml", ".yaml")) and "models" in PurePosixPath(f).parts]


def _handout_paths(ctx: StaticContext) -> frozenset[str]:
    """Paths of the handout's files (the starter as shipped, and any the pipeline named)."""
    def build() -> frozenset[str]:
        paths = set(ctx.starter_files)
        if ctx.starter_root is not None and Path(ctx.starter_root).is_dir():
            paths.update(p.relative_to(ctx.starter_root).as_posix()
                         for p in walk_files(Path(ctx.starter_root), (".yml", ".yaml", ".sql")))
        return frozenset(paths)

    return ctx.cached("history.handout_paths", build)


@check("history.tests_early", stage="history", needs=("history",), severity="info",
       title="dbt tests (schema or data tests) arrived while building, not only in the last quarter of the commits",
       why="Tests written beside the models catch the traps while the candidate still works on them; tests added "
           "at the very end were written to be shown, not used. Needs at least four commits to tell.",
       fix="Add the key, not_null, relationships and business-rule tests in the same commit as the model they "
           "protect (or the next), before moving on to the next layer.")
def tests_early(ctx: StaticContext) -> CheckResult:
    cs = ctx.commits
    if len(cs) < 4:
        return result("skipped", f"skipped: {len(cs)} commit(s) are too few to tell when tests arrived")
    touching: list[tuple[int, str, list[str]]] = []
    for i, c in enumerate(cs):
        files = [str(f) for f in c.get("files") or []]
        hits = [f for f in files if _is_dbt_test_file(f)] + _yaml_with_tests(c, files)
        if i == 0:  # the handout's own tests, imported with it, are not the candidate's
            hits = [f for f in hits if f not in _handout_paths(ctx)]
        if hits:
            touching.append((i, c.get("sha", "")[:10], hits))
    n = len(cs)
    cutoff = int(n * 0.75)  # commits with index >= cutoff are the last quarter
    ev = {
        "commits": n,
        "last_quarter_starts_at": cutoff + 1,
        "test_commits": [{"index": i + 1, "sha": s, "files": f[:8]} for i, s, f in touching[:MAX_LISTED]],
        "test_commits_omitted": max(0, len(touching) - MAX_LISTED),
    }
    if not touching:
        return result("fail", f"no commit among {n} adds dbt tests", evidence=ev)
    first = touching[0][0]
    early = first < cutoff
    share = len(touching) / n
    if early:
        return result("pass", f"first tests in commit {first + 1}/{n}; {len(touching)} commit(s) touch tests",
                      evidence=ev)
    return result(
        "fail",
        f"tests arrived only at the end: first in commit {first + 1}/{n} (share of commits touching tests {share:.0%})",
        score=0.5, evidence=ev,
    )


# Each trap of the exercise contract §2, with the words a written account of it would use.
TRAPS: dict[str, re.Pattern] = {
    "duplicates": re.compile(r"duplicat|de-?dup|replay|row_number|one row per event", re.I),
    "timezone": re.compile(r"time ?zone|america/new_york|new york|\bdst\b|daylight|tz-?naive|naive", re.I),
    "soft_delete": re.compile(r"soft[- ]?delet|deleted_at", re.I),
    "null_country": re.compile(
        r"country[^\n]{0,80}\b(null|missing|unknown|placeholder|coalesce|empty)\b|"
        r"\b(null|missing|unknown|placeholder|coalesce)\b[^\n]{0,80}country",
        re.I,
    ),
    "late_timestamps": re.compile(
        r"late[- ]arriv|future|clock[- ]skew|extraction time|"
        r"updated_at[^\n]{0,60}\b(after|ahead|beyond)\b",
        re.I,
    ),
    "currency": re.compile(r"currenc|exchange[_ ]rate|\bfx\b|usd_rate|to usd|in usd|conversion rate", re.I),
}


def _doc_sources(ctx: StaticContext) -> list[tuple[str, str]]:
    """(where, text) of everything the candidate wrote in prose: markdown/text docs, dbt
    model and column descriptions, and comments in model SQL."""
    out: list[tuple[str, str]] = []
    untouched = _unchanged_since_start(ctx)
    for p in ctx.docs_files:
        rel = ctx.rel(p)
        if p.name.lower() in HANDOUT_NAMES or rel in ctx.starter_files or rel in untouched:
            continue
        text = _own_text(ctx, read_text(p) or "")
        if text.strip():
            out.append((rel, text))
    m = ctx.manifest or {}
    project = ctx.project_name
    for n in (m.get("nodes") or {}).values():
        if n.get("resource_type") != "model" or (project and n.get("package_name") not in (None, project)):
            continue
        where = (n.get("patch_path") or "").split("://")[-1] or n.get("original_file_path") or ""
        if ctx.dbt_project_dir is not None and where:
            where = ctx.rel(ctx.dbt_project_dir / where)
        if (n.get("description") or "").strip():
            out.append((f"{where} (model {n.get('name')})", _own_text(ctx, n["description"])))
        for col in (n.get("columns") or {}).values():
            if (col.get("description") or "").strip():
                out.append((f"{where} ({n.get('name')}.{col.get('name')})", _own_text(ctx, col["description"])))
    for mid, mdoc in (
        (k, v) for k, v in (m.get("docs") or {}).items() if not project or v.get("package_name") in (None, project)
    ):
        if (mdoc.get("block_contents") or "").strip() and mdoc.get("name") != "__overview__":
            out.append((f"{mdoc.get('original_file_path', mid)} (docs block)", mdoc["block_contents"]))
    if ctx.dbt_project_dir is not None:
        for sql in walk_files(ctx.dbt_project_dir / "models", (".sql",)):
            text = read_text(sql) or ""
            comments = _own_text(ctx, "\n".join(re.findall(r"--[^\n]*|/\*.*?\*/|\{#.*?#\}", text, re.S)))
            if comments.strip():
                out.append((f"{ctx.rel(sql)} (SQL comments)", comments))
    return out


def _unchanged_since_start(ctx: StaticContext) -> set[str]:
    """Files of the first commit that no later commit touched (the handout as imported).
    Empty when a commit's list of files was capped: then no file is known to be untouched."""
    if len(ctx.commits) < 2 or any(_files_changed(c) != len(c.get("files") or []) for c in ctx.commits):
        return set()
    first = {str(f) for f in ctx.commits[0].get("files") or []}
    later: set[str] = set()
    for c in ctx.commits[1:]:
        later.update(str(f) for f in c.get("files") or [])
    return first - later


# Lines of the exercise's own README that name the traps (used when no pristine handout
# copy is given): a candidate's doc that merely keeps them has not written anything.
_HANDOUT_LINE = re.compile(
    r"^\|\s*(duplicate events|late-arriving data|timezone issues|soft deletes|missing data|multi-currency)\s*\||"
    r"^\s*-\s*\*\*(users|products|orders|payments)\*\*\s*-|"
    r"^\s*\d\.\s*\*\*(deduplication|data discovery|quality first|documentation|production thinking):\*\*",
    re.I,
)


def _handout_lines(ctx: StaticContext) -> set[str]:
    def build() -> set[str]:
        out: set[str] = set()
        if ctx.starter_root is not None and Path(ctx.starter_root).is_dir():
            for p in Path(ctx.starter_root).rglob("*"):
                if p.suffix.lower() in (".md", ".markdown", ".rst", ".txt", ".yml", ".yaml", ".sql"):
                    out.update(ln.strip() for ln in (read_text(p) or "").splitlines() if ln.strip())
        return out

    return ctx.cached("history.handout_lines", build)


def _handout_blob(ctx: StaticContext) -> str:
    def build() -> str:
        if ctx.starter_root is None or not Path(ctx.starter_root).is_dir():
            return ""
        parts = [
            read_text(p) or ""
            for p in sorted(Path(ctx.starter_root).rglob("*"))
            if p.suffix.lower() in (".md", ".markdown", ".rst", ".txt", ".yml", ".yaml", ".sql")
        ]
        return re.sub(r"\s+", " ", "\n".join(parts))

    return ctx.cached("history.handout_blob", build)


def _own_text(ctx: StaticContext, text: str) -> str:
    """The text with the handout's lines blanked (line numbers kept)."""
    handout = _handout_lines(ctx)
    blob = _handout_blob(ctx)
    flat = re.sub(r"\s+", " ", text).strip()
    if blob and len(flat) > 12 and flat in blob:
        return ""  # a description copied verbatim from the starter project
    return "\n".join("" if (ln.strip() in handout or _HANDOUT_LINE.search(ln)) else ln for ln in text.splitlines())


@check("history.decisions_doc", stage="history", severity="info",
       title="A written account of the traps and decisions exists and covers each trap (duplicates, timezone, "
             "soft deletes, NULL country, late timestamps, currency)",
       why="The panel and the next engineer need to know which data problems were found and what was decided "
           "about each; a fix nobody wrote down is rediscovered (or undone) later.",
       fix="Write docs/DECISIONS.md (or model and column descriptions) naming each trap found, how it is handled "
           "and why, e.g. \"payments: webhook replays share event_id; stg_payments keeps the first delivery\".")
def decisions_doc(ctx: StaticContext) -> CheckResult:
    sources = _doc_sources(ctx)
    coverage: dict[str, list[dict]] = {k: [] for k in TRAPS}
    for where, text in sources:
        lines = text.splitlines()
        for trap, rx in TRAPS.items():
            if len(coverage[trap]) >= 3:
                continue
            for i, line in enumerate(lines, 1):
                m = rx.search(line)
                if m:
                    coverage[trap].append(
                        {"where": where, "line": i, "matched": m.group(0), "text": line.strip()[:160]}
                    )
                    break
    covered = [k for k, v in coverage.items() if v]
    missing = [k for k, v in coverage.items() if not v]
    score = len(covered) / len(TRAPS)
    decision_files = [w for w, _ in sources if re.search(r"decision|adr|notes|readme|design|trap", w, re.I)]
    ev = {
        "covered": covered,
        "missing": missing,
        "matches": coverage,
        "sources": [w for w, _ in sources][:MAX_LISTED],
        "sources_omitted": max(0, len(sources) - MAX_LISTED),
        "decision_files": decision_files[:MAX_LISTED],
        "decision_files_omitted": max(0, len(decision_files) - MAX_LISTED),
    }
    if not sources:
        return result("fail", "no written account found (no docs changed by the candidate, no model descriptions)",
                      evidence=ev)
    return result(
        "pass" if score >= INFO_PASS else "fail",
        f"{len(covered)}/{len(TRAPS)} traps covered" + (f"; missing: {', '.join(missing)}" if missing else ""),
        score=score, evidence=ev,
    )
