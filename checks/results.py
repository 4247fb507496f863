"""Result checks: the candidate's marts against the generator's ground truth.

Numbers are compared as numbers (money to the cent, instants to the second), never as
strings. Each check names the wrong approach it recognises (SELECT DISTINCT *, wall time
read as UTC, a fixed offset, filtering is_active, unconverted currencies) in its message.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

from raw_layer.schema import EXCHANGE_RATES

from checks.marts import (
    CONTRACT_TIMESTAMP_COLUMNS, MARTS, TEMPORAL_TYPES, MartProblem, ResultContext, as_date, as_decimal, jsonable,
    parse_instant, query, sample,
)
from checks.registry import CheckResult, Examples, check, result

CENT = Decimal("0.01")
SECOND = timedelta(seconds=1)
RATES = {code: Decimal(rate) for code, rate in EXCHANGE_RATES.items()}


def _fail(problem: MartProblem) -> CheckResult:
    """The mart could not be read as the contract requires: a fail (the contract's marts are the delivery)."""
    return result("fail", str(problem), evidence={"problem": str(problem), "observed": not problem.unobserved})


def _sql(model_path: str, bad: str, good: str) -> Examples:
    """A result check's examples: one model's SQL, wrong then right."""
    return Examples(bad={model_path: bad}, good={model_path: good})


def _verdict(score: float, ok: bool, message: str, evidence: dict[str, Any]) -> CheckResult:
    return result("pass" if ok else "fail", message, score=score, evidence=evidence)


def _usd(amount: Decimal, currency: str) -> Decimal:
    return (amount * RATES.get(currency, Decimal(0))).quantize(CENT)


@check("payments.dedup", stage="result", needs=("build",), trap="Duplicate payment events",
       title="fct_payments holds one row per payment event, with the right USD total, wherever the replays were "
             "removed",
       why="The payment webhook delivers some events more than once, with a new id and new timestamps; every "
           "replay kept inflates revenue. SELECT DISTINCT * keeps them, because the replays differ in those "
           "columns.",
       fix="Keep one row per event_id, e.g. the first delivery: qualify row_number() over (partition by event_id "
           "order by event_timestamp, id) = 1, in staging or anywhere before fct_payments.",
       examples=_sql("models/staging/stg_payments.sql",
                     "select distinct * from {{ source('raw', 'payments') }}",
                     "select * from {{ source('raw', 'payments') }}\n"
                     "qualify row_number() over (partition by event_id order by event_timestamp, id) = 1"))
def payments_dedup(ctx: ResultContext) -> CheckResult:
    try:
        mart = ctx.read("fct_payments", ["event_id", "amount", "currency"])
    except MartProblem as problem:
        return _fail(problem)
    truth = ctx.truth["payment_events"]
    counts = Counter(r["event_id"] for r in mart.rows)
    duplicated = {e: n for e, n in counts.items() if n > 1}
    missing = sorted(set(truth) - set(counts))
    extra = sorted(set(counts) - set(truth))
    exactly_once = sum(1 for e in truth if counts.get(e) == 1)
    total = sum((_usd(cast(Decimal, as_decimal(r["amount"])), r["currency"]) for r in mart.rows if r["amount"] is not None),
                Decimal(0))
    expected_total = Decimal(ctx.truth["payments_summary"]["total_usd"])
    evidence: dict[str, Any] = {
        "sql": mart.sql, "relation": mart.relation,
        "judged": "fct_payments, the contract's mart: where the replays are removed (staging, an intermediate "
                  "model, the mart) is the candidate's choice",
        "expected": {"rows": len(truth), "distinct_event_ids": len(truth), "total_usd": str(expected_total)},
        "observed": {"rows": len(mart.rows), "distinct_event_ids": len(counts), "total_usd": str(total),
                     "event_ids_more_than_once": len(duplicated), "missing_event_ids": len(missing),
                     "unknown_event_ids": len(extra)},
        "sample_duplicated": sample([{"event_id": e, "rows": n} for e, n in duplicated.items()]),
        "sample_missing": sample(missing),
        "stg_payments": _staging_payments(ctx),
        "total_usd_method": "the mart's amount and currency converted with the exercise's rates, rounded to the "
                            "cent per row (the candidate's own USD column is judged by money.usd_conversion)",
        "tolerance": "half a cent per event: rounding per row or per sum are both sound; the engine keeps NUMERIC "
                     "exact (38 digits, 9 decimals), so no engine rounding is in the figure",
    }
    problems = []
    if duplicated:
        rows_replayed = sum(n - 1 for n in duplicated.values())
        problems.append(f"{len(duplicated)} event_id(s) appear more than once ({rows_replayed} extra rows: webhook "
                        "replays differ in id and timestamps, so SELECT DISTINCT * keeps them)")
    if missing:
        problems.append(f"{len(missing)} payment event(s) missing")
    if extra:
        problems.append(f"{len(extra)} event_id(s) not in the source")
    if abs(total - expected_total) > CENT * max(1, len(truth)) / 2:
        problems.append(f"USD total {total} differs from {expected_total}")
    score = exactly_once / len(truth) * (1.0 if not extra else 0.5)
    message = "; ".join(problems) or f"one row per event_id: {len(truth)} events, USD total {expected_total}"
    return _verdict(score, not problems, message, evidence)


def _staging_payments(ctx: ResultContext) -> dict[str, Any] | str:
    """What stg_payments holds, for the panel's information only: one-to-one with the source is a sound design."""
    try:
        staging = ctx.read("stg_payments", ["event_id"])
    except MartProblem as problem:
        return f"not read: {problem}"
    counts = Counter(r["event_id"] for r in staging.rows)
    replayed = sum(1 for n in counts.values() if n > 1)
    return {"sql": staging.sql, "rows": len(staging.rows), "distinct_event_ids": len(counts),
            "event_ids_more_than_once": replayed,
            "reading": "deduplicated in staging" if not replayed
            else "one row per delivery (replays kept); not judged here, the mart is"}


@check("orders.confirmed_at_utc", stage="result", needs=("build",), trap="Timezone-naive confirmed_at",
       title="fct_orders.confirmed_at is a UTC TIMESTAMP equal to the true confirmation instant",
       why="The source stores confirmed_at as New York wall-clock time without a zone. Read as UTC it is 4 or 5 "
           "hours off; a fixed +5 h shift is wrong for the summer months (daylight saving time).",
       fix="Convert with the zone, which knows daylight saving time: timestamp(confirmed_at, 'America/New_York').",
       examples=_sql("models/marts/fct_orders.sql",
                     "select order_id, timestamp(confirmed_at) as confirmed_at from {{ ref('stg_orders') }}",
                     "select order_id, timestamp(confirmed_at, 'America/New_York') as confirmed_at from {{ ref('stg_orders') }}"))
def orders_confirmed_at_utc(ctx: ResultContext) -> CheckResult:
    try:
        mart = ctx.read("fct_orders", ["order_id", "confirmed_at"])
    except MartProblem as problem:
        return _fail(problem)
    truth = ctx.truth["orders"]
    observed = {r["order_id"]: r["confirmed_at"] for r in mart.rows}
    right, wrong, as_utc, fixed_minus5 = 0, [], 0, 0
    for order_id, expected in truth.items():
        got = parse_instant(observed.get(order_id))
        want = parse_instant(expected["confirmed_at_utc"])
        if order_id not in observed:
            wrong.append({"order_id": order_id, "expected": expected["confirmed_at_utc"], "observed": "missing row"})
            continue
        if (got is None and want is None) or (got and want and abs(got - want) <= SECOND):
            right += 1
            continue
        wall = parse_instant(expected["confirmed_at_new_york"]) if expected["confirmed_at_new_york"] else None
        if got and wall:
            as_utc += abs(got - wall) <= SECOND
            fixed_minus5 += abs(got - (wall + timedelta(hours=5))) <= SECOND
        wrong.append({"order_id": order_id, "source_new_york_wall_time": expected["confirmed_at_new_york"],
                      "expected_utc": expected["confirmed_at_utc"], "observed": jsonable(observed.get(order_id))})
    column_type = mart.column_types["confirmed_at"]
    share = right / len(truth)
    diagnosis = ""
    if wrong and as_utc >= len(wrong) * 0.9:
        diagnosis = "the New York wall-clock value was read as UTC"
    elif wrong and fixed_minus5 >= len(wrong) * 0.9:
        diagnosis = "a fixed +5 h shift was applied: wrong while daylight saving time is in force"
    type_ok = column_type == "TIMESTAMP"
    ok = not wrong and type_ok
    if ok:
        message = f"all {len(truth)} orders carry the true UTC instant"
    else:
        parts = [f"{len(wrong)} of {len(truth)} orders have a wrong confirmed_at" + (f" ({diagnosis})" if diagnosis else "")]
        if not type_ok:
            parts.append(f"column type is {column_type}, not TIMESTAMP")
        message = "; ".join(p for p in parts if not p.startswith("0 of"))
    return _verdict(share * (1.0 if type_ok else 0.5), ok, message, {
        "sql": mart.sql, "relation": mart.relation, "column_type": column_type,
        "expected": "TIMESTAMP(confirmed_at, 'America/New_York') for each order, NULL if never confirmed",
        "observed": {"orders_right": right, "orders_wrong": len(wrong), "wrong_equal_to_wall_time_as_utc": as_utc,
                     "wrong_equal_to_fixed_plus_5h": fixed_minus5},
        "tolerance": "1 second", "sample_wrong": sample(wrong),
    })


@check("users.soft_deletes", stage="result", needs=("build",), trap="Soft-deleted users",
       title="dim_users holds exactly the users whose deleted_at is NULL (suspended users stay)",
       why="Deleted users are kept in the source with deleted_at set; keeping them counts people who left. "
           "is_active is a different thing (suspension): filtering on it drops users who still exist.",
       fix="Filter on deleted_at, not on is_active: where deleted_at is null.",
       examples=_sql("models/marts/dim_users.sql",
                     "select * from {{ ref('stg_users') }} where is_active",
                     "select * from {{ ref('stg_users') }} where deleted_at is null"))
def users_soft_deletes(ctx: ResultContext) -> CheckResult:
    try:
        mart = ctx.read("dim_users", ["user_id"])
    except MartProblem as problem:
        return _fail(problem)
    users = ctx.truth["users"]
    expected = set(ctx.truth["active_user_ids"])
    counts = Counter(r["user_id"] for r in mart.rows)
    got = set(counts)
    missing, extra = sorted(expected - got), sorted(got - expected)
    deleted_kept = [u for u in extra if u in users and users[u]["deleted"]]
    suspended_dropped = [u for u in missing if users[u]["suspended"]]
    duplicates = sorted(u for u, n in counts.items() if n > 1)
    problems = []
    if deleted_kept:
        problems.append(f"{len(deleted_kept)} soft-deleted user(s) kept")
    if suspended_dropped:
        problems.append(f"{len(suspended_dropped)} suspended (not deleted) user(s) dropped: filtering is_active "
                        "instead of deleted_at")
    other_missing = len(missing) - len(suspended_dropped)
    if other_missing:
        problems.append(f"{other_missing} existing user(s) missing")
    if len(extra) > len(deleted_kept):
        problems.append(f"{len(extra) - len(deleted_kept)} unknown user_id(s)")
    if duplicates:
        problems.append(f"{len(duplicates)} user_id(s) appear more than once")
    wrong = len(missing) + len(extra) + len(duplicates)
    return _verdict(1 - wrong / len(expected), not problems,
                    "; ".join(problems) or f"exactly the {len(expected)} users not soft-deleted", {
                        "sql": mart.sql, "relation": mart.relation,
                        "expected": {"users": len(expected), "soft_deleted_excluded": len(users) - len(expected),
                                     "suspended_included": sum(u["suspended"] for u in users.values())},
                        "observed": {"rows": len(mart.rows), "deleted_kept": len(deleted_kept),
                                     "suspended_dropped": len(suspended_dropped), "missing": len(missing),
                                     "duplicates": len(duplicates)},
                        "sample_deleted_kept": sample(deleted_kept), "sample_missing": sample(missing),
                    })


@check("users.country_nulls", stage="result", needs=("build",), trap="Missing country codes",
       title="dim_users.country_code is never NULL: unknown countries get an explicit placeholder, known ones are "
             "kept",
       why="Some users have no country; a NULL silently drops them from every group-by-country report and join.",
       fix="Replace only the missing value with an explicit placeholder, and keep the known codes as they are: "
           "coalesce(country_code, 'UNKNOWN').",
       examples=_sql("models/marts/dim_users.sql",
                     "select user_id, country_code from {{ ref('stg_users') }}",
                     "select user_id, coalesce(country_code, 'UNKNOWN') as country_code from {{ ref('stg_users') }}"))
def users_country_nulls(ctx: ResultContext) -> CheckResult:
    try:
        mart = ctx.read("dim_users", ["user_id", "country_code"])
    except MartProblem as problem:
        return _fail(problem)
    users = ctx.truth["users"]
    nulls = [r["user_id"] for r in mart.rows if r["country_code"] in (None, "")]
    changed = [{"user_id": r["user_id"], "expected": users[r["user_id"]]["country_code"], "observed": r["country_code"]}
               for r in mart.rows if r["user_id"] in users and users[r["user_id"]]["country_code"]
               and r["country_code"] != users[r["user_id"]]["country_code"]]
    placeholders = Counter(r["country_code"] for r in mart.rows
                           if r["user_id"] in users and users[r["user_id"]]["country_code"] is None)
    problems = []
    if nulls:
        problems.append(f"{len(nulls)} NULL country_code(s)")
    if changed:
        problems.append(f"{len(changed)} known country code(s) altered")
    if not mart.rows:
        problems.append("dim_users is empty")
    rows = max(len(mart.rows), 1)
    return _verdict(1 - (len(nulls) + len(changed)) / rows, not problems,
                    "; ".join(problems) or f"no NULL; unknown countries shown as {dict(placeholders)}", {
                        "sql": mart.sql, "relation": mart.relation,
                        "expected": "no NULL; users with a known country keep it",
                        "observed": {"rows": len(mart.rows), "nulls": len(nulls), "altered": len(changed),
                                     "placeholders_used": {str(k): v for k, v in placeholders.items()}},
                        "sample_null": sample(nulls), "sample_altered": sample(changed),
                    })


def _compare_usd(rows: list[dict[str, Any]], key: str, column: str, truth: dict[str, Any], truth_field: str,
                 source_amount: str, source_currency: str) -> tuple[int, list[dict[str, Any]], int]:
    """(matches, mismatches, left unconverted) of a *_usd column against the truth, to the cent."""
    right, wrong, unconverted = 0, [], 0
    for row in rows:
        expected = truth.get(row[key])
        if expected is None:
            continue
        want = Decimal(expected[truth_field])
        got = as_decimal(row[column])
        if got is not None and abs(got - want) <= CENT:
            right += 1
            continue
        original = Decimal(expected[source_amount])
        unconverted += got is not None and expected[source_currency] != "USD" and abs(got - original) <= CENT
        wrong.append({key: row[key], "amount": expected[source_amount], "currency": expected[source_currency],
                      "expected_usd": expected[truth_field], "observed": jsonable(got)})
    return right, wrong, unconverted


@check("money.usd_conversion", stage="result", needs=("build",), trap="Multi-currency amounts",
       title="USD columns (fct_orders.total_amount_usd, fct_payments.amount_usd, dim_products.price_usd) match the "
             "seed rates",
       why="Amounts come in USD, EUR and GBP; summing them unconverted mixes currencies and misstates every total.",
       fix="Join the exchange-rate seed on the currency and multiply, rounding to cents: round(total_amount * "
           "usd_rate, 2) as total_amount_usd.",
       examples=_sql("models/marts/fct_orders.sql",
                     "select order_id, total_amount as total_amount_usd from {{ ref('stg_orders') }}",
                     "select o.order_id, round(o.total_amount * r.usd_rate, 2) as total_amount_usd\n"
                     "from {{ ref('stg_orders') }} o join {{ ref('exchange_rates') }} r on r.currency_code = o.currency"))
def money_usd_conversion(ctx: ResultContext) -> CheckResult:
    targets = [
        ("fct_orders", "order_id", "total_amount_usd", ctx.truth["orders"], "total_amount_usd", "total_amount", "currency"),
        ("fct_payments", "event_id", "amount_usd", ctx.truth["payment_events"], "amount_usd", "amount", "currency"),
        ("dim_products", "product_id", "price_usd", ctx.truth["products"], "price_usd", "price_amount", "price_currency"),
    ]
    evidence: dict[str, Any] = {"rule": "amount x usd_rate (USD 1.00, EUR 1.09, GBP 1.27), rounded to cents",
                                "tolerance": "0.01"}
    right_total, compared, problems = 0, 0, []
    for model, key, column, truth, field_name, amount, currency in targets:
        try:
            mart = ctx.read(model, [key, column])
        except MartProblem as problem:
            problems.append(str(problem))
            compared += len(truth)
            evidence[model] = {"problem": str(problem)}
            continue
        right, wrong, unconverted = _compare_usd(mart.rows, key, column, truth, field_name, amount, currency)
        right_total += right
        compared += len(truth)
        evidence[model] = {"sql": mart.sql, "rows_right": right, "rows_wrong": len(wrong),
                           "left_in_original_currency": unconverted, "sample_wrong": sample(wrong)}
        if wrong:
            note = f" ({unconverted} left in EUR/GBP unconverted)" if unconverted else ""
            problems.append(f"{model}.{column}: {len(wrong)} row(s) off by more than a cent{note}")
    score = right_total / compared if compared else 0.0
    return _verdict(score, not problems,
                    "; ".join(problems) or f"{right_total} USD amounts match to the cent", evidence)


@check("products.future_updated_at", stage="result", needs=("build",), trap="Future updated_at (clock skew)",
       title="No product is lost over a future updated_at, and no contract timestamp column of a mart lies after "
             "the extraction time",
       why="Some products carry an updated_at after the extraction (a skewed clock). Dropping them loses products; "
           "passing the value through puts timestamps from the future in the marts. Columns the candidate adds "
           "beside the contract's (an audit copy of the raw value) are listed, not judged.",
       fix="Keep every product and cap the timestamp at the extraction time, keeping the raw value beside it if "
           "useful: least(updated_at, _airbyte_extracted_at) as updated_at.",
       examples=_sql("models/marts/dim_products.sql",
                     "select * from {{ ref('stg_products') }} where updated_at <= current_timestamp()",
                     "select product_id, least(updated_at, _airbyte_extracted_at) as updated_at,\n"
                     "  updated_at as reported_updated_at\n"
                     "from {{ source('raw', 'products') }}"))
def products_future_updated_at(ctx: ResultContext) -> CheckResult:
    extracted_at = ctx.extracted_at
    evidence: dict[str, Any] = {"extracted_at": ctx.truth["extracted_at"]}
    problems = []
    kept = 0.0
    kept_read = False
    try:
        mart = ctx.read("dim_products", ["product_id"])
        kept_read = True
        got = {r["product_id"] for r in mart.rows}
        future = {p for p, t in ctx.truth["products"].items() if t["future_updated_at"]}
        lost = sorted(set(ctx.truth["products"]) - got)
        lost_future = sorted(set(lost) & future)
        evidence["dim_products"] = {"sql": mart.sql, "expected_products": len(ctx.truth["products"]),
                                    "observed": len(got), "lost": len(lost), "lost_with_future_updated_at": len(lost_future),
                                    "sample_lost": sample(lost)}
        if lost:
            problems.append(f"dim_products lost {len(lost)} product(s)" +
                            (f", {len(lost_future)} of them with a future updated_at" if lost_future else ""))
        else:
            kept = 1.0
    except MartProblem as problem:
        problems.append(str(problem))
    contract_scan: list[Any] = []
    own_scan: list[Any] = []
    for model in MARTS:
        try:
            relation, types = ctx.table_columns(model)
        except MartProblem:
            continue
        contract = CONTRACT_TIMESTAMP_COLUMNS.get(model, ())
        for column, type_ in sorted(types.items()):
            if type_ not in TEMPORAL_TYPES:
                if column in contract:
                    problems.append(f"{model}.{column} is {type_}, not a TIMESTAMP, DATETIME or DATE")
                continue
            sql = f"SELECT MAX(`{column}`) AS latest FROM `{relation}`"
            rows = query(ctx.client, sql)
            latest = parse_instant(rows[0]["latest"]) if rows else None
            seen = {"mart": model, "column": column, "latest": jsonable(latest),
                    "after_extraction": bool(latest and latest > extracted_at), "sql": sql}
            (contract_scan if column in contract else own_scan).append(seen)
    updated_at_seen = any(c["mart"] == "dim_products" and c["column"] == "updated_at" for c in contract_scan)
    if kept_read and not updated_at_seen and not any(p.startswith("dim_products.updated_at") for p in problems):
        problems.append("dim_products lacks updated_at (a contract column), so the clock-skew handling is not observed")
    late_columns = [c for c in contract_scan if c["after_extraction"]]
    own_late = [c for c in own_scan if c["after_extraction"]]
    evidence["judged"] = {m: list(cols) for m, cols in CONTRACT_TIMESTAMP_COLUMNS.items()}
    evidence["timestamp_columns_scanned"] = len(contract_scan)
    evidence["columns_after_extraction"] = late_columns
    evidence["candidate_columns_not_judged"] = own_scan
    if late_columns:
        problems.append(f"{len(late_columns)} contract column(s) hold timestamps after the extraction time: "
                        + ", ".join(f"{c['mart']}.{c['column']}" for c in late_columns))
    own_note = ""
    if own_late:
        own_note = (f"; the candidate's own column(s) {', '.join(c['mart'] + '.' + c['column'] for c in own_late)} "
                    "hold later values (audit copies beside the contract's columns, not judged)")
    score = kept * 0.5 + (0.5 if updated_at_seen and not late_columns else 0.0)
    return _verdict(score, not problems,
                    ("; ".join(problems) or f"all products kept; the {len(contract_scan)} contract timestamp columns "
                     "lie within the extraction time") + own_note,
                    evidence)


@check("sales.gmv", stage="result", needs=("build",),
       title="fct_daily_sales matches GMV per UTC order date x shipping country x top-level category",
       why="GMV is the business's headline number: it counts only items of orders that went through (confirmed, "
           "processing, shipped, delivered), in USD, on the order's UTC date, under the top-level category.",
       fix="Sum total_price in USD of the items of orders with a GMV status, grouped by date(created_at) in UTC, "
           "shipping country and the root of the category tree.",
       examples=_sql("models/marts/fct_daily_sales.sql",
                     "select date(created_at) as order_date, sum(total_price) as gmv_usd from {{ ref('stg_order_items') }} group by 1",
                     "select date(o.created_at) as order_date, o.shipping_country, c.top_level_category,\n"
                     "  sum(i.total_price_usd) as gmv_usd, count(distinct o.order_id) as order_count\n"
                     "from {{ ref('int_order_items_usd') }} i join {{ ref('stg_orders') }} o using (order_id)\n"
                     "join {{ ref('int_categories') }} c using (category_id)\n"
                     "where o.status in ('confirmed', 'processing', 'shipped', 'delivered')\n"
                     "group by 1, 2, 3"))
def sales_gmv(ctx: ResultContext) -> CheckResult:
    columns = ["order_date", "shipping_country", "top_level_category", "gmv_usd", "order_count"]
    try:
        mart = ctx.read("fct_daily_sales", columns)
    except MartProblem as problem:
        return _fail(problem)
    truth = {(d["order_date"], d["shipping_country"], d["top_level_category"]): d for d in ctx.truth["daily_sales"]}
    observed: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in mart.rows:
        observed.setdefault((as_date(row["order_date"]), row["shipping_country"], row["top_level_category"]), []).append(row)
    right, wrong = 0, []
    for key, want in truth.items():
        rows = observed.get(key, [])
        tolerance = max(CENT, Decimal("0.005") * want["item_count"])
        got_gmv = sum((as_decimal(r["gmv_usd"]) or Decimal(0) for r in rows), Decimal(0))
        got_orders = sum(int(r["order_count"] or 0) for r in rows)
        if len(rows) == 1 and abs(got_gmv - Decimal(want["gmv_usd"])) <= tolerance and got_orders == want["order_count"]:
            right += 1
        else:
            wrong.append({"order_date": key[0], "shipping_country": key[1], "top_level_category": key[2],
                          "expected_gmv_usd": want["gmv_usd"], "observed_gmv_usd": str(got_gmv) if rows else None,
                          "expected_order_count": want["order_count"], "observed_order_count": got_orders if rows else None,
                          "rows": len(rows)})
    extra = sorted(k for k in observed if k not in truth)
    expected_total = sum(Decimal(d["gmv_usd"]) for d in truth.values())
    got_total = sum((as_decimal(r["gmv_usd"]) or Decimal(0) for r in mart.rows), Decimal(0))
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} of {len(truth)} cells differ")
    if extra:
        problems.append(f"{len(extra)} cell(s) that should not exist (non-GMV statuses, wrong date or category?)")
    score = right / len(truth) * (len(truth) / (len(truth) + len(extra)))
    return _verdict(score, not problems,
                    "; ".join(problems) + f" (total GMV {got_total} vs {expected_total})" if problems
                    else f"all {len(truth)} cells match; total GMV {expected_total}", {
                        "sql": mart.sql, "relation": mart.relation,
                        "definition": "items of confirmed/processing/shipped/delivered orders, total_price in USD; "
                                      "order_date = UTC date of orders.created_at",
                        "tolerance": "0.01, or 0.005 per item in the cell (rounding per row vs per sum)",
                        "expected": {"cells": len(truth), "total_gmv_usd": str(expected_total)},
                        "observed": {"rows": len(mart.rows), "cells_right": right, "cells_wrong": len(wrong),
                                     "extra_cells": len(extra), "total_gmv_usd": str(got_total)},
                        "sample_wrong": sample(wrong), "sample_extra": sample([list(k) for k in extra]),
                    })


