"""`lint.*`: static findings on the candidate's dbt models.

Sources of truth, in order: dbt's manifest (tests, docs, configs, lineage), the compiled
SQL (macros expanded; parsed with sqlglot, BigQuery dialect), and the raw model files with
Jinja replaced by placeholders (so `ref()`/`source()` stay visible). Rules that need the
manifest (tests, docs, freshness) are `skipped` when dbt could not parse the project;
rules that can read the .sql files still run.

Every finding points at the candidate's own file and line (`source_location`), never only
at target/compiled.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from checks.registry import CheckResult, Finding, check
from checks.static_context import (
    StaticContext,
    compiled_path,
    dbt_project_config,
    node_source_path,
    parse_sql,
    read_text,
    source_location,
    walk_files,
    within_size_limit,
)

DIALECT = "bigquery"

# Thresholds for the coverage-style results (status pass at or above).
COVERAGE_PASS = 0.5
# No incremental model at all: "full refreshes only" (rubric level 1 of incremental loading).
NO_INCREMENTAL_SCORE = 0.25
COLUMN_DOCS_PASS = 0.8

MART_FOLDERS = {"marts", "mart", "reporting"}
STAGING_FOLDERS = {"staging", "stg", "base"}
INTERMEDIATE_FOLDERS = {"intermediate", "int"}
LAYER_PREFIXES = {
    "staging": ("stg_", "base_"),
    "intermediate": ("int_",),
    "mart": ("fct_", "dim_"),
}
# Columns whose values differ between a payment event and its replays (contract §2).
PER_REPLAY_COLUMNS = {
    "id",
    "payment_id",
    "created_at",
    "event_timestamp",
    "_airbyte_raw_id",
    "_airbyte_extracted_at",
    "_airbyte_meta",
    "received_at",
    "ingested_at",
}
DST_ZONES = {
    "america/new_york",
    "us/eastern",
    "est5edt",
    "america/detroit",
    "america/toronto",
    "america/indiana/indianapolis",
}
_FIXED_ZONE = re.compile(r"^(utc|gmt|z|est|edt|etc/gmt[+-]?\d*|[+-]\d{1,2}(:?\d{2})?|utc[+-]\d.*)$", re.I)


# =====================================================================================
# Jinja → SQL with placeholders
# =====================================================================================

_JINJA_TOKEN = re.compile(r"\{#.*?#\}|\{%-?(.*?)-?%\}|\{\{-?(.*?)-?\}\}", re.S)
_REF_CALL = re.compile(r"^\s*ref\s*\(\s*(?:['\"][\w.-]+['\"]\s*,\s*)?['\"]([\w.-]+)['\"]\s*(?:,[^)]*)?\)\s*$", re.S)
_SOURCE_CALL = re.compile(r"^\s*source\s*\(\s*['\"]([\w.-]+)['\"]\s*,\s*['\"]([\w.-]+)['\"]\s*\)\s*$", re.S)
_BLOCK_DROP = {
    "set": "endset",
    "call": "endcall",
    "macro": "endmacro",
    "docs": "enddocs",
    "test": "endtest",
    "materialization": "endmaterialization",
    "snapshot": None,
}


@dataclass
class Stripped:
    sql: str
    placeholders: dict[str, str] = field(default_factory=dict)  # placeholder -> Jinja text


def _ident(s: str) -> str:
    return re.sub(r"\W", "_", s)


def strip_jinja(raw: str) -> Stripped:
    """Replace Jinja with SQL the parser accepts: ref('x') → __dbt_ref__x,
    source('s','t') → __dbt_source__s__t, {{ this }} → __dbt_this__, other
    expressions → __dbt_expr_N__; keep the first branch of if/else, drop set/call blocks."""
    out: list[str] = []
    placeholders: dict[str, str] = {}
    pos = 0
    skip_until: list[str] = []  # end tags of dropped blocks
    if_stack: list[bool] = []  # per open {% if %}: are we past its first branch?
    for m in _JINJA_TOKEN.finditer(raw):
        chunk = raw[pos : m.start()]
        pos = m.end()
        active = not skip_until and not any(if_stack)
        if active:
            out.append(chunk)
        tok = m.group(0)
        if tok.startswith("{#"):
            continue
        if tok.startswith("{%"):
            body = (m.group(1) or "").strip()
            word = body.split(None, 1)[0] if body else ""
            if skip_until:
                if word == skip_until[-1]:
                    skip_until.pop()
                elif word in _BLOCK_DROP and _BLOCK_DROP[word] and not (word == "set" and "=" in body):
                    skip_until.append(_BLOCK_DROP[word])
                continue
            if word == "if":
                if_stack.append(False)
            elif word in ("elif", "else") and if_stack:
                if_stack[-1] = True
            elif word == "endif" and if_stack:
                if_stack.pop()
            elif word in _BLOCK_DROP and _BLOCK_DROP[word] and not (word == "set" and "=" in body) and active:
                skip_until.append(_BLOCK_DROP[word])
            continue
        if not active:
            continue
        expr = (m.group(2) or "").strip()
        if r := _REF_CALL.match(expr):
            out.append(f"__dbt_ref__{_ident(r.group(1))}")
        elif s := _SOURCE_CALL.match(expr):
            out.append(f"__dbt_source__{_ident(s.group(1))}__{_ident(s.group(2))}")
        elif re.fullmatch(r"this(\.\w+)?", expr):
            out.append("__dbt_this__")
        else:
            before = re.sub(r"--[^\n]*|/\*.*?\*/", "", "".join(out), flags=re.S).rstrip()
            after = _JINJA_TOKEN.sub("", raw[pos:]).lstrip()
            is_call = "(" in expr
            if re.match(r"(config|log|print|do|set|return|exceptions\.\w+)\s*\(", expr):
                continue  # renders to nothing
            if is_call and (not before or before.endswith(";")) and after and after[0] not in ");":
                continue  # a macro call before the query (config-like, hooks, logging)
            name = f"__dbt_expr_{len(placeholders) + 1}__"
            placeholders[name] = tok
            if is_call and (not before or before.endswith(("(", ";"))) and (not after or after[0] in ");"):
                out.append(f"select * from {name}")  # a macro that returns a whole query
            else:
                out.append(name)
    if not skip_until and not any(if_stack):
        out.append(raw[pos:])
    return Stripped("".join(out), placeholders)


def _parse(ctx: StaticContext, mdl: Model, sql: str) -> exp.Expression | None:
    """The model's last statement (pre-statements such as DECLARE come first), bounded in
    size, time and depth (static_context.parse_sql)."""
    return parse_sql(ctx, sql, DIALECT, mdl.original_file_path)


# =====================================================================================
# The model index (manifest, or the .sql files when dbt could not parse)
# =====================================================================================


@dataclass
class Model:
    uid: str
    name: str
    original_file_path: str  # relative to the dbt project
    raw_code: str
    compiled_code: str | None
    config: dict
    refs: list[str]
    sources: list[tuple[str, str]]
    depends_on: list[str]
    columns: dict[str, dict]
    description: str
    node: dict  # the manifest node (or a synthetic one)
    layer: str | None = None  # staging | intermediate | mart | None
    folder_layer: str | None = None

    @property
    def materialized(self) -> str:
        return str(self.config.get("materialized") or "view")


def _folder_layer(path: str) -> str | None:
    parts = [p.lower() for p in Path(path).parts[:-1]]
    for p in reversed(parts):
        if p in STAGING_FOLDERS:
            return "staging"
        if p in INTERMEDIATE_FOLDERS:
            return "intermediate"
        if p in MART_FOLDERS:
            return "mart"
    return None


def _prefix_layer(name: str) -> str | None:
    for layer, prefixes in LAYER_PREFIXES.items():
        if name.lower().startswith(prefixes):
            return layer
    return None


_CONFIG_CALL = re.compile(r"\{\{-?\s*config\s*\((.*?)\)\s*-?\}\}", re.S)


def parse_config_call(raw: str) -> dict:
    """Literal keyword arguments of `{{ config(...) }}` in a model file (no Jinja is run)."""
    out: dict[str, Any] = {}
    for m in _CONFIG_CALL.finditer(raw):
        args = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnone\b", "None", m.group(1))))
        try:
            call = ast.parse(f"f({args})", mode="eval").body
        except SyntaxError:
            continue
        for kw in getattr(call, "keywords", []):
            if kw.arg is None:
                continue
            try:
                out[kw.arg] = ast.literal_eval(kw.value)
            except ValueError:
                out[kw.arg] = ast.unparse(kw.value)
    return out


def _models_from_manifest(ctx: StaticContext) -> list[Model]:
    m = ctx.manifest or {}
    project = ctx.project_name
    out = []
    for uid, n in (m.get("nodes") or {}).items():
        if n.get("resource_type") != "model":
            continue
        if project and n.get("package_name") not in (None, project):
            continue
        refs = []
        for r in n.get("refs") or []:
            if isinstance(r, dict):
                refs.append(r.get("name"))
            elif isinstance(r, (list, tuple)) and r:
                refs.append(r[-1])
        srcs = [tuple(s) for s in (n.get("sources") or []) if isinstance(s, (list, tuple)) and len(s) == 2]
        ofp = n.get("original_file_path") or n.get("path") or f"models/{n.get('name')}.sql"
        model = Model(
            uid=uid,
            name=n.get("name", uid.split(".")[-1]),
            original_file_path=ofp,
            raw_code=n.get("raw_code") or n.get("raw_sql") or "",
            compiled_code=n.get("compiled_code") or n.get("compiled_sql"),
            config=n.get("config") or {},
            refs=[r for r in refs if r],
            sources=srcs,  # type: ignore[misc]
            depends_on=list((n.get("depends_on") or {}).get("nodes") or []),
            columns={k.lower(): v for k, v in (n.get("columns") or {}).items()},
            description=(n.get("description") or "").strip(),
            node=n,
        )
        out.append(model)
    return out


_NOT_MODELS = frozenset({"dbt_packages", "target"})


def _models_from_files(ctx: StaticContext) -> list[Model]:
    d = ctx.dbt_project_dir
    if d is None:
        return []
    cfg = dbt_project_config(d)
    paths = cfg.get("model-paths") or cfg.get("source-paths") or ["models"]
    out = []
    for mp in paths:
        base = d / str(mp)
        if not base.is_dir():
            continue
        for f in walk_files(base, (".sql",), skip=_NOT_MODELS):
            if any(part in ("dbt_packages", "target") for part in f.parts):
                continue
            raw = read_text(f) or ""
            ofp = f.relative_to(d).as_posix()
            name = f.stem
            refs = re.findall(r"\bref\s*\(\s*(?:['\"][\w.-]+['\"]\s*,\s*)?['\"]([\w.-]+)['\"]", raw)
            srcs = re.findall(r"\bsource\s*\(\s*['\"]([\w.-]+)['\"]\s*,\s*['\"]([\w.-]+)['\"]", raw)
            node = {"original_file_path": ofp, "name": name, "raw_code": raw, "resource_type": "model"}
            out.append(
                Model(
                    uid=f"model.{cfg.get('name', 'project')}.{name}",
                    name=name,
                    original_file_path=ofp,
                    raw_code=raw,
                    compiled_code=None,
                    config=parse_config_call(raw),
                    refs=refs,
                    sources=[tuple(s) for s in srcs],
                    depends_on=[],
                    columns={},
                    description="",
                    node=node,
                )
            )
    return out


def models(ctx: StaticContext) -> list[Model]:
    def build() -> list[Model]:
        ms = _models_from_manifest(ctx) if ctx.manifest else _models_from_files(ctx)
        for mdl in ms:
            mdl.folder_layer = _folder_layer(mdl.original_file_path)
            mdl.layer = mdl.folder_layer or _prefix_layer(mdl.name)
        return sorted(ms, key=lambda x: x.original_file_path)

    return ctx.cached("lint.models", build)


def stripped(ctx: StaticContext, mdl: Model) -> Stripped:
    def build() -> Stripped:
        return strip_jinja(mdl.raw_code) if within_size_limit(ctx, mdl.raw_code, mdl.original_file_path) else Stripped("")

    return ctx.cached(f"lint.stripped:{mdl.uid}", build)


def analysis_sql(ctx: StaticContext, mdl: Model) -> tuple[str, str]:
    """(SQL, origin): the compiled SQL when dbt compiled the model, else the raw SQL with
    Jinja replaced by placeholders."""
    if mdl.compiled_code:
        return mdl.compiled_code, "compiled"
    cp = compiled_path(ctx, mdl.node)
    if cp is not None:
        text = read_text(cp)
        if text:
            return text, "compiled"
    return stripped(ctx, mdl).sql, "raw"


def parsed(ctx: StaticContext, mdl: Model) -> exp.Expression | None:
    """The model's SQL as a sqlglot tree (compiled when available; raw as a fallback)."""

    def build() -> exp.Expression | None:
        sql, origin = analysis_sql(ctx, mdl)
        tree = _parse(ctx, mdl, sql)
        if tree is None and origin == "compiled":
            tree = _parse(ctx, mdl, stripped(ctx, mdl).sql)
        return tree

    return ctx.cached(f"lint.parsed:{mdl.uid}", build)


