"""The dbt-project engine: what the lint rules ask about the candidate's dbt project.

It models the project's models (name, file, layer, config, refs, sources, columns,
description), the tests attached to them, the project's own macros, and each model's SQL
as a sqlglot tree (BigQuery dialect). Sources of truth, in order: dbt's manifest (from the
grader's own dbt run), the compiled SQL, and the raw model files with Jinja replaced by
placeholders (checks/dbt_sql.py), so lineage stays visible when dbt could not parse the
project. Every query is computed once per StaticContext.

What it does not model: Jinja is never rendered (only `{{ config(...) }}` literals are read,
and the first branch of an `{% if %}` kept); macros are not expanded outside the compiled
SQL; column types, seeds, snapshots, exposures and packages' models are not modelled; SQL
too large, too slow or too deep is not parsed (static_context.parse_sql records why).
Nothing here judges: the rules in checks/lint/ do.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlglot import exp

from checks.dbt_sql import Stripped, output_columns, strip_jinja
from checks.registry import Finding
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

MART_FOLDERS = {"marts", "mart", "reporting"}
STAGING_FOLDERS = {"staging", "stg", "base"}
INTERMEDIATE_FOLDERS = {"intermediate", "int"}
LAYER_PREFIXES = {
    "staging": ("stg_", "base_"),
    "intermediate": ("int_",),
    "mart": ("fct_", "dim_"),
}
# Folders of a dbt project that hold no model of the candidate's.
NOT_MODEL_FOLDERS = frozenset({"dbt_packages", "target"})


# -- the model index (manifest, or the .sql files when dbt could not parse) ----------------


@dataclass
class Model:
    """One model of the candidate's project, as the manifest (or its file) describes it."""

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


def folder_layer(path: str) -> str | None:
    """The layer a model's folder names (the innermost layer folder wins)."""
    for part in reversed([folder.lower() for folder in Path(path).parts[:-1]]):
        if part in STAGING_FOLDERS:
            return "staging"
        if part in INTERMEDIATE_FOLDERS:
            return "intermediate"
        if part in MART_FOLDERS:
            return "mart"
    return None


def prefix_layer(name: str) -> str | None:
    """The layer a model's name prefix names (stg_, int_, fct_/dim_)."""
    for layer, prefixes in LAYER_PREFIXES.items():
        if name.lower().startswith(prefixes):
            return layer
    return None


_CONFIG_CALL = re.compile(r"\{\{-?\s*config\s*\((.*?)\)\s*-?\}\}", re.S)


def parse_config_call(raw: str) -> dict:
    """Literal keyword arguments of `{{ config(...) }}` in a model file (no Jinja is run)."""
    out: dict[str, Any] = {}
    for call_text in _CONFIG_CALL.finditer(raw):
        args = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnone\b", "None", call_text.group(1))))
        try:
            call = ast.parse(f"f({args})", mode="eval").body
        except SyntaxError:
            continue
        for keyword in getattr(call, "keywords", []):
            if keyword.arg is None:
                continue
            try:
                out[keyword.arg] = ast.literal_eval(keyword.value)
            except ValueError:
                out[keyword.arg] = ast.unparse(keyword.value)
    return out


def _models_from_manifest(ctx: StaticContext) -> list[Model]:
    project = ctx.project_name
    out = []
    for uid, node in ((ctx.manifest or {}).get("nodes") or {}).items():
        if node.get("resource_type") != "model":
            continue
        if project and node.get("package_name") not in (None, project):
            continue
        refs = []
        for ref in node.get("refs") or []:
            if isinstance(ref, dict):
                refs.append(ref.get("name"))
            elif isinstance(ref, (list, tuple)) and ref:
                refs.append(ref[-1])
        sources: list[tuple[str, str]] = [(pair[0], pair[1]) for pair in (node.get("sources") or []) if isinstance(pair, (list, tuple)) and len(pair) == 2]
        out.append(
            Model(
                uid=uid,
                name=node.get("name", uid.split(".")[-1]),
                original_file_path=node.get("original_file_path") or node.get("path") or f"models/{node.get('name')}.sql",
                raw_code=node.get("raw_code") or node.get("raw_sql") or "",
                compiled_code=node.get("compiled_code") or node.get("compiled_sql"),
                config=node.get("config") or {},
                refs=[ref for ref in refs if ref],
                sources=sources,
                depends_on=list((node.get("depends_on") or {}).get("nodes") or []),
                columns={name.lower(): column for name, column in (node.get("columns") or {}).items()},
                description=(node.get("description") or "").strip(),
                node=node,
            )
        )
    return out