@check("sellers.current_tier", stage="result", needs=("build",),
       title="The current tier per seller (fct_seller_performance, dim_users) matches the open SCD2 period",
       why="users.seller_tier lags the tier history for some sellers; the history table (one row per period) is "
           "the source of truth, and the current tier is its open period.",
       fix="Take the tier of the period with effective_to is null from seller_tier_history, not users.seller_tier.",
       examples=_sql("models/marts/fct_seller_performance.sql",
                     "select user_id as seller_id, seller_tier as current_tier from {{ ref('stg_users') }}",
                     "select seller_id, tier as current_tier from {{ ref('stg_seller_tier_history') }} where effective_to is null"))
def sellers_current_tier(ctx: ResultContext) -> CheckResult:
    try:
        mart = ctx.read("fct_seller_performance", ["seller_id", "current_tier"])
    except MartProblem as problem:
        return _fail(problem)
    sellers = ctx.truth["sellers"]
    users = ctx.truth["users"]
    observed = {r["seller_id"]: r["current_tier"] for r in mart.rows}
    right, wrong, stale = 0, [], 0
    for seller_id, want in sellers.items():
        got = observed.get(seller_id, "missing row")
        if got == want["current_tier"]:
            right += 1
        else:
            stale += users[seller_id]["stale_seller_tier"]
            wrong.append({"seller_id": seller_id, "expected": want["current_tier"], "observed": got})
    extra = sorted(set(observed) - set(sellers))
    evidence: dict[str, Any] = {"sql": mart.sql, "relation": mart.relation,
                                "expected": {"sellers": len(sellers)},
                                "observed": {"rows": len(mart.rows), "right": right, "wrong": len(wrong),
                                             "not_sellers": len(extra)},
                                "sample_wrong": sample(wrong), "sample_not_sellers": sample(extra)}
    problems = []
    if wrong:
        stale_note = (f"; {stale} of them are sellers whose users.seller_tier lags the history"
                      if stale >= len(wrong) * 0.5 else "")
        problems.append(f"{len(wrong)} of {len(sellers)} sellers have a wrong current tier{stale_note}")
    if extra:
        problems.append(f"{len(extra)} row(s) that are not sellers")
    dim_right = dim_total = 0
    try:
        dim = ctx.read("dim_users", ["user_id", "current_seller_tier"])
        for row in dim.rows:
            if row["user_id"] in users:
                dim_total += 1
                dim_right += row["current_seller_tier"] == users[row["user_id"]]["current_seller_tier"]
        evidence["dim_users"] = {"sql": dim.sql, "right": dim_right, "compared": dim_total}
        if dim_right != dim_total:
            problems.append(f"dim_users.current_seller_tier wrong for {dim_total - dim_right} user(s)")
    except MartProblem as problem:
        evidence["dim_users"] = f"not checked: {problem}"
        problems.append(str(problem))
    score = (right + dim_right) / (len(sellers) + max(dim_total, 1))
    return _verdict(score, not problems,
                    "; ".join(problems) or f"current tier right for all {len(sellers)} sellers", evidence)