def parsed_raw(ctx: StaticContext, mdl: Model) -> exp.Expression | None:
    return ctx.cached(f"lint.parsed_raw:{mdl.uid}", lambda: _parse(ctx, mdl, stripped(ctx, mdl).sql))


def marts(ctx: StaticContext) -> list[Model]:
    return [m for m in models(ctx) if m.layer == "mart"]


# =====================================================================================
# Shared result helpers
# =====================================================================================


def _finding(ctx: StaticContext, mdl: Model | dict, message: str, needle: Any = None, *, last: bool = False) -> Finding:
    node = mdl.node if isinstance(mdl, Model) else mdl
    file, line, snippet = source_location(ctx, node, needle, last=last)
    return Finding(message=message, file=file, line=line, snippet=snippet)


def _result(check_id: str, status: str, score: float, message: str, **evidence: Any) -> CheckResult:
    return CheckResult(check_id, status, max(0.0, min(1.0, score)), message, evidence=evidence)  # type: ignore[arg-type]


def _per_model_result(
    check_id: str, findings: list[Finding], total: int, what: str, extra: dict | None = None
) -> CheckResult:
    """A pass/fail per model result whose score is the share of models without findings."""
    failing = len({f.file for f in findings})
    score = 1.0 if total == 0 else (total - failing) / total
    ev: dict[str, Any] = {"models_checked": total, "findings": [f.to_json() for f in findings]}
    ev.update(extra or {})
    if not findings:
        return _result(check_id, "pass", 1.0, f"no findings ({total} {what} checked)", **ev)
    return _result(check_id, "fail", score, f"{len(findings)} finding(s): {findings[0].message}", **ev)


def _needs_manifest(check_id: str, ctx: StaticContext) -> CheckResult | None:
    if ctx.manifest:
        return None
    return _result(
        check_id,
        "skipped",
        0.0,
        "skipped: dbt could not parse the project, so there is no manifest to read "
        "tests, docs and configs from (see the dbt.build check)",
    )


def _no_project(check_id: str, ctx: StaticContext) -> CheckResult | None:
    if models(ctx):
        return None
    return _result(check_id, "skipped", 0.0, "skipped: no dbt models found in the workspace")


def is_handout_model(ctx: StaticContext, mdl: Model) -> bool:
    """A model shipped with the exercise and left unchanged (same file in the handout copy)."""
    if ctx.starter_root is None:
        return False
    path = node_source_path(ctx, mdl.node)
    if path is None:
        return False
    rel = ctx.rel(path)
    starter = Path(ctx.starter_root) / rel
    if not starter.is_file():
        return False
    return (read_text(starter) or "").strip() == (read_text(path) or "").strip()