def _models_from_files(ctx: StaticContext) -> list[Model]:
    project_dir = ctx.dbt_project_dir
    if project_dir is None:
        return []
    config = dbt_project_config(project_dir)
    out = []
    for model_path in config.get("model-paths") or config.get("source-paths") or ["models"]:
        base = project_dir / str(model_path)
        if not base.is_dir():
            continue
        for file in walk_files(base, (".sql",), skip=NOT_MODEL_FOLDERS):
            raw = read_text(file) or ""
            path = file.relative_to(project_dir).as_posix()
            name = file.stem
            refs = re.findall(r"\bref\s*\(\s*(?:['\"][\w.-]+['\"]\s*,\s*)?['\"]([\w.-]+)['\"]", raw)
            sources = re.findall(r"\bsource\s*\(\s*['\"]([\w.-]+)['\"]\s*,\s*['\"]([\w.-]+)['\"]", raw)
            out.append(
                Model(
                    uid=f"model.{config.get('name', 'project')}.{name}",
                    name=name,
                    original_file_path=path,
                    raw_code=raw,
                    compiled_code=None,
                    config=parse_config_call(raw),
                    refs=refs,
                    sources=[tuple(pair) for pair in sources],
                    depends_on=[],
                    columns={},
                    description="",
                    node={"original_file_path": path, "name": name, "raw_code": raw, "resource_type": "model"},
                )
            )
    return out


def models(ctx: StaticContext) -> list[Model]:
    """The project's own models, by file path: from the manifest, else from the .sql files."""

    def build() -> list[Model]:
        found = _models_from_manifest(ctx) if ctx.manifest else _models_from_files(ctx)
        for model in found:
            model.folder_layer = folder_layer(model.original_file_path)
            model.layer = model.folder_layer or prefix_layer(model.name)
        return sorted(found, key=lambda model: model.original_file_path)

    return ctx.cached("lint.models", build)


def marts(ctx: StaticContext) -> list[Model]:
    return [model for model in models(ctx) if model.layer == "mart"]


def is_handout_model(ctx: StaticContext, model: Model) -> bool:
    """A model shipped with the exercise and left unchanged (same file in the handout copy)."""
    if ctx.starter_root is None:
        return False
    path = node_source_path(ctx, model.node)
    if path is None:
        return False
    starter = Path(ctx.starter_root) / ctx.rel(path)
    if not starter.is_file():
        return False
    return (read_text(starter) or "").strip() == (read_text(path) or "").strip()


def candidate_models(ctx: StaticContext) -> list[Model]:
    """The models the candidate wrote or changed (handout models left as given are not theirs)."""
    return ctx.cached("lint.candidate_models", lambda: [model for model in models(ctx)
                                                       if not is_handout_model(ctx, model)])


def upstream(model: Model, by_name: dict[str, Model]) -> list[Model]:
    """Every model `model` reads through ref(), nearest first."""
    out: list[Model] = []
    pending = list(model.refs)
    while pending:
        found = by_name.get(pending.pop(0))
        if found is None or found in out or found is model:
            continue
        out.append(found)
        pending.extend(found.refs)
    return out


def lineage(ctx: StaticContext, name_part: str, source_table: str) -> list[Model]:
    """Models named after `name_part` or reading the `source_table` source, with the staging and
    intermediate models downstream of them (e.g. stg_payments → int_payments_deduped)."""
    every = models(ctx)
    by_uid = {model.uid: model for model in every}
    hit = {
        model.uid
        for model in every
        if name_part in model.name.lower()
        or any(table.lower() == source_table for _, table in model.sources)
        or any(dep.startswith("source.") and dep.lower().endswith("." + source_table) for dep in model.depends_on)
    }
    changed = True
    while changed:
        changed = False
        for model in every:
            if model.uid in hit:
                continue
            ups = set(model.depends_on) | {other.uid for other in every if other.name in model.refs}
            if ups & hit and model.layer in ("intermediate", "staging"):
                hit.add(model.uid)
                changed = True
    return [by_uid[uid] for uid in sorted(hit, key=lambda uid: by_uid[uid].original_file_path)]


def project_macros(ctx: StaticContext) -> dict[str, str]:
    """{macro name: its SQL} of the candidate's own project (not packages)."""

    def build() -> dict[str, str]:
        out: dict[str, str] = {}
        project = ctx.project_name
        for macro in ((ctx.manifest or {}).get("macros") or {}).values():
            if not project or macro.get("package_name") == project:
                out[macro.get("name", "")] = macro.get("macro_sql") or ""
        if not out and ctx.dbt_project_dir is not None and (ctx.dbt_project_dir / "macros").is_dir():
            for file in walk_files(ctx.dbt_project_dir / "macros", (".sql",), skip=NOT_MODEL_FOLDERS):
                text = read_text(file) or ""
                for found in re.finditer(r"\{%-?\s*macro\s+(\w+)(.*?)\{%-?\s*endmacro", text, re.S):
                    out[found.group(1)] = found.group(0)
        return out

    return ctx.cached("lint.macros", build)


