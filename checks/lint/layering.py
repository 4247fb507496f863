"""Layering: staging cleans one source each, marts build on staging and list their columns,
every relation is read through ref()/source(), and names carry their layer."""

from __future__ import annotations

import re

from sqlglot import exp

from checks.dbt_project import (
    DIALECT,
    LAYER_PREFIXES,
    Model,
    locate,
    marts,
    models,
    parsed,
    parsed_raw,
    prefix_layer,
    stripped,
)
from checks.dbt_sql import Stripped, branches, ctes, from_sources, pretty
from checks.lint.support import MARTS, STAGING, STG_ORDERS, no_marts, per_model_result
from checks.registry import CheckResult, Examples, Finding, result
from checks.static_context import StaticContext
from checks.static_rules import static_check

_FCT_ORDERS = "select\n    order_id,\n    buyer_id,\n    status,\n    total_amount\nfrom {{ ref('stg_orders') }}\n"


def _leaking_star(select: exp.Select, named: dict[str, exp.Expr], seen: set[int]) -> exp.Expr | None:
    """A `*` in this select whose columns come straight from a physical relation
    (through CTEs and subqueries that also select *)."""
    if id(select) in seen:
        return None
    seen.add(id(select))
    for projection in select.expressions:
        qualifier = None
        if isinstance(projection, exp.Star):
            pass
        elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
            qualifier = (projection.table or "").lower() or None
        else:
            continue
        for relation in from_sources(select):
            if qualifier and (relation.alias_or_name or "").lower() != qualifier:
                continue
            if isinstance(relation, exp.Unnest):
                continue
            if isinstance(relation, exp.Subquery):
                if any(_leaking_star(inner, named, seen) is not None for inner in branches(relation.this)):
                    return projection
                continue
            if isinstance(relation, exp.Table):
                name = relation.name.lower()
                if not relation.args.get("db") and name in named:
                    if any(_leaking_star(inner, named, seen) is not None for inner in branches(named[name])):
                        return projection
                    continue
                return projection
    return None


@static_check(
    "lint.select_star_in_mart",
    needs=("project",),
    severity="warning",
    title="Marts list their output columns instead of passing `SELECT *` through from upstream.",
    why="A mart is a contract with its consumers. With SELECT * its columns change whenever an upstream model "
    "or the raw load changes, and dashboards break without any change to the mart.",
    fix="Name the columns the mart publishes in its final SELECT (SELECT * from a CTE of the same model is fine).",
    examples=Examples(
        bad={f"{STAGING}/stg_orders.sql": STG_ORDERS, f"{MARTS}/fct_orders.sql": "select * from {{ ref('stg_orders') }}\n"},
        good={f"{STAGING}/stg_orders.sql": STG_ORDERS, f"{MARTS}/fct_orders.sql": _FCT_ORDERS},
    ),
)
def select_star_in_mart(ctx: StaticContext) -> CheckResult:
    if missing := no_marts(ctx):
        return missing
    findings = []
    unparsed = []
    for model in marts(ctx):
        tree = parsed(ctx, model)
        if tree is None:
            unparsed.append(model.original_file_path)
            if re.search(r"select\s+(distinct\s+)?\*\s*(except\s*\([^)]*\)\s*)?from\s+__dbt_(ref|source)",
                         stripped(ctx, model).sql, re.I):
                findings.append(locate(ctx, model, f"{model.name}: SELECT * from an upstream relation",
                                       re.compile(r"select\s+(distinct\s+)?\*", re.I)))
            continue
        named = ctes(tree)
        for select in branches(tree):
            star = _leaking_star(select, named, set())
            if star is not None:
                extra = " EXCEPT(...)" if star.args.get("except") or star.args.get("except_") else ""
                findings.append(locate(ctx, model, f"{model.name}: mart output is SELECT *{extra} over an upstream "
                                                   "relation; its columns change whenever upstream changes",
                                       re.compile(r"select\s+(distinct\s+)?(\w+\.)?\*|\b\w+\.\*", re.I)))
                break
    return per_model_result(findings, len(marts(ctx)), "marts", {"unparsed_models": unparsed})