def candidate_models(ctx: StaticContext) -> list[Model]:
    """The models the candidate wrote or changed (handout models left as given are not theirs)."""
    return ctx.cached("lint.candidate_models", lambda: [m for m in models(ctx) if not is_handout_model(ctx, m)])


def _no_candidate_models(check_id: str, ctx: StaticContext) -> CheckResult | None:
    if candidate_models(ctx):
        return None
    return _result(
        check_id,
        "fail",
        0.0,
        "no models besides the unchanged ones handed out with the exercise",
        models=[m.name for m in models(ctx)],
    )


def _no_marts(check_id: str, ctx: StaticContext) -> CheckResult | None:
    if marts(ctx):
        return None
    return _result(
        check_id,
        "fail",
        0.0,
        "no mart models found (fct_*/dim_* or models under marts/)",
        models=[m.name for m in models(ctx)],
    )


def _col_name(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Column):
        return node.name.lower()
    return None


def _columns_in(node: exp.Expression) -> set[str]:
    return {c.name.lower() for c in node.find_all(exp.Column) if c.name}


# =====================================================================================
# SQL shape helpers
# =====================================================================================


def _ctes(tree: exp.Expression) -> dict[str, exp.Expression]:
    out = {}
    for cte in tree.find_all(exp.CTE):
        if cte.alias:
            out[cte.alias.lower()] = cte.this
    return out


def _branches(q: exp.Expression) -> list[exp.Select]:
    if isinstance(q, exp.Select):
        return [q]
    if isinstance(q, exp.SetOperation):
        return _branches(q.left) + _branches(q.right)
    if isinstance(q, exp.Subquery):
        return _branches(q.this)
    return []


def _from_sources(sel: exp.Select) -> list[exp.Expression]:
    out = []
    f = sel.args.get("from") or sel.args.get("from_")
    if f is not None:
        out.append(f.this)
    for j in sel.args.get("joins") or []:
        out.append(j.this)
    return out


def _source_alias(src: exp.Expression) -> str:
    return (src.alias_or_name or "").lower()


def _leaking_star(sel: exp.Select, ctes: dict[str, exp.Expression], seen: set[int]) -> exp.Expression | None:
    """A `*` in this select whose columns come straight from a physical relation
    (through CTEs and subqueries that also select *)."""
    if id(sel) in seen:
        return None
    seen.add(id(sel))
    for proj in sel.expressions:
        qualifier = None
        if isinstance(proj, exp.Star):
            pass
        elif isinstance(proj, exp.Column) and isinstance(proj.this, exp.Star):
            qualifier = (proj.table or "").lower() or None
        else:
            continue
        for src in _from_sources(sel):
            if qualifier and _source_alias(src) != qualifier:
                continue
            if isinstance(src, exp.Unnest):
                continue
            if isinstance(src, exp.Subquery):
                for b in _branches(src.this):
                    if _leaking_star(b, ctes, seen) is not None:
                        return proj
                continue
            if isinstance(src, exp.Table):
                name = src.name.lower()
                if not src.args.get("db") and name in ctes:
                    for b in _branches(ctes[name]):
                        if _leaking_star(b, ctes, seen) is not None:
                            return proj
                    continue
                return proj
    return None


def output_columns(tree: exp.Expression | None) -> list[str] | None:
    """Names of the model's output columns, resolved through `select * from <cte>`;
    None when a star reaches a physical relation."""
    if tree is None:
        return None
    ctes = _ctes(tree)

    def cols(q: exp.Expression, depth: int) -> list[str] | None:
        branches = _branches(q)
        if not branches or depth > 20:
            return None
        sel = branches[0]
        out: list[str] = []
        for proj in sel.expressions:
            if isinstance(proj, exp.Star) or (isinstance(proj, exp.Column) and isinstance(proj.this, exp.Star)):
                srcs = _from_sources(sel)
                if len(srcs) != 1 or not isinstance(srcs[0], (exp.Table, exp.Subquery)):
                    return None
                s = srcs[0]
                if isinstance(s, exp.Subquery):
                    inner = cols(s.this, depth + 1)
                elif not s.args.get("db") and s.name.lower() in ctes:
                    inner = cols(ctes[s.name.lower()], depth + 1)
                else:
                    inner = None
                if inner is None:
                    return None
                out.extend(inner)
            else:
                name = proj.alias_or_name
                if name:
                    out.append(name.lower())
        return out

    return cols(tree, 0)


def _pretty(sql: str) -> str:
    """Placeholders back to the Jinja the candidate wrote."""
    sql = re.sub(r"__dbt_source__(\w+?)__(\w+)", r"source('\1', '\2')", sql)
    sql = re.sub(r"__dbt_ref__(\w+)", r"ref('\1')", sql)
    return sql.replace("__dbt_this__", "this")


def _relation_regex(parts: list[str]) -> re.Pattern:
    inner = r"`?\s*\.\s*`?".join(re.escape(p) for p in parts)
    return re.compile(r"`?" + inner + r"`?", re.I)


# =====================================================================================
# Tests in the manifest
# =====================================================================================


@dataclass
class TestInfo:
    name: str  # unique, not_null, relationships, accepted_values, ...
    namespace: str | None
    column: str | None
    kwargs: dict
    uid: str


def tests_by_model(ctx: StaticContext) -> dict[str, list[TestInfo]]:
    def build() -> dict[str, list[TestInfo]]:
        nodes = (ctx.manifest or {}).get("nodes") or {}
        by_name = {n.get("name"): uid for uid, n in nodes.items() if n.get("resource_type") == "model"}
        out: dict[str, list[TestInfo]] = {}
        for uid, n in nodes.items():
            if n.get("resource_type") != "test":
                continue
            meta = n.get("test_metadata") or {}
            kwargs = meta.get("kwargs") or {}
            col = n.get("column_name") or kwargs.get("column_name")
            col = str(col).strip("`\"' ").lower() if col else None
            attached = n.get("attached_node")
            if not attached:
                mref = str(kwargs.get("model") or "")
                mm = re.search(r"ref\(\s*['\"]([\w.-]+)['\"]", mref)
                if mm and mm.group(1) in by_name:
                    attached = by_name[mm.group(1)]
            targets = (
                [attached]
                if attached
                else [d for d in (n.get("depends_on") or {}).get("nodes") or [] if d.startswith("model.")]
            )
            name = meta.get("name") or ("singular" if not meta else "")
            for t in targets:
                out.setdefault(t, []).append(TestInfo(name, meta.get("namespace"), col, kwargs, uid))
        return out

    return ctx.cached("lint.tests_by_model", build)


def _has_constraint(obj: dict, kind: str) -> bool:
    return any((c or {}).get("type") == kind for c in obj.get("constraints") or [])


# =====================================================================================
# Rules
# =====================================================================================


@check("lint.select_star_in_mart", severity="warning")
def select_star_in_mart(ctx: StaticContext) -> CheckResult | list[Finding]:
    """Marts list their output columns instead of passing `SELECT *` through from upstream."""
    if (r := _no_project("lint.select_star_in_mart", ctx)) or (r := _no_marts("lint.select_star_in_mart", ctx)):
        return r
    findings = []
    unparsed = []
    for mdl in marts(ctx):
        tree = parsed(ctx, mdl)
        if tree is None:
            unparsed.append(mdl.original_file_path)
            if re.search(
                r"select\s+(distinct\s+)?\*\s*(except\s*\([^)]*\)\s*)?from\s+__dbt_(ref|source)",
                stripped(ctx, mdl).sql,
                re.I,
            ):
                findings.append(
                    _finding(
                        ctx,
                        mdl,
                        f"{mdl.name}: SELECT * from an upstream relation",
                        re.compile(r"select\s+(distinct\s+)?\*", re.I),
                    )
                )
            continue
        ctes = _ctes(tree)
        for b in _branches(tree):
            star = _leaking_star(b, ctes, set())
            if star is not None:
                extra = " EXCEPT(...)" if star.args.get("except") or star.args.get("except_") else ""
                findings.append(
                    _finding(
                        ctx,
                        mdl,
                        f"{mdl.name}: mart output is SELECT *{extra} over an upstream relation; its columns "
                        "change whenever upstream changes",
                        re.compile(r"select\s+(distinct\s+)?(\w+\.)?\*|\b\w+\.\*", re.I),
                    )
                )
                break
    return _per_model_result(
        "lint.select_star_in_mart", findings, len(marts(ctx)), "marts", {"unparsed_models": unparsed}
    )


