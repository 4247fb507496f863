"""The confirmed_at trap: the legacy order service writes orders.confirmed_at as New York
wall-clock time in a DATETIME column, without a zone. Read as UTC, or shifted by a fixed
offset, it is wrong by an hour for half of the year."""

from __future__ import annotations

import re

from sqlglot import exp

from checks.dbt_project import DIALECT, Model, locate, models, parsed, project_macros, stripped
from checks.lint.support import STAGING
from checks.registry import CheckResult, Examples, Finding, result
from checks.static_context import StaticContext
from checks.static_rules import static_check

DST_ZONES = {
    "america/new_york",
    "us/eastern",
    "est5edt",
    "america/detroit",
    "america/toronto",
    "america/indiana/indianapolis",
}
_FIXED_ZONE = re.compile(r"^(utc|gmt|z|est|edt|etc/gmt[+-]?\d*|[+-]\d{1,2}(:?\d{2})?|utc[+-]\d.*)$", re.I)
_DST_ZONE_TEXT = re.compile(r"america/new_york|us/eastern|est5edt", re.I)
_FIXED_OFFSET_TEXT = re.compile(r"interval\s+-?\d+\s+hour|['\"][+-]\d{1,2}(:?\d{2})?['\"]|['\"](utc|est|edt)['\"]", re.I)
_CONFIRMED_AT = re.compile(r"confirmed_at", re.I)
_SHIFTS = (exp.TimestampAdd, exp.TimestampSub, exp.DatetimeAdd, exp.DatetimeSub, exp.DateAdd, exp.DateSub)

_STG_ORDERS = "select\n    id as order_id,\n    buyer_id,\n    {confirmed_at} as confirmed_at\n" \
              "from {{{{ source('raw', 'orders') }}}}\n"


def _mentions_confirmed(node: exp.Expr) -> bool:
    return any("confirmed_at" in (column.name or "").lower() for column in node.find_all(exp.Column))


def _zone_of(node: exp.Expr) -> str | None:
    zone = node.args.get("zone")
    if isinstance(zone, exp.Literal):
        return str(zone.this)
    return zone.sql(dialect=DIALECT) if zone is not None else None