def _relation_regex(parts: list[str]) -> re.Pattern:
    """A pattern for `a.b.c` as written in SQL (backticks and spaces around the dots)."""
    inner = r"`?\s*\.\s*`?".join(re.escape(part) for part in parts)
    return re.compile(r"`?" + inner + r"`?", re.I)


_FROM_RELATION = re.compile(r"\b(from|join)\s+(`[^`]+`|[\w-]+(?:\s*\.\s*[\w-]+){1,2})(?!\s*\()", re.I)


def _hardcoded_by_regex(ctx: StaticContext, model: Model, text: Stripped) -> list[Finding]:
    """Literal relations after FROM/JOIN, for SQL that did not parse."""
    sql = re.sub(r"--[^\n]*|/\*.*?\*/", "", text.sql, flags=re.S)
    named = {name.lower() for name in re.findall(r"(\w+)\s+as\s*\(", sql, re.I)}
    out = []
    for found in _FROM_RELATION.finditer(sql):
        relation = found.group(2).strip("`")
        first = relation.split(".")[0].strip().lower()
        if relation.startswith("__dbt_") or first in named or first == "unnest" or "." not in relation:
            continue
        out.append(locate(ctx, model, f"{model.name}: reads `{relation}` directly instead of ref()/source()",
                          _relation_regex([part.strip() for part in relation.split(".")])))
    return out


@static_check(
    "lint.hardcoded_relation",
    needs=("project",),
    severity="error",
    title="Models read other relations through ref()/source(), never a literal dataset.table.",
    why="A literal `project.dataset.table` is invisible to dbt: no lineage, no build order, no freshness, and the "
    "model reads production even when built in a development or CI environment.",
    fix="Declare the raw table as a source and read it with {{ source('raw', 'orders') }}; read models with ref().",
    examples=Examples(
        bad={f"{STAGING}/stg_orders.sql": STG_ORDERS.replace("{{ source('raw', 'orders') }}",
                                                             "`marketplace-analytics.raw.orders`")},
        good={f"{STAGING}/stg_orders.sql": STG_ORDERS},
    ),
)
def hardcoded_relation(ctx: StaticContext) -> CheckResult:
    findings = []
    unparsed = []
    for model in models(ctx):
        text = stripped(ctx, model)
        tree = parsed_raw(ctx, model)
        if tree is None:
            unparsed.append(model.original_file_path)
            findings.extend(_hardcoded_by_regex(ctx, model, text))
            continue
        named = set(ctes(tree))
        aliases = {(table.alias or "").lower() for table in tree.find_all(exp.Table) if table.alias}
        seen = set()
        for table in tree.find_all(exp.Table):
            parts = [part.name for part in table.parts]
            name = table.name
            if not name or name.startswith(("__dbt_ref__", "__dbt_source__", "__dbt_this__")):
                continue
            if len(parts) == 1 and (name.lower() in named or name.startswith("__dbt_expr_")):
                continue
            if len(parts) == 2 and parts[0].lower() in aliases | named:
                continue  # implicit UNNEST of an array column: FROM t, t.items
            if name.startswith("__dbt_expr_") and all(part.startswith("__dbt_expr_") for part in parts):
                continue
            if isinstance(table.parent, exp.Schema) or table.find_ancestor(exp.Create, exp.Insert, exp.Merge):
                continue
            shown = ".".join(text.placeholders.get(part, part) for part in parts)
            if shown in seen:
                continue
            seen.add(shown)
            literal = [part for part in parts if not part.startswith("__dbt_expr_")]
            findings.append(locate(ctx, model, f"{model.name}: reads `{shown}` directly instead of ref()/source() "
                                               "(no lineage, no environment switching)", _relation_regex(literal)))
    return per_model_result(findings, len(models(ctx)), "models", {"unparsed_models": unparsed})