@check("lint.hardcoded_relation", severity="error")
def hardcoded_relation(ctx: StaticContext) -> CheckResult | list[Finding]:
    """Models read other relations through ref()/source(), never a literal dataset.table."""
    if r := _no_project("lint.hardcoded_relation", ctx):
        return r
    findings = []
    unparsed = []
    for mdl in models(ctx):
        st = stripped(ctx, mdl)
        tree = parsed_raw(ctx, mdl)
        if tree is None:
            unparsed.append(mdl.original_file_path)
            findings.extend(_hardcoded_by_regex(ctx, mdl, st))
            continue
        ctes = set(_ctes(tree))
        aliases = {(t.alias or "").lower() for t in tree.find_all(exp.Table) if t.alias}
        seen = set()
        for t in tree.find_all(exp.Table):
            parts = [p.name for p in t.parts]
            name = t.name
            if not name or name.startswith(("__dbt_ref__", "__dbt_source__", "__dbt_this__")):
                continue
            if len(parts) == 1 and (name.lower() in ctes or name.startswith("__dbt_expr_")):
                continue
            if len(parts) == 2 and parts[0].lower() in aliases | ctes:
                continue  # implicit UNNEST of an array column: FROM t, t.items
            if name.startswith("__dbt_expr_") and all(p.startswith("__dbt_expr_") for p in parts):
                continue
            if isinstance(t.parent, exp.Schema) or t.find_ancestor(exp.Create, exp.Insert, exp.Merge):
                continue
            shown = ".".join(st.placeholders.get(p, p) for p in parts)
            if shown in seen:
                continue
            seen.add(shown)
            literal_parts = [p for p in parts if not p.startswith("__dbt_expr_")]
            findings.append(
                _finding(
                    ctx,
                    mdl,
                    f"{mdl.name}: reads `{shown}` directly instead of ref()/source() (no lineage, "
                    "no environment switching)",
                    _relation_regex(literal_parts),
                )
            )
    return _per_model_result(
        "lint.hardcoded_relation", findings, len(models(ctx)), "models", {"unparsed_models": unparsed}
    )


_FROM_REL = re.compile(r"\b(from|join)\s+(`[^`]+`|[\w-]+(?:\s*\.\s*[\w-]+){1,2})(?!\s*\()", re.I)


def _hardcoded_by_regex(ctx: StaticContext, mdl: Model, st: Stripped) -> list[Finding]:
    sql = re.sub(r"--[^\n]*|/\*.*?\*/", "", st.sql, flags=re.S)
    ctes = {c.lower() for c in re.findall(r"(\w+)\s+as\s*\(", sql, re.I)}
    out = []
    for m in _FROM_REL.finditer(sql):
        rel = m.group(2).strip("`")
        first = rel.split(".")[0].strip().lower()
        if rel.startswith("__dbt_") or first in ctes or first == "unnest":
            continue
        if "." not in rel:
            continue
        out.append(
            _finding(
                ctx,
                mdl,
                f"{mdl.name}: reads `{rel}` directly instead of ref()/source()",
                _relation_regex([p.strip() for p in rel.split(".")]),
            )
        )
    return out


@check("lint.mart_reads_source", severity="warning")
def mart_reads_source(ctx: StaticContext) -> CheckResult | list[Finding]:
    """Marts and intermediate models build on staging models, not on source() directly."""
    if (r := _no_project("lint.mart_reads_source", ctx)) or (r := _no_marts("lint.mart_reads_source", ctx)):
        return r
    findings = []
    scope = [m for m in models(ctx) if m.layer in ("mart", "intermediate")]
    for mdl in scope:
        srcs = [d.split(".", 2)[-1] for d in mdl.depends_on if d.startswith("source.")] or [
            ".".join(s) for s in mdl.sources
        ]
        if srcs:
            names = ", ".join(srcs)
            findings.append(
                _finding(
                    ctx,
                    mdl,
                    f"{mdl.name} ({mdl.layer}) reads source(s) directly: {names}",
                    re.compile(r"\bsource\s*\(", re.I),
                )
            )
    return _per_model_result("lint.mart_reads_source", findings, len(scope), "marts/intermediates")


@check("lint.staging_joins", severity="warning")
def staging_joins(ctx: StaticContext) -> CheckResult | list[Finding]:
    """Staging models clean one source table each; joins belong in intermediate models or marts."""
    if r := _no_project("lint.staging_joins", ctx):
        return r
    findings = []
    scope = [m for m in models(ctx) if m.layer == "staging"]
    if not scope:
        return _result("lint.staging_joins", "skipped", 0.0, "skipped: no staging models")
    for mdl in scope:
        tree = parsed(ctx, mdl)
        if tree is None:
            sql = stripped(ctx, mdl).sql
            if re.search(r"\bjoin\s+(?!unnest\b)", sql, re.I):
                findings.append(
                    _finding(
                        ctx, mdl, f"{mdl.name}: staging model joins other relations", re.compile(r"\bjoin\b", re.I)
                    )
                )
            continue
        joined = []
        for j in tree.find_all(exp.Join):
            if isinstance(j.this, exp.Unnest):
                continue
            if (
                isinstance(j.this, exp.Table)
                and (j.this.name or "").lower() in _ctes(tree)
                and not j.this.args.get("db")
            ):
                # a join between CTEs still joins relations; report what they read
                pass
            joined.append(_pretty(j.this.sql(dialect=DIALECT))[:80])
        if joined:
            findings.append(
                _finding(
                    ctx,
                    mdl,
                    f"{mdl.name}: staging model joins {', '.join(joined)}",
                    re.compile(r"\bjoin\b|,\s*\{\{\s*(ref|source)", re.I),
                )
            )
    return _per_model_result("lint.staging_joins", findings, len(scope), "staging models")


_PK_UNIQUE = {"unique", "expect_column_values_to_be_unique", "is_unique"}
_PK_NOT_NULL = {"not_null", "expect_column_values_to_not_be_null", "not_null_proportion"}
_PK_COMBINED = {
    "unique_combination_of_columns",
    "expect_compound_columns_to_be_unique",
    "primary_key",
    "unique_key",
    "expect_select_column_values_to_be_unique_within_record",
}


@check("lint.mart_missing_pk_test", severity="warning")
def mart_missing_pk_test(ctx: StaticContext) -> CheckResult | list[Finding]:
    """Each mart has a tested primary key: unique + not_null on one column, a combination-unique test, or a primary_key constraint."""
    if (
        (r := _needs_manifest("lint.mart_missing_pk_test", ctx))
        or (r := _no_project("lint.mart_missing_pk_test", ctx))
        or (r := _no_marts("lint.mart_missing_pk_test", ctx))
    ):
        return r
    tests = tests_by_model(ctx)
    findings = []
    keys: dict[str, str] = {}
    for mdl in marts(ctx):
        key = _primary_key(mdl, tests.get(mdl.uid, []))
        if key:
            keys[mdl.name] = key
            continue
        have = sorted({f"{t.name}({t.column})" if t.column else t.name for t in tests.get(mdl.uid, [])})
        findings.append(
            _finding(
                ctx,
                mdl,
                f"{mdl.name}: no primary-key test (unique + not_null on one column, a combination-unique "
                f"test or a primary_key constraint); tests present: {', '.join(have) or 'none'}",
            )
        )
    return _per_model_result("lint.mart_missing_pk_test", findings, len(marts(ctx)), "marts", {"keys": keys})