def locate(ctx: StaticContext, model: Model | dict, message: str, needle: Any = None, *, last: bool = False) -> Finding:
    """A finding pinned to the model's (or manifest node's) own file and the line of `needle`."""
    node = model.node if isinstance(model, Model) else model
    file, line, snippet = source_location(ctx, node, needle, last=last)
    return Finding(message=message, file=file, line=line, snippet=snippet)


# -- each model's SQL as a tree ------------------------------------------------------------


def stripped(ctx: StaticContext, model: Model) -> Stripped:
    """The model's raw SQL with its Jinja replaced (empty when too large to analyse)."""

    def build() -> Stripped:
        within = within_size_limit(ctx, model.raw_code, model.original_file_path)
        return strip_jinja(model.raw_code) if within else Stripped("")

    return ctx.cached(f"lint.stripped:{model.uid}", build)


def analysis_sql(ctx: StaticContext, model: Model) -> tuple[str, str]:
    """(SQL, origin): the compiled SQL when dbt compiled the model, else the raw SQL with
    Jinja replaced by placeholders."""
    if model.compiled_code:
        return model.compiled_code, "compiled"
    path = compiled_path(ctx, model.node)
    if path is not None:
        text = read_text(path)
        if text:
            return text, "compiled"
    return stripped(ctx, model).sql, "raw"


def _parse(ctx: StaticContext, model: Model, sql: str) -> exp.Expr | None:
    """The model's last statement (pre-statements such as DECLARE come first), bounded in
    size, time and depth (static_context.parse_sql)."""
    return parse_sql(ctx, sql, DIALECT, model.original_file_path)


def parsed(ctx: StaticContext, model: Model) -> exp.Expr | None:
    """The model's SQL as a sqlglot tree (compiled when available; raw as a fallback)."""

    def build() -> exp.Expr | None:
        sql, origin = analysis_sql(ctx, model)
        tree = _parse(ctx, model, sql)
        if tree is None and origin == "compiled":
            tree = _parse(ctx, model, stripped(ctx, model).sql)
        return tree

    return ctx.cached(f"lint.parsed:{model.uid}", build)


def parsed_raw(ctx: StaticContext, model: Model) -> exp.Expr | None:
    """The raw SQL's tree, where ref()/source() are still visible as placeholders."""
    return ctx.cached(f"lint.parsed_raw:{model.uid}", lambda: _parse(ctx, model, stripped(ctx, model).sql))


def model_columns(ctx: StaticContext, model: Model) -> list[str]:
    """The model's columns: those its YAML documents, then those its SQL selects."""
    found = list(model.columns)
    for column in output_columns(parsed(ctx, model)) or []:
        if column not in found:
            found.append(column)
    return found


# -- tests in the manifest -----------------------------------------------------------------


@dataclass
class TestInfo:
    """One data test attached to a model."""

    name: str  # unique, not_null, relationships, accepted_values, ...
    namespace: str | None
    column: str | None
    kwargs: dict
    uid: str


def tests_by_model(ctx: StaticContext) -> dict[str, list[TestInfo]]:
    """{model unique_id: the tests attached to it} from the manifest."""

    def build() -> dict[str, list[TestInfo]]:
        nodes = (ctx.manifest or {}).get("nodes") or {}
        by_name = {node.get("name"): uid for uid, node in nodes.items() if node.get("resource_type") == "model"}
        out: dict[str, list[TestInfo]] = {}
        for uid, node in nodes.items():
            if node.get("resource_type") != "test":
                continue
            meta = node.get("test_metadata") or {}
            kwargs = meta.get("kwargs") or {}
            column = node.get("column_name") or kwargs.get("column_name")
            column = str(column).strip("`\"' ").lower() if column else None
            attached = node.get("attached_node")
            if not attached:
                model_ref = re.search(r"ref\(\s*['\"]([\w.-]+)['\"]", str(kwargs.get("model") or ""))
                if model_ref and model_ref.group(1) in by_name:
                    attached = by_name[model_ref.group(1)]
            targets = [attached] if attached else [
                dep for dep in (node.get("depends_on") or {}).get("nodes") or [] if dep.startswith("model.")
            ]
            name = meta.get("name") or ("singular" if not meta else "")
            for target in targets:
                out.setdefault(target, []).append(TestInfo(name, meta.get("namespace"), column, kwargs, uid))
        return out

    return ctx.cached("lint.tests_by_model", build)


def has_constraint(node_or_column: dict, kind: str) -> bool:
    """Whether a model or column declares a constraint of this type (primary_key, not_null, ...)."""
    return any((constraint or {}).get("type") == kind for constraint in node_or_column.get("constraints") or [])


def project_sources(ctx: StaticContext) -> list[dict]:
    """The manifest's source tables of the candidate's own project, by source and name."""
    project = ctx.project_name
    found = [
        source for source in ((ctx.manifest or {}).get("sources") or {}).values()
        if not project or source.get("package_name") in (None, project)
    ]
    return sorted(found, key=lambda source: (source.get("source_name", ""), source.get("name", "")))