@static_check(
    "lint.mart_reads_source",
    needs=("project",),
    severity="warning",
    title="Marts and intermediate models build on staging models, not on source() directly.",
    why="Staging is where raw data is renamed, typed and cleaned once. A mart that reads the source repeats (or "
    "skips) that cleaning, so two marts can disagree about the same raw rows.",
    fix="Read the raw table in a staging model (stg_<table>) and ref() it from the mart.",
    examples=Examples(
        bad={f"{MARTS}/fct_orders.sql": _FCT_ORDERS.replace("{{ ref('stg_orders') }}", "{{ source('raw', 'orders') }}")},
        good={f"{STAGING}/stg_orders.sql": STG_ORDERS, f"{MARTS}/fct_orders.sql": _FCT_ORDERS},
    ),
)
def mart_reads_source(ctx: StaticContext) -> CheckResult:
    if missing := no_marts(ctx):
        return missing
    findings = []
    scope = [model for model in models(ctx) if model.layer in ("mart", "intermediate")]
    for model in scope:
        read = [dep.split(".", 2)[-1] for dep in model.depends_on if dep.startswith("source.")] or [
            ".".join(source) for source in model.sources
        ]
        if read:
            findings.append(locate(ctx, model, f"{model.name} ({model.layer}) reads source(s) directly: "
                                               f"{', '.join(read)}", re.compile(r"\bsource\s*\(", re.I)))
    return per_model_result(findings, len(scope), "marts/intermediates")


@static_check(
    "lint.staging_joins",
    needs=("project",),
    severity="warning",
    title="Staging models clean one source table each; joins belong in intermediate models or marts.",
    why="A staging model that joins mixes cleaning with business logic: its grain is no longer its source "
    "table's, and every consumer inherits the join whether it wants it or not.",
    fix="Keep staging 1:1 with its source table and move the join into an intermediate model or the mart.",
    examples=Examples(
        bad={f"{STAGING}/stg_orders.sql": "select\n    orders.id as order_id,\n    orders.buyer_id,\n"
             "    users.country as buyer_country\nfrom {{ source('raw', 'orders') }} as orders\n"
             "join {{ source('raw', 'users') }} as users on users.id = orders.buyer_id\n"},
        good={f"{STAGING}/stg_orders.sql": STG_ORDERS},
    ),
)
def staging_joins(ctx: StaticContext) -> CheckResult:
    scope = [model for model in models(ctx) if model.layer == "staging"]
    if not scope:
        return result("skipped", "skipped: no staging models")
    findings = []
    for model in scope:
        tree = parsed(ctx, model)
        if tree is None:
            if re.search(r"\bjoin\s+(?!unnest\b)", stripped(ctx, model).sql, re.I):
                findings.append(locate(ctx, model, f"{model.name}: staging model joins other relations",
                                       re.compile(r"\bjoin\b", re.I)))
            continue
        joined = [pretty(join.this.sql(dialect=DIALECT))[:80] for join in tree.find_all(exp.Join)
                  if not isinstance(join.this, exp.Unnest)]
        if joined:
            findings.append(locate(ctx, model, f"{model.name}: staging model joins {', '.join(joined)}",
                                   re.compile(r"\bjoin\b|,\s*\{\{\s*(ref|source)", re.I)))
    return per_model_result(findings, len(scope), "staging models")


@static_check(
    "lint.layer_naming",
    needs=("project",),
    severity="warning",
    title="Model names carry their layer's prefix: stg_ in staging/, int_ in intermediate/, fct_/dim_ in marts/.",
    why="Prefixes tell a reader (and a selector such as `dbt build -s fct_*`) what a model is without opening "
    "it; a model whose name and folder disagree is easy to read from the wrong layer.",
    fix="Rename the model to its folder's prefix (stg_, int_, fct_ or dim_), or move it to the folder its name says.",
    examples=Examples(
        bad={f"{STAGING}/stg_orders.sql": STG_ORDERS, f"{MARTS}/orders.sql": _FCT_ORDERS},
        good={f"{STAGING}/stg_orders.sql": STG_ORDERS, f"{MARTS}/fct_orders.sql": _FCT_ORDERS},
    ),
)
def layer_naming(ctx: StaticContext) -> CheckResult:
    findings = []
    for model in models(ctx):
        folder, prefix = model.folder_layer, prefix_layer(model.name)
        if folder and prefix != folder:
            wanted = " or ".join(LAYER_PREFIXES[folder])
            findings.append(locate(ctx, model, f"{model.name} is in a {folder} folder but is not named {wanted}*"))
        elif folder is None and prefix is None:
            findings.append(locate(ctx, model, f"{model.name} is neither in a staging/intermediate/marts folder nor "
                                               "named with a layer prefix"))
    return per_model_result(findings, len(models(ctx)), "models")