def _primary_key(mdl: Model, tests: list[TestInfo]) -> str | None:
    if _has_constraint(mdl.node, "primary_key"):
        return "constraint primary_key"
    unique_cols = {t.column for t in tests if t.name in _PK_UNIQUE and t.column}
    nn_cols = {t.column for t in tests if t.name in _PK_NOT_NULL and t.column}
    for col, meta in mdl.columns.items():
        if _has_constraint(meta, "primary_key"):
            return f"{col} (constraint primary_key)"
        if _has_constraint(meta, "not_null"):
            nn_cols.add(col)
        if _has_constraint(meta, "unique"):
            unique_cols.add(col)
    both = sorted(unique_cols & nn_cols)
    if both:
        return f"{both[0]} (unique + not_null)"
    for t in tests:
        custom_combo = "unique" in t.name and any(isinstance(v, list) and len(v) > 1 for v in t.kwargs.values())
        if t.name in _PK_COMBINED or custom_combo:
            cols = (
                t.kwargs.get("combination_of_columns")
                or t.kwargs.get("column_list")
                or t.kwargs.get("column_names")
                or next((v for v in t.kwargs.values() if isinstance(v, list)), None)
            )
            return f"{t.name}({', '.join(map(str, cols)) if isinstance(cols, list) else t.column or ''})"
    return None


def _model_columns(ctx: StaticContext, mdl: Model) -> list[str]:
    cols = list(mdl.columns)
    for c in output_columns(parsed(ctx, mdl)) or []:
        if c not in cols:
            cols.append(c)
    return cols


def _own_key(mdl: Model, col: str, tests: list[TestInfo], first_col: str | None = None) -> bool:
    """Is `col` the model's own key (not a foreign key)?"""
    if col in ("id", first_col):
        return True
    if any(t.name in _PK_UNIQUE and t.column == col for t in tests):
        return True
    entity = re.sub(r"^(stg|int|fct|dim|base)_", "", mdl.name.lower())
    entity = re.sub(r"^[a-z0-9]+__", "", entity)  # stg_source__table
    singular = entity[:-3] + "y" if entity.endswith("ies") else entity.rstrip("s")
    return col in (f"{entity}_id", f"{singular}_id")


def _upstream(mdl: Model, by_name: dict[str, Model]) -> list[Model]:
    out: list[Model] = []
    stack = list(mdl.refs)
    while stack:
        n = stack.pop(0)
        up = by_name.get(n)
        if up is None or up in out or up is mdl:
            continue
        out.append(up)
        stack.extend(up.refs)
    return out


def _coverage(ctx: StaticContext, check_id: str, is_candidate, test_names: set[str], label: str) -> CheckResult:
    if (
        (r := _needs_manifest(check_id, ctx))
        or (r := _no_project(check_id, ctx))
        or (r := _no_candidate_models(check_id, ctx))
    ):
        return r
    tests = tests_by_model(ctx)
    by_name = {m.name: m for m in models(ctx)}
    covered, uncovered = [], []
    for mdl in candidate_models(ctx):
        if mdl.layer == "intermediate":
            continue  # often ephemeral glue; the columns are judged where they land
        mtests = tests.get(mdl.uid, [])
        cols = _model_columns(ctx, mdl)
        for col in cols:
            if not is_candidate(mdl, col, mtests, cols[0]):
                continue
            via = None
            if any(t.name in test_names and t.column == col for t in mtests):
                via = ""
            else:  # the same column tested upstream and passed through
                for up in _upstream(mdl, by_name):
                    if any(t.name in test_names and t.column == col for t in tests.get(up.uid, [])):
                        via = f" (tested upstream in {up.name})"
                        break
            if via is None:
                uncovered.append(f"{mdl.name}.{col}")
            else:
                covered.append(f"{mdl.name}.{col}{via}")
    total = len(covered) + len(uncovered)
    if total == 0:
        return _result(check_id, "pass", 1.0, f"no {label} columns found", covered=[], uncovered=[])
    score = len(covered) / total
    status = "pass" if score >= COVERAGE_PASS else "fail"
    return _result(
        check_id,
        status,
        score,
        f"{len(covered)}/{total} {label} columns covered ({score:.0%})",
        covered=covered,
        uncovered=uncovered,
        threshold=COVERAGE_PASS,
    )


@check("lint.relationship_coverage", severity="info")
def relationship_coverage(ctx: StaticContext) -> CheckResult:
    """Share of foreign-key-like columns (*_id, not the model's own key) covered by a relationships test."""
    return _coverage(
        ctx,
        "lint.relationship_coverage",
        lambda mdl, col, tests, first: (
            col.endswith("_id")
            and not _own_key(mdl, col, tests, first)
            and not col.startswith("_")
            and not _NOT_FK.search(col)
        ),
        {"relationships", "relationships_where", "expect_column_values_to_be_in_set_of_other_column"},
        "foreign-key-like",
    )


_NOT_FK = re.compile(r"(provider|external|row|raw|airbyte|session|request|trace|idempotency)_id$")
_STATUS_LIKE = re.compile(r"^(status|.*_status|.*_type|.*_tier|currency|.*_currency)$")


@check("lint.accepted_values_coverage", severity="info")
def accepted_values_coverage(ctx: StaticContext) -> CheckResult:
    """Share of status-like columns (status, *_type, *_tier, currency) covered by an accepted_values test."""
    return _coverage(
        ctx,
        "lint.accepted_values_coverage",
        lambda mdl, col, tests, first: bool(_STATUS_LIKE.match(col)),
        {
            "accepted_values",
            "expect_column_values_to_be_in_set",
            "expect_column_distinct_values_to_be_in_set",
            "expect_column_distinct_values_to_equal_set",
            "relationships",
        },
        "status-like",
    )


@check("lint.undocumented_models", severity="warning")
def undocumented_models(ctx: StaticContext) -> CheckResult:
    """Every model has a description (score: share of models documented)."""
    cid = "lint.undocumented_models"
    if (r := _needs_manifest(cid, ctx)) or (r := _no_project(cid, ctx)) or (r := _no_candidate_models(cid, ctx)):
        return r
    scope = candidate_models(ctx)
    findings = [_finding(ctx, m, f"{m.name} has no description") for m in scope if not m.description]
    return _per_model_result(cid, findings, len(scope), "models")


@check("lint.undocumented_columns", severity="info")
def undocumented_columns(ctx: StaticContext) -> CheckResult:
    """Share of model output columns (documented in YAML or selected in SQL) that have a description."""
    cid = "lint.undocumented_columns"
    if (r := _needs_manifest(cid, ctx)) or (r := _no_project(cid, ctx)) or (r := _no_candidate_models(cid, ctx)):
        return r
    documented: list[str] = []
    missing: dict[str, list[str]] = {}
    findings = []
    for mdl in candidate_models(ctx):
        for col in _model_columns(ctx, mdl):
            desc = ((mdl.columns.get(col) or {}).get("description") or "").strip()
            if desc:
                documented.append(f"{mdl.name}.{col}")
            else:
                missing.setdefault(mdl.name, []).append(col)
        if mdl.name in missing:
            cols = missing[mdl.name]
            findings.append(
                _finding(
                    ctx,
                    mdl,
                    f"{mdl.name}: {len(cols)} column(s) without description: "
                    + ", ".join(cols[:12])
                    + (" ..." if len(cols) > 12 else ""),
                )
            )
    total = len(documented) + sum(len(v) for v in missing.values())
    if total == 0:
        return _result(
            "lint.undocumented_columns",
            "fail",
            0.0,
            "no model columns found to document",
            documented=[],
            undocumented={},
        )
    score = len(documented) / total
    return _result(
        "lint.undocumented_columns",
        "pass" if score >= COLUMN_DOCS_PASS else "fail",
        score,
        f"{len(documented)}/{total} columns documented ({score:.0%})",
        documented=documented,
        undocumented=missing,
        threshold=COLUMN_DOCS_PASS,
        findings=[f.to_json() for f in findings],
    )


