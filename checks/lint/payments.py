"""The payments trap: payment providers retry webhooks, so raw.payments holds the same event
(event_id) more than once. The payments lineage must keep one row per event."""

from __future__ import annotations

import re

from sqlglot import exp

from checks.dbt_project import DIALECT, Model, lineage, locate, parsed, stripped
from checks.dbt_sql import column_name, columns_in, is_star
from checks.lint.support import MARTS, STAGING
from checks.registry import CheckResult, Examples, Finding, result
from checks.static_context import StaticContext
from checks.static_rules import static_check

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
_RANKING = (exp.RowNumber, exp.Rank, exp.DenseRank)
_DEDUP_MACRO = re.compile(r"\{\{-?\s*[\w.]*dedup\w*\s*\(", re.I)

_STG_PAYMENTS = ("select\n    id as payment_id,\n    event_id,\n    order_id,\n    status,\n    amount,\n"
                 "    currency,\n    event_timestamp\nfrom {{ source('raw', 'payments') }}\n")
_DEDUPED = _STG_PAYMENTS + "qualify row_number() over (partition by event_id order by event_timestamp) = 1\n"
_FCT_PAYMENTS = "select\n    event_id,\n    order_id,\n    status,\n    amount,\n    currency\n" \
                "from {{ ref('stg_payments') }}\n"


def _window_patterns(tree: exp.Expr) -> tuple[list[str], list[str]]:
    """Ranking windows over event_id, and whether a filter keeps one row of each."""
    good, bad = [], []
    has_qualify = tree.find(exp.Qualify) is not None
    keeps_first = any(
        isinstance(compare.expression, exp.Literal) and compare.expression.this in ("1", 1)
        for compare in tree.find_all(exp.EQ, exp.LTE)
    ) or any(isinstance(compare.expression, exp.Literal) and compare.expression.this in ("2", 2)
             for compare in tree.find_all(exp.LT))
    for window in tree.find_all(exp.Window):
        function = window.this
        function_name = type(function).__name__.lower()
        is_rank = (
            isinstance(function, _RANKING)
            or function_name in ("rank", "denserank")
            or (isinstance(function, exp.Anonymous) and str(function.this).lower() in ("rank", "dense_rank", "row_number"))
        )
        partition = {column.name.lower() for part in (window.args.get("partition_by") or [])
                     for column in part.find_all(exp.Column)}
        if "event_id" not in partition:
            continue
        if is_rank and (has_qualify or keeps_first):
            good.append(f"{function.sql(dialect=DIALECT)} OVER (PARTITION BY event_id ...) filtered to 1"
                        + (" with QUALIFY" if has_qualify else ""))
        elif is_rank:
            bad.append("ROW_NUMBER() over event_id without a filter keeping one row")
        elif isinstance(function, (exp.FirstValue, exp.LastValue)) or function_name in ("firstvalue", "lastvalue"):
            if tree.find(exp.Distinct) or tree.find(exp.Group):
                good.append(f"{function.sql(dialect=DIALECT)} OVER (PARTITION BY event_id) with DISTINCT/GROUP BY")
    return good, bad


def _dedup_patterns(tree: exp.Expr) -> tuple[list[str], list[str]]:
    """(recognised dedup patterns on event_id, non-dedup patterns seen)."""
    good, bad = _window_patterns(tree)
    for group in tree.find_all(exp.Group):
        if any(column_name(expression) == "event_id" for expression in group.expressions):
            good.append("GROUP BY event_id")
    for select in tree.find_all(exp.Select):
        distinct = select.args.get("distinct")
        if not distinct:
            continue
        if distinct.args.get("on"):
            if "event_id" in columns_in(distinct.args["on"]):
                good.append("DISTINCT ON (event_id)")
            continue
        if any(is_star(projection) for projection in select.expressions):
            bad.append("SELECT DISTINCT * (replays differ in id and timestamps, so they survive)")
            continue
        names = {projection.alias_or_name.lower() for projection in select.expressions}
        read: set[str] = set()
        for projection in select.expressions:
            read |= columns_in(projection)
        if "event_id" in names and not (read & PER_REPLAY_COLUMNS):
            good.append("SELECT DISTINCT over columns that exclude the per-replay id/timestamps")
        elif "event_id" in names:
            bad.append("SELECT DISTINCT including per-replay columns (" + ", ".join(sorted(read & PER_REPLAY_COLUMNS))
                       + ") keeps the replays")
    return good, bad


def model_dedup_patterns(ctx: StaticContext, model: Model) -> tuple[list[str], list[str]]:
    """(recognised dedup patterns on event_id, non-dedup patterns) of one model, by its SQL or, unparsed, by regex."""
    tree = parsed(ctx, model)
    good, bad = _dedup_patterns(tree) if tree is not None else ([], [])
    if macro := _DEDUP_MACRO.search(model.raw_code):
        good.append("dedup macro: " + macro.group(0).strip("{ -("))
    if tree is None:
        sql = stripped(ctx, model).sql
        if re.search(r"partition\s+by\s+[\w.]*event_id", sql, re.I) and re.search(r"qualify|=\s*1\b", sql, re.I):
            good.append("window over event_id with a filter (regex; SQL did not parse)")
        if re.search(r"group\s+by[^;]*\bevent_id\b", sql, re.I):
            good.append("GROUP BY event_id (regex; SQL did not parse)")
        if re.search(r"select\s+distinct\s+\*", sql, re.I):
            bad.append("SELECT DISTINCT *")
    return good, bad