@check("sellers.performance", stage="result", needs=("build",),
       title="fct_seller_performance holds every seller (deleted ones too) with the right GMV, order count and "
             "rating",
       why="A seller's history does not disappear when their account is soft-deleted; their sales still happened.",
       fix="Build seller performance from the sellers' sales and reviews without filtering deleted users out, with "
           "GMV defined as in fct_daily_sales.",
       examples=_sql("models/marts/fct_seller_performance.sql",
                     "select seller_id, sum(gmv_usd) as gmv_usd from {{ ref('int_seller_sales') }}\n"
                     "join {{ ref('dim_users') }} on user_id = seller_id group by 1",
                     "select seller_id, sum(gmv_usd) as gmv_usd, count(distinct order_id) as order_count\n"
                     "from {{ ref('int_seller_sales') }} group by 1"))
def sellers_performance(ctx: ResultContext) -> CheckResult:
    try:
        mart = ctx.read("fct_seller_performance", ["seller_id", "gmv_usd", "order_count", "avg_rating"])
    except MartProblem as problem:
        return _fail(problem)
    sellers = ctx.truth["sellers"]
    observed = {r["seller_id"]: r for r in mart.rows}
    right, wrong = 0, []
    for seller_id, want in sellers.items():
        row = observed.get(seller_id)
        if row is None:
            wrong.append({"seller_id": seller_id, "problem": "missing", "deleted_seller": want["deleted"]})
            continue
        gmv = as_decimal(row["gmv_usd"]) or Decimal(0)
        rating = row["avg_rating"]
        rating_ok = (want["avg_rating"] is None and rating is None) or (
            want["avg_rating"] is not None and rating is not None and abs(float(rating) - want["avg_rating"]) <= 0.01)
        gmv_ok = abs(gmv - Decimal(want["gmv_usd"])) <= max(CENT, Decimal("0.005") * want["item_count"])
        if gmv_ok and int(row["order_count"] or 0) == want["order_count"] and rating_ok:
            right += 1
        else:
            wrong.append({"seller_id": seller_id, "expected": {k: want[k] for k in ("gmv_usd", "order_count", "avg_rating")},
                          "observed": {"gmv_usd": jsonable(row["gmv_usd"]), "order_count": row["order_count"],
                                       "avg_rating": jsonable(rating)}})
    missing_deleted = sum(1 for w in wrong if w.get("deleted_seller"))
    note = f" ({missing_deleted} soft-deleted seller(s) dropped)" if missing_deleted else ""
    return _verdict(right / len(sellers), not wrong,
                    f"{len(wrong)} of {len(sellers)} sellers differ{note}" if wrong
                    else f"all {len(sellers)} sellers match", {
                        "sql": mart.sql, "relation": mart.relation,
                        "tolerance": "GMV to the cent per item, avg_rating 0.01",
                        "observed": {"rows": len(mart.rows), "right": right, "wrong": len(wrong)},
                        "sample_wrong": sample(wrong),
                    })