@check("lint.source_freshness", severity="warning")
def source_freshness(ctx: StaticContext) -> CheckResult:
    """Sources declare freshness (warn_after/error_after with a loaded_at_field) so stale loads are caught."""
    if r := _needs_manifest("lint.source_freshness", ctx):
        return r
    project = ctx.project_name
    sources = [
        s
        for s in ((ctx.manifest or {}).get("sources") or {}).values()
        if not project or s.get("package_name") in (None, project)
    ]
    if not sources:
        return _result("lint.source_freshness", "skipped", 0.0, "skipped: the project declares no sources")
    findings = []
    for s in sorted(sources, key=lambda s: (s.get("source_name", ""), s.get("name", ""))):
        if _has_freshness(s.get("freshness")) and (s.get("loaded_at_field") or _has_loaded_at_query(s)):
            continue
        why = "no freshness" if not _has_freshness(s.get("freshness")) else "freshness without loaded_at_field"
        f = _finding(
            ctx,
            s,
            f"source {s.get('source_name')}.{s.get('name')}: {why}",
            re.compile(r"name\s*:\s*['\"]?" + re.escape(str(s.get("name"))) + r"\b"),
        )
        findings.append(f)
    failing = len(findings)
    score = (len(sources) - failing) / len(sources)
    ev = {"sources_checked": len(sources), "findings": [f.to_json() for f in findings]}
    if not findings:
        return _result(
            "lint.source_freshness", "pass", 1.0, f"all {len(sources)} source tables declare freshness", **ev
        )
    return _result(
        "lint.source_freshness",
        "fail",
        score,
        f"{failing}/{len(sources)} source tables without freshness: {findings[0].message}",
        **ev,
    )


def _has_freshness(fr: Any) -> bool:
    if not isinstance(fr, dict):
        return False
    for k in ("warn_after", "error_after"):
        v = fr.get(k) or {}
        if isinstance(v, dict) and v.get("count") not in (None, 0) and v.get("period"):
            return True
    return False


def _has_loaded_at_query(s: dict) -> bool:
    return bool(
        s.get("loaded_at_query")
        or (s.get("config") or {}).get("loaded_at_query")
        or (s.get("config") or {}).get("loaded_at_field")
    )


# -- the payments trap ------------------------------------------------------------------


def _lineage(ctx: StaticContext, name_part: str, source_table: str) -> list[Model]:
    """Models named after `name_part` or reading the `source_table` source, with everything
    downstream of them that keeps the name (e.g. stg_payments → fct_payments)."""
    ms = models(ctx)
    by_uid = {m.uid: m for m in ms}
    hit = {
        m.uid
        for m in ms
        if name_part in m.name.lower()
        or any(t.lower() == source_table for _, t in m.sources)
        or any(d.startswith("source.") and d.lower().endswith("." + source_table) for d in m.depends_on)
    }
    # intermediates that read a hit model also belong to the lineage
    changed = True
    while changed:
        changed = False
        for m in ms:
            if m.uid in hit:
                continue
            ups = set(m.depends_on) | {u.uid for u in ms if u.name in m.refs}
            if ups & hit and m.layer in ("intermediate", "staging"):
                hit.add(m.uid)
                changed = True
    return [by_uid[u] for u in sorted(hit, key=lambda u: by_uid[u].original_file_path)]


_RANKING = (exp.RowNumber, exp.Rank, exp.DenseRank)


def _dedup_patterns(tree: exp.Expression) -> tuple[list[str], list[str]]:
    """(recognised dedup patterns on event_id, non-dedup patterns seen)."""
    good, bad = [], []
    has_filter = tree.find(exp.Qualify) is not None
    eq_one = any(
        isinstance(c.expression, exp.Literal) and c.expression.this in ("1", 1) for c in tree.find_all(exp.EQ, exp.LTE)
    ) or any(isinstance(c.expression, exp.Literal) and c.expression.this in ("2", 2) for c in tree.find_all(exp.LT))
    for w in tree.find_all(exp.Window):
        fn = w.this
        fname = type(fn).__name__.lower()
        is_rank = (
            isinstance(fn, _RANKING)
            or fname in ("rank", "denserank")
            or (isinstance(fn, exp.Anonymous) and str(fn.this).lower() in ("rank", "dense_rank", "row_number"))
        )
        parts = {c.name.lower() for p in (w.args.get("partition_by") or []) for c in p.find_all(exp.Column)}
        if "event_id" in parts:
            if is_rank and (has_filter or eq_one):
                good.append(
                    f"{fn.sql(dialect=DIALECT)} OVER (PARTITION BY event_id ...) filtered to 1"
                    + (" with QUALIFY" if has_filter else "")
                )
            elif is_rank:
                bad.append("ROW_NUMBER() over event_id without a filter keeping one row")
            elif isinstance(fn, (exp.FirstValue, exp.LastValue)) or fname in ("firstvalue", "lastvalue"):
                if tree.find(exp.Distinct) or tree.find(exp.Group):
                    good.append(f"{fn.sql(dialect=DIALECT)} OVER (PARTITION BY event_id) with DISTINCT/GROUP BY")
    for g in tree.find_all(exp.Group):
        if any(_col_name(e) == "event_id" for e in g.expressions):
            good.append("GROUP BY event_id")
    for sel in tree.find_all(exp.Select):
        d = sel.args.get("distinct")
        if not d:
            continue
        if d.args.get("on"):
            cols = _columns_in(d.args["on"])
            if "event_id" in cols:
                good.append("DISTINCT ON (event_id)")
            continue
        if any(
            isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
            for p in sel.expressions
        ):
            bad.append("SELECT DISTINCT * (replays differ in id and timestamps, so they survive)")
            continue
        names = {p.alias_or_name.lower() for p in sel.expressions}
        srcs = set()
        for p in sel.expressions:
            srcs |= _columns_in(p)
        if "event_id" in names and not (srcs & PER_REPLAY_COLUMNS):
            good.append("SELECT DISTINCT over columns that exclude the per-replay id/timestamps")
        elif "event_id" in names:
            bad.append(
                "SELECT DISTINCT including per-replay columns ("
                + ", ".join(sorted(srcs & PER_REPLAY_COLUMNS))
                + ") keeps the replays"
            )
    return good, bad


_DEDUP_MACRO = re.compile(r"\{\{-?\s*[\w.]*dedup\w*\s*\(", re.I)


def _model_dedup_patterns(ctx: StaticContext, mdl: Model) -> tuple[list[str], list[str]]:
    """(recognised dedup patterns on event_id, non-dedup patterns) of one model, by its SQL or, unparsed, by regex."""
    tree = parsed(ctx, mdl)
    good, bad = _dedup_patterns(tree) if tree is not None else ([], [])
    if _DEDUP_MACRO.search(mdl.raw_code):
        good.append("dedup macro: " + _DEDUP_MACRO.search(mdl.raw_code).group(0).strip("{ -("))  # type: ignore[union-attr]
    if tree is None:
        sql = stripped(ctx, mdl).sql
        if re.search(r"partition\s+by\s+[\w.]*event_id", sql, re.I) and re.search(r"qualify|=\s*1\b", sql, re.I):
            good.append("window over event_id with a filter (regex; SQL did not parse)")
        if re.search(r"group\s+by[^;]*\bevent_id\b", sql, re.I):
            good.append("GROUP BY event_id (regex; SQL did not parse)")
        if re.search(r"select\s+distinct\s+\*", sql, re.I):
            bad.append("SELECT DISTINCT *")
    return good, bad