@static_check(
    "lint.payments_dedup_pattern",
    needs=("project",),
    severity="error",
    title="The payments lineage removes replayed events by event_id (window + filter/QUALIFY, GROUP BY event_id, "
    "or a dedup macro); SELECT DISTINCT * is not one.",
    why="Providers retry webhooks: the same payment event arrives several times, each copy with its own row id "
    "and timestamps. Counted as is, revenue is overstated; SELECT DISTINCT * keeps every copy because the copies "
    "differ in those columns.",
    fix="Keep one row per event_id: QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY event_timestamp) = 1, "
    "or GROUP BY event_id.",
    examples=Examples(
        bad={f"{STAGING}/stg_payments.sql": "select distinct *\nfrom {{ source('raw', 'payments') }}\n"},
        good={f"{STAGING}/stg_payments.sql": _DEDUPED},
    ),
)
def payments_dedup_pattern(ctx: StaticContext) -> CheckResult:
    payments = lineage(ctx, "payment", "payments")
    if not payments:
        return result("fail", "no model on the payments lineage (no model named *payment* or reading source payments)")
    recognised: list[dict] = []
    not_dedup: list[Finding] = []
    for model in payments:
        good, bad = model_dedup_patterns(ctx, model)
        for pattern in good:
            found = locate(ctx, model, pattern, re.compile(
                r"partition\s+by[^)]*event_id|group\s+by[^;]*event_id|distinct|dedup\w*\s*\(", re.I))
            recognised.append({"model": model.name, "pattern": pattern, **found.to_json()})
        for pattern in bad:
            not_dedup.append(locate(ctx, model, f"{model.name}: {pattern}",
                                    re.compile(r"select\s+distinct|row_number|partition\s+by", re.I)))
    evidence: dict = {"lineage": [model.name for model in payments], "recognised": recognised,
                      "findings": [found.to_json() for found in not_dedup]}
    if recognised:
        return result("pass", f"dedup on event_id recognised in {recognised[0]['model']}: {recognised[0]['pattern']}",
                      evidence=evidence)
    if not_dedup:
        return result("fail", f"no dedup on event_id; {not_dedup[0].message}", evidence=evidence)
    by_name = {model.name: model for model in payments}
    target = by_name.get("fct_payments") or by_name.get("stg_payments") or payments[-1]
    found = locate(ctx, target, f"no deduplication on event_id in the payments lineage ({', '.join(evidence['lineage'])})")
    evidence["findings"] = [found.to_json()]
    return result("fail", found.message, evidence=evidence)


@static_check(
    "lint.payments_dedup_layer",
    needs=("project",),
    severity="info",
    title="Where replayed payment events are removed: in staging, so every consumer of stg_payments sees one row "
    "per event.",
    why="A layout preference, weighed lightly: removed in staging, every consumer of stg_payments sees one row per "
    "event; removed downstream (an intermediate model, the mart), each new consumer of stg_payments must "
    "deduplicate again. Either is sound; payments.dedup judges the outcome.",
    fix="Move the deduplication on event_id into stg_payments.",
    examples=Examples(
        bad={f"{STAGING}/stg_payments.sql": _STG_PAYMENTS,
             f"{MARTS}/fct_payments.sql": _FCT_PAYMENTS + "qualify row_number() over (partition by event_id) = 1\n"},
        good={f"{STAGING}/stg_payments.sql": _DEDUPED, f"{MARTS}/fct_payments.sql": _FCT_PAYMENTS},
    ),
)
def payments_dedup_layer(ctx: StaticContext) -> CheckResult:
    placed = []
    for model in lineage(ctx, "payment", "payments"):
        good, _ = model_dedup_patterns(ctx, model)
        if good:
            layer = model.layer or "unlayered"
            placed.append({"model": model.name, "layer": layer, "pattern": good[0],
                           **locate(ctx, model, f"{model.name} ({layer}): {good[0]}").to_json()})
    if not placed:
        return result("skipped", "no deduplication on event_id recognised; payments.dedup and "
                                 "lint.payments_dedup_pattern judge that", evidence={"placements": []})
    in_staging = [place for place in placed if place["layer"] == "staging"]
    if in_staging:
        return result("pass", f"replays removed in staging ({in_staging[0]['model']})", evidence={"placements": placed})
    where = ", ".join(f"{place['model']} ({place['layer']})" for place in placed)
    return result("fail", f"replays removed downstream of staging, in {where}: a sound layout, but every other "
                          "consumer of stg_payments must deduplicate again (a preference, not a missed trap)",
                  score=0.5, evidence={"placements": placed})