def _timezone_patterns(tree: exp.Expr, placeholders: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """(correct conversions, fixed-offset conversions, implicit-UTC reads) of confirmed_at."""
    good, fixed, implicit = [], [], []
    for node in tree.find_all(exp.Timestamp, exp.StrToTime, exp.TimeStrToTime):
        if not _mentions_confirmed(node):
            continue
        zone = _zone_of(node)
        shown = node.sql(dialect=DIALECT)
        if zone is None:
            implicit.append(shown)
        elif zone.strip().lower() in DST_ZONES:
            good.append(shown)
        elif zone in placeholders or zone.strip("'\"") in placeholders:
            good.append(f"{shown} (zone from {placeholders.get(zone.strip(chr(39)), zone)})")
        elif _FIXED_ZONE.match(zone.strip()):
            fixed.append(f"{shown}: '{zone}' is a fixed offset, not New York time")
        else:
            fixed.append(f"{shown}: zone '{zone}' is not the legacy service's America/New_York")
    for node in tree.find_all(*_SHIFTS):
        unit = str(node.args.get("unit") or "").upper()
        if _mentions_confirmed(node.this) and ("HOUR" in unit or "MINUTE" in unit):
            fixed.append(f"{node.sql(dialect=DIALECT)}: a fixed offset is wrong half the year (DST)")
    for arithmetic in tree.find_all(exp.Add, exp.Sub):
        if isinstance(arithmetic.expression, exp.Interval) and _mentions_confirmed(arithmetic.this):
            fixed.append(f"{arithmetic.sql(dialect=DIALECT)}: a fixed offset is wrong half the year (DST)")
    for cast in tree.find_all(exp.Cast, exp.TryCast):
        target = cast.args.get("to")
        if target is not None and target.is_type("timestamp", "timestamptz") and _mentions_confirmed(cast.this):
            if not cast.find_ancestor(exp.Timestamp):
                implicit.append(cast.sql(dialect=DIALECT))
    return good, fixed, implicit


def _regex_patterns(sql: str) -> tuple[list[str], list[str]]:
    """(correct conversions, fixed-offset shifts) found by regex, for SQL that did not parse."""
    good = re.findall(r"confirmed_at[^;]{0,160}?['\"](?:america/new_york|us/eastern|est5edt)['\"]", sql, re.I)
    fixed = [found.group(0) for found in re.finditer(
        r"(timestamp|datetime)_(add|sub)\s*\([^;]{0,80}?confirmed_at[^;]{0,80}?interval\s+-?\d+\s+hour", sql, re.I)]
    return good, fixed


def _dst_macros(ctx: StaticContext) -> list[str]:
    """The project's macros that name a DST-aware New York zone."""
    zone = re.compile(r"['\"](america/new_york|us/eastern|est5edt)['\"]", re.I)
    return sorted(name for name, sql in project_macros(ctx).items() if name and zone.search(sql))


def _macro_conversions(ctx: StaticContext, scope: list[Model]) -> list[dict]:
    """Calls of a project macro doing the conversion (not visible when the model was not compiled)."""
    conversions = []
    for model in scope:
        for name in _dst_macros(ctx):
            if re.search(r"\b" + re.escape(name) + r"\s*\(", model.raw_code):
                found = locate(ctx, model, f"macro {name}() converts with a DST-aware zone", re.compile(name))
                conversions.append({"model": model.name, "expression": f"{name}(...) (macro)", **found.to_json()})
    return conversions


@static_check(
    "lint.confirmed_at_timezone",
    needs=("project",),
    severity="error",
    title="orders.confirmed_at (New York wall-clock DATETIME) is converted with an explicit DST-aware zone, e.g. "
    "TIMESTAMP(confirmed_at, 'America/New_York'), not a fixed offset.",
    why="confirmed_at holds New York local time without a zone. Read as UTC it is 4-5 hours off; shifted by a "
    "fixed 5 hours it is still an hour off during daylight saving time, which moves orders across days and "
    "breaks daily confirmation metrics.",
    fix="Convert with the zone name: TIMESTAMP(confirmed_at, 'America/New_York'), which follows daylight saving.",
    examples=Examples(
        bad={f"{STAGING}/stg_orders.sql": _STG_ORDERS.format(
            confirmed_at="timestamp_add(cast(confirmed_at as timestamp), interval 5 hour)")},
        good={f"{STAGING}/stg_orders.sql": _STG_ORDERS.format(confirmed_at="timestamp(confirmed_at, 'America/New_York')")},
    ),
)
def confirmed_at_timezone(ctx: StaticContext) -> CheckResult:
    scope = [model for model in models(ctx) if "confirmed_at" in (model.raw_code + (model.compiled_code or "")).lower()]
    if not scope:
        return result("fail", "no model selects orders.confirmed_at")
    conversions: list[dict] = []
    findings: list[Finding] = []
    implicit_seen: list[Finding] = []
    for model in scope:
        tree = parsed(ctx, model)
        if tree is not None:
            good, fixed, implicit = _timezone_patterns(tree, stripped(ctx, model).placeholders)
        else:
            (good, fixed), implicit = _regex_patterns(stripped(ctx, model).sql), []
        for expression in good:
            found = locate(ctx, model, expression, _DST_ZONE_TEXT)
            conversions.append({"model": model.name, "expression": expression, **found.to_json()})
        findings.extend(locate(ctx, model, f"{model.name}: {shift}", _FIXED_OFFSET_TEXT) for shift in fixed)
        implicit_seen.extend(locate(ctx, model, f"{model.name}: {read} reads the New York wall-clock time as UTC",
                                    _CONFIRMED_AT) for read in implicit)
    if not conversions:
        conversions = _macro_conversions(ctx, scope)
    evidence: dict = {"models": [model.name for model in scope], "conversions": conversions}
    if conversions and not findings:
        first = conversions[0]
        return result("pass", f"explicit conversion in {first['model']}: {first['expression']}",
                      evidence={**evidence, "findings": []})
    if not conversions and not findings:
        findings = implicit_seen or [locate(
            ctx, next((model for model in scope if "orders" in model.name), scope[0]),
            "confirmed_at passes through without a timezone conversion (it is New York wall-clock time)", _CONFIRMED_AT)]
    evidence["findings"] = [found.to_json() for found in findings]
    return result("fail", f"{len(findings)} finding(s): {findings[0].message}", score=0.5 if conversions else 0.0,
                  evidence=evidence)