@check("lint.payments_dedup_pattern", severity="error")
def payments_dedup_pattern(ctx: StaticContext) -> CheckResult:
    """The payments lineage removes replayed events by event_id (window + filter/QUALIFY, GROUP BY event_id, or a dedup macro); SELECT DISTINCT * is not one."""
    cid = "lint.payments_dedup_pattern"
    if r := _no_project(cid, ctx):
        return r
    lineage = _lineage(ctx, "payment", "payments")
    if not lineage:
        return _result(
            cid, "fail", 0.0, "no model on the payments lineage (no model named *payment* or reading source payments)"
        )
    recognised: list[dict] = []
    not_dedup: list[Finding] = []
    for mdl in lineage:
        good, bad = _model_dedup_patterns(ctx, mdl)
        for g in good:
            f = _finding(
                ctx,
                mdl,
                g,
                re.compile(r"partition\s+by[^)]*event_id|group\s+by[^;]*event_id|distinct|dedup\w*\s*\(", re.I),
            )
            recognised.append({"model": mdl.name, "pattern": g, **f.to_json()})
        for b in bad:
            not_dedup.append(
                _finding(ctx, mdl, f"{mdl.name}: {b}", re.compile(r"select\s+distinct|row_number|partition\s+by", re.I))
            )
    ev = {"lineage": [m.name for m in lineage], "recognised": recognised, "findings": [f.to_json() for f in not_dedup]}
    if recognised:
        msg = f"dedup on event_id recognised in {recognised[0]['model']}: {recognised[0]['pattern']}"
        return _result(cid, "pass", 1.0, msg, **ev)
    if not_dedup:
        ev["findings"] = [f.to_json() for f in not_dedup]
        return _result(cid, "fail", 0.0, f"no dedup on event_id; {not_dedup[0].message}", **ev)
    target = next((m for m in lineage if m.name == "fct_payments"), None) or next(
        (m for m in lineage if m.name == "stg_payments"), lineage[-1]
    )
    f = _finding(ctx, target, f"no deduplication on event_id in the payments lineage ({', '.join(ev['lineage'])})")
    ev["findings"] = [f.to_json()]
    return _result(cid, "fail", 0.0, f.message, **ev)


@check("lint.payments_dedup_layer", severity="info")
def payments_dedup_layer(ctx: StaticContext) -> CheckResult:
    """Where replayed payment events are removed. A layout preference, weighed lightly: removed in staging, every
    consumer of stg_payments sees one row per event; removed downstream (an intermediate model, the mart), each
    new consumer of stg_payments must deduplicate again. Either is sound; payments.dedup judges the outcome."""
    cid = "lint.payments_dedup_layer"
    if r := _no_project(cid, ctx):
        return r
    placed = []
    for mdl in _lineage(ctx, "payment", "payments"):
        good, _ = _model_dedup_patterns(ctx, mdl)
        if good:
            layer = mdl.layer or "unlayered"
            placed.append({"model": mdl.name, "layer": layer, "pattern": good[0],
                           **_finding(ctx, mdl, f"{mdl.name} ({layer}): {good[0]}").to_json()})
    if not placed:
        return _result(cid, "skipped", 0.0, "no deduplication on event_id recognised; payments.dedup and "
                       "lint.payments_dedup_pattern judge that", placements=[])
    in_staging = [p for p in placed if p["layer"] == "staging"]
    if in_staging:
        return _result(cid, "pass", 1.0, f"replays removed in staging ({in_staging[0]['model']})", placements=placed)
    where = ", ".join(f"{p['model']} ({p['layer']})" for p in placed)
    return _result(cid, "fail", 0.5, f"replays removed downstream of staging, in {where}: a sound layout, but every "
                   "other consumer of stg_payments must deduplicate again (a preference, not a missed trap)",
                   placements=placed)


# -- the confirmed_at trap ---------------------------------------------------------------


def _mentions_confirmed(node: exp.Expression) -> bool:
    return any("confirmed_at" in (c.name or "").lower() for c in node.find_all(exp.Column))


def _zone_of(node: exp.Expression) -> str | None:
    z = node.args.get("zone")
    if isinstance(z, exp.Literal):
        return str(z.this)
    return z.sql(dialect=DIALECT) if z is not None else None


def _timezone_patterns(tree: exp.Expression, placeholders: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """(correct conversions, fixed-offset conversions, implicit-UTC reads) of confirmed_at."""
    good, fixed, implicit = [], [], []
    for node in tree.find_all(exp.Timestamp, exp.StrToTime, exp.TimeStrToTime):
        if not _mentions_confirmed(node):
            continue
        zone = _zone_of(node)
        if zone is None:
            implicit.append(node.sql(dialect=DIALECT))
        elif zone.strip().lower() in DST_ZONES:
            good.append(node.sql(dialect=DIALECT))
        elif zone in placeholders or zone.strip("'\"") in placeholders:
            good.append(f"{node.sql(dialect=DIALECT)} (zone from {placeholders.get(zone.strip(chr(39)), zone)})")
        elif _FIXED_ZONE.match(zone.strip()):
            fixed.append(f"{node.sql(dialect=DIALECT)}: '{zone}' is a fixed offset, not New York time")
        else:
            fixed.append(f"{node.sql(dialect=DIALECT)}: zone '{zone}' is not the legacy service's America/New_York")
    shift_types = (exp.TimestampAdd, exp.TimestampSub, exp.DatetimeAdd, exp.DatetimeSub, exp.DateAdd, exp.DateSub)
    for node in tree.find_all(*shift_types):
        unit = str(node.args.get("unit") or "").upper()
        if _mentions_confirmed(node.this) and ("HOUR" in unit or "MINUTE" in unit):
            fixed.append(f"{node.sql(dialect=DIALECT)}: a fixed offset is wrong half the year (DST)")
    for node in tree.find_all(exp.Add, exp.Sub):
        if isinstance(node.expression, exp.Interval) and _mentions_confirmed(node.this):
            fixed.append(f"{node.sql(dialect=DIALECT)}: a fixed offset is wrong half the year (DST)")
    for node in tree.find_all(exp.Cast, exp.TryCast):
        to = node.args.get("to")
        if to is not None and to.is_type("timestamp", "timestamptz") and _mentions_confirmed(node.this):
            if not node.find_ancestor(exp.Timestamp):
                implicit.append(node.sql(dialect=DIALECT))
    return good, fixed, implicit


def _project_macros(ctx: StaticContext) -> dict[str, str]:
    """{macro name: its SQL} of the candidate's own project (not packages)."""

    def build() -> dict[str, str]:
        out: dict[str, str] = {}
        project = ctx.project_name
        for mac in ((ctx.manifest or {}).get("macros") or {}).values():
            if not project or mac.get("package_name") == project:
                out[mac.get("name", "")] = mac.get("macro_sql") or ""
        if not out and ctx.dbt_project_dir is not None and (ctx.dbt_project_dir / "macros").is_dir():
            for f in walk_files(ctx.dbt_project_dir / "macros", (".sql",), skip=_NOT_MODELS):
                text = read_text(f) or ""
                for m in re.finditer(r"\{%-?\s*macro\s+(\w+)(.*?)\{%-?\s*endmacro", text, re.S):
                    out[m.group(1)] = m.group(0)
        return out

    return ctx.cached("lint.macros", build)


def _dst_macros(ctx: StaticContext) -> list[str]:
    rx = re.compile(r"['\"](america/new_york|us/eastern|est5edt)['\"]", re.I)
    return sorted(n for n, sql in _project_macros(ctx).items() if n and rx.search(sql))


_TZ_NEEDLE = re.compile(r"america/new_york|us/eastern|est5edt|interval\s+-?\d+\s+hour|confirmed_at", re.I)


@check("lint.confirmed_at_timezone", severity="error")
def confirmed_at_timezone(ctx: StaticContext) -> CheckResult:
    """orders.confirmed_at (New York wall-clock DATETIME) is converted with an explicit DST-aware zone, e.g. TIMESTAMP(confirmed_at, 'America/New_York'), not a fixed offset."""
    cid = "lint.confirmed_at_timezone"
    if r := _no_project(cid, ctx):
        return r
    scope = [m for m in models(ctx) if "confirmed_at" in (m.raw_code + (m.compiled_code or "")).lower()]
    if not scope:
        return _result(cid, "fail", 0.0, "no model selects orders.confirmed_at")
    conversions: list[dict] = []
    findings: list[Finding] = []
    implicit_seen: list[Finding] = []
    for mdl in scope:
        tree = parsed(ctx, mdl)
        if tree is not None:
            good, fixed, implicit = _timezone_patterns(tree, stripped(ctx, mdl).placeholders)
        else:
            sql = stripped(ctx, mdl).sql
            good = re.findall(r"confirmed_at[^;]{0,160}?['\"](?:america/new_york|us/eastern|est5edt)['\"]", sql, re.I)
            fixed = [
                m.group(0)
                for m in re.finditer(
                    r"(timestamp|datetime)_(add|sub)\s*\([^;]{0,80}?confirmed_at[^;]{0,80}?interval\s+-?\d+\s+hour",
                    sql,
                    re.I,
                )
            ]
            implicit = []
        for g in good:
            f = _finding(ctx, mdl, g, re.compile(r"america/new_york|us/eastern|est5edt", re.I))
            conversions.append({"model": mdl.name, "expression": g, **f.to_json()})
        for b in fixed:
            findings.append(
                _finding(
                    ctx,
                    mdl,
                    f"{mdl.name}: {b}",
                    re.compile(
                        r"interval\s+-?\d+\s+hour|['\"][+-]\d{1,2}(:?\d{2})?['\"]|['\"](utc|est|edt)['\"]", re.I
                    ),
                )
            )
        for i in implicit:
            implicit_seen.append(
                _finding(
                    ctx,
                    mdl,
                    f"{mdl.name}: {i} reads the New York wall-clock time as UTC",
                    re.compile(r"confirmed_at", re.I),
                )
            )
    if not conversions:  # a project macro doing the conversion, called but not compiled here
        for mdl in scope:
            for name in _dst_macros(ctx):
                if re.search(r"\b" + re.escape(name) + r"\s*\(", mdl.raw_code):
                    f = _finding(ctx, mdl, f"macro {name}() converts with a DST-aware zone", re.compile(name))
                    conversions.append({"model": mdl.name, "expression": f"{name}(...) (macro)", **f.to_json()})
    ev: dict[str, Any] = {"models": [m.name for m in scope], "conversions": conversions}
    if conversions and not findings:
        return _result(
            cid,
            "pass",
            1.0,
            f"explicit conversion in {conversions[0]['model']}: {conversions[0]['expression']}",
            **ev,
            findings=[],
        )
    if not conversions and not findings:
        findings = implicit_seen or [
            _finding(
                ctx,
                next((m for m in scope if "orders" in m.name), scope[0]),
                "confirmed_at passes through without a timezone conversion (it is New York wall-clock time)",
                re.compile(r"confirmed_at", re.I),
            )
        ]
    ev["findings"] = [f.to_json() for f in findings]
    return _result(cid, "fail", 0.5 if conversions else 0.0, f"{len(findings)} finding(s): {findings[0].message}", **ev)


# -- incremental models --------------------------------------------------------------------


@check("lint.incremental_config", severity="warning")
def incremental_config(ctx: StaticContext) -> CheckResult:
    """Incremental models set unique_key with merge (or partition_by with insert_overwrite) and filter new rows with is_incremental()."""
    cid = "lint.incremental_config"
    if r := _no_project(cid, ctx):
        return r
    inc = [m for m in models(ctx) if m.materialized == "incremental"]
    if not inc:
        return _result(
            cid,
            "fail",
            NO_INCREMENTAL_SCORE,
            "no incremental models: every run is a full refresh",
            incremental_models=[],
        )
    findings = []
    summary = []
    for mdl in inc:
        c = mdl.config
        strategy = c.get("incremental_strategy") or None
        eff = strategy or "merge"
        summary.append(
            {
                "model": mdl.name,
                "unique_key": c.get("unique_key"),
                "incremental_strategy": strategy or "merge (default)",
                "partition_by": c.get("partition_by"),
                "on_schema_change": c.get("on_schema_change"),
            }
        )
        cfg = re.compile(r"config\s*\(|materialized", re.I)
        if eff not in ("merge", "insert_overwrite", "microbatch"):
            findings.append(
                _finding(
                    ctx,
                    mdl,
                    f"{mdl.name}: incremental_strategy '{eff}' re-inserts rows on reruns; "
                    "use merge with unique_key or insert_overwrite",
                    cfg,
                )
            )
        if eff == "merge" and not c.get("unique_key"):
            findings.append(
                _finding(ctx, mdl, f"{mdl.name}: merge without unique_key appends duplicates on each run", cfg)
            )
        if eff == "insert_overwrite" and not c.get("partition_by"):
            findings.append(_finding(ctx, mdl, f"{mdl.name}: insert_overwrite without partition_by", cfg))
        if eff != "microbatch" and not _filters_with_is_incremental(ctx, mdl):
            findings.append(
                _finding(ctx, mdl, f"{mdl.name}: no is_incremental() filter, every run reprocesses everything", cfg)
            )
    res = _per_model_result(cid, findings, len(inc), "incremental models", {"incremental_models": summary})
    if findings:  # an incremental model with gaps still beats full refreshes (rubric level 2)
        bad = len({f.file for f in findings})
        res.score = (len(inc) - bad + 0.5 * bad) / len(inc)
    return res


def _filters_with_is_incremental(ctx: StaticContext, mdl: Model) -> bool:
    """Whether the model calls is_incremental(), in its own code or through the project's macros
    (a shared watermark macro is sound design, not a missing filter). The manifest's macro
    dependencies are followed, depth-limited; without a manifest only the model's text is read."""
    if re.search(r"is_incremental\s*\(\s*\)", mdl.raw_code):
        return True
    macros = (ctx.manifest or {}).get("macros", {})
    pending = list(mdl.node.get("depends_on", {}).get("macros", []))
    seen: set[str] = set()
    while pending and len(seen) < 500:
        macro_id = pending.pop()
        if macro_id in seen:
            continue
        seen.add(macro_id)
        if macro_id == "macro.dbt.is_incremental":
            return True
        macro = macros.get(macro_id, {})
        if macro.get("package_name") not in ("dbt", "dbt_bigquery"):  # the project's own, and packages'
            pending.extend(macro.get("depends_on", {}).get("macros", []))
    return False


@check("lint.layer_naming", severity="warning")
def layer_naming(ctx: StaticContext) -> CheckResult:
    """Model names carry their layer's prefix: stg_ in staging/, int_ in intermediate/, fct_/dim_ in marts/."""
    cid = "lint.layer_naming"
    if r := _no_project(cid, ctx):
        return r
    findings = []
    for mdl in models(ctx):
        folder, prefix = mdl.folder_layer, _prefix_layer(mdl.name)
        if folder and prefix != folder:
            want = " or ".join(LAYER_PREFIXES[folder])
            findings.append(_finding(ctx, mdl, f"{mdl.name} is in a {folder} folder but is not named {want}*"))
        elif folder is None and prefix is None:
            findings.append(
                _finding(
                    ctx,
                    mdl,
                    f"{mdl.name} is neither in a staging/intermediate/marts folder nor named with a layer prefix",
                )
            )
    return _per_model_result(cid, findings, len(models(ctx)), "models")


@check("lint.not_analysed", severity="warning")
def not_analysed(ctx: StaticContext) -> CheckResult:
    """Every model's SQL was small and simple enough to analyse (a model that was not escapes every lint rule)."""
    cid = "lint.not_analysed"
    if skip := _no_project(cid, ctx):
        return skip
    for mdl in models(ctx):
        parsed(ctx, mdl)  # cached: what the other rules parsed, or parses it now
    skipped = sorted(ctx.not_analysed.items())
    evidence = {"models": len(models(ctx)), "not_analysed": [{"file": f, "why": w} for f, w in skipped]}
    if not skipped:
        return _result(cid, "pass", 1.0, f"all {len(models(ctx))} model(s) analysed", **evidence)
    file, why = skipped[0]
    return _result(cid, "fail", 0.0, f"{len(skipped)} model file(s) not analysed, e.g. {file}: {why}", **evidence)


def all_rule_ids() -> list[str]:
    from checks.registry import specs

    return [s.id for s in specs("lint")]


__all__ = ["strip_jinja", "models", "parsed", "output_columns", "all_rule_ids"]
