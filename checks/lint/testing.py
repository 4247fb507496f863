"""Testing: marts have a tested key, foreign keys and status columns are tested, and sources
declare how fresh they must be."""

from __future__ import annotations

import re
from typing import Any
from collections.abc import Callable

from checks.dbt_project import (
    Model,
    TestInfo,
    candidate_models,
    has_constraint,
    locate,
    marts,
    model_columns,
    models,
    project_sources,
    tests_by_model,
    upstream,
)
from checks.lint.support import MARTS, STAGING, STG_ORDERS, no_candidate_models, no_marts, per_model_result
from checks.registry import CheckResult, Examples, result
from checks.static_context import StaticContext
from checks.static_rules import static_check

# Coverage results pass at or above this share of columns covered.
COVERAGE_PASS = 0.5

_PK_UNIQUE = {"unique", "expect_column_values_to_be_unique", "is_unique"}
_PK_NOT_NULL = {"not_null", "expect_column_values_to_not_be_null", "not_null_proportion"}
_PK_COMBINED = {
    "unique_combination_of_columns",
    "expect_compound_columns_to_be_unique",
    "primary_key",
    "unique_key",
    "expect_select_column_values_to_be_unique_within_record",
}
_FCT_ORDERS = "select\n    order_id,\n    buyer_id,\n    status,\n    total_amount\nfrom {{ ref('stg_orders') }}\n"
_MART_YAML = "version: 2\n\nmodels:\n  - name: fct_orders\n    description: One row per order.\n    columns:\n" \
             "      - name: order_id\n"


def _primary_key(model: Model, tests: list[TestInfo]) -> str | None:
    """How the model's key is tested (a unique + not_null column, a combination test, a constraint)."""
    if has_constraint(model.node, "primary_key"):
        return "constraint primary_key"
    unique = {test.column for test in tests if test.name in _PK_UNIQUE and test.column}
    not_null = {test.column for test in tests if test.name in _PK_NOT_NULL and test.column}
    for column, meta in model.columns.items():
        if has_constraint(meta, "primary_key"):
            return f"{column} (constraint primary_key)"
        if has_constraint(meta, "not_null"):
            not_null.add(column)
        if has_constraint(meta, "unique"):
            unique.add(column)
    both = sorted(unique & not_null)
    if both:
        return f"{both[0]} (unique + not_null)"
    for test in tests:
        custom_combination = "unique" in test.name and any(isinstance(value, list) and len(value) > 1
                                                            for value in test.kwargs.values())
        if test.name in _PK_COMBINED or custom_combination:
            columns = (
                test.kwargs.get("combination_of_columns")
                or test.kwargs.get("column_list")
                or test.kwargs.get("column_names")
                or next((value for value in test.kwargs.values() if isinstance(value, list)), None)
            )
            listed = ", ".join(map(str, columns)) if isinstance(columns, list) else test.column or ""
            return f"{test.name}({listed})"
    return None


@static_check(
    "lint.mart_missing_pk_test",
    needs=("manifest", "project"),
    severity="warning",
    title="Each mart has a tested primary key: unique + not_null on one column, a combination-unique test, or a "
    "primary_key constraint.",
    why="A mart's grain (one row per what) is its most important promise; a fan-out join or a replayed event "
    "silently breaks it, and only a key test catches that before the numbers double.",
    fix="Add unique and not_null tests on the mart's key column in its YAML (or a unique-combination test for a "
    "composite key).",
    examples=Examples(
        bad={f"{STAGING}/stg_orders.sql": STG_ORDERS, f"{MARTS}/fct_orders.sql": _FCT_ORDERS,
             f"{MARTS}/_marts.yml": _MART_YAML},
        good={f"{STAGING}/stg_orders.sql": STG_ORDERS, f"{MARTS}/fct_orders.sql": _FCT_ORDERS,
              f"{MARTS}/_marts.yml": _MART_YAML + "        data_tests: [unique, not_null]\n"},
    ),
)
def mart_missing_pk_test(ctx: StaticContext) -> CheckResult:
    if missing := no_marts(ctx):
        return missing
    tests = tests_by_model(ctx)
    findings = []
    keys: dict[str, str] = {}
    for model in marts(ctx):
        key = _primary_key(model, tests.get(model.uid, []))
        if key:
            keys[model.name] = key
            continue
        present = sorted({f"{test.name}({test.column})" if test.column else test.name for test in tests.get(model.uid, [])})
        findings.append(locate(ctx, model, f"{model.name}: no primary-key test (unique + not_null on one column, a "
                                           "combination-unique test or a primary_key constraint); tests present: "
                                           f"{', '.join(present) or 'none'}"))
    return per_model_result(findings, len(marts(ctx)), "marts", {"keys": keys})


def _own_key(model: Model, column: str, tests: list[TestInfo], first_column: str | None = None) -> bool:
    """Is `column` the model's own key (not a foreign key)?"""
    if column in ("id", first_column):
        return True
    if any(test.name in _PK_UNIQUE and test.column == column for test in tests):
        return True
    entity = re.sub(r"^(stg|int|fct|dim|base)_", "", model.name.lower())
    entity = re.sub(r"^[a-z0-9]+__", "", entity)  # stg_source__table
    singular = entity[:-3] + "y" if entity.endswith("ies") else entity.rstrip("s")
    return column in (f"{entity}_id", f"{singular}_id")


ColumnFilter = Callable[[Model, str, list[TestInfo], str], bool]


def _coverage(ctx: StaticContext, is_candidate: ColumnFilter, test_names: set[str], label: str) -> CheckResult:
    """The share of the candidate's columns of one kind tested by one of `test_names` (on the
    model, or upstream on a model it reads the same column from)."""
    if missing := no_candidate_models(ctx):
        return missing
    tests = tests_by_model(ctx)
    by_name = {model.name: model for model in models(ctx)}
    covered, uncovered = [], []
    for model in candidate_models(ctx):
        if model.layer == "intermediate":
            continue  # often ephemeral glue; the columns are judged where they land
        own_tests = tests.get(model.uid, [])
        columns = model_columns(ctx, model)
        for column in columns:
            if not is_candidate(model, column, own_tests, columns[0]):
                continue
            via = None
            if any(test.name in test_names and test.column == column for test in own_tests):
                via = ""
            else:  # the same column tested upstream and passed through
                for parent in upstream(model, by_name):
                    if any(test.name in test_names and test.column == column for test in tests.get(parent.uid, [])):
                        via = f" (tested upstream in {parent.name})"
                        break
            if via is None:
                uncovered.append(f"{model.name}.{column}")
            else:
                covered.append(f"{model.name}.{column}{via}")
    total = len(covered) + len(uncovered)
    if total == 0:
        return result("pass", f"no {label} columns found", evidence={"covered": [], "uncovered": []})
    score = len(covered) / total
    return result("pass" if score >= COVERAGE_PASS else "fail", f"{len(covered)}/{total} {label} columns covered "
                  f"({score:.0%})", score=score,
                  evidence={"covered": covered, "uncovered": uncovered, "threshold": COVERAGE_PASS})


_NOT_FK = re.compile(r"(provider|external|row|raw|airbyte|session|request|trace|idempotency)_id$")
_STATUS_LIKE = re.compile(r"^(status|.*_status|.*_type|.*_tier|currency|.*_currency)$")
_STG_USERS = "select\n    id as user_id,\n    country\nfrom {{ source('raw', 'users') }}\n"
_STG_YAML = "version: 2\n\nmodels:\n  - name: stg_orders\n    columns:\n      - name: order_id\n" \
            "        data_tests: [unique, not_null]\n"


@static_check(
    "lint.relationship_coverage",
    needs=("manifest", "project"),
    severity="info",
    title="Share of foreign-key-like columns (*_id, not the model's own key) covered by a relationships test.",
    why="An order whose buyer_id matches no user drops out of every inner join downstream; a relationships test "
    "is what notices orphans before the revenue numbers do.",
    fix="Add a relationships test on each foreign key (to: ref('stg_users'), field: user_id), where the column "
    "enters the project; models that pass it through inherit the test.",
    examples=Examples(
        bad={f"{STAGING}/stg_orders.sql": STG_ORDERS, f"{STAGING}/_stg_models.yml": _STG_YAML},
        good={f"{STAGING}/stg_users.sql": _STG_USERS, f"{STAGING}/stg_orders.sql": STG_ORDERS,
              f"{STAGING}/_stg_models.yml": _STG_YAML + "      - name: buyer_id\n        data_tests:\n"
              "          - relationships:\n              to: ref('stg_users')\n              field: user_id\n"},
    ),
)
def relationship_coverage(ctx: StaticContext) -> CheckResult:
    def foreign_key_like(model: Model, column: str, tests: list[TestInfo], first: str) -> bool:
        return (column.endswith("_id") and not _own_key(model, column, tests, first) and not column.startswith("_")
                and not _NOT_FK.search(column))

    return _coverage(ctx, foreign_key_like,
                     {"relationships", "relationships_where", "expect_column_values_to_be_in_set_of_other_column"},
                     "foreign-key-like")


@static_check(
    "lint.accepted_values_coverage",
    needs=("manifest", "project"),
    severity="info",
    title="Share of status-like columns (status, *_type, *_tier, currency) covered by an accepted_values test.",
    why="A new status or currency value that nobody mapped falls out of CASE expressions and filters silently; "
    "an accepted_values test turns it into a failed build.",
    fix="Add accepted_values tests listing the values each status, type, tier and currency column may take.",
    examples=Examples(
        bad={f"{STAGING}/stg_orders.sql": STG_ORDERS, f"{STAGING}/_stg_models.yml": _STG_YAML},
        good={f"{STAGING}/stg_orders.sql": STG_ORDERS,
              f"{STAGING}/_stg_models.yml": _STG_YAML + "      - name: status\n        data_tests:\n"
              "          - accepted_values:\n              values: [pending, confirmed, processing, shipped, delivered, cancelled, refunded]\n"
              "      - name: currency\n        data_tests:\n          - accepted_values:\n"
              "              values: [USD, EUR, GBP]\n"},
    ),
)
def accepted_values_coverage(ctx: StaticContext) -> CheckResult:
    def status_like(model: Model, column: str, tests: list[TestInfo], first: str) -> bool:
        return bool(_STATUS_LIKE.match(column))

    return _coverage(ctx, status_like, {
        "accepted_values",
        "expect_column_values_to_be_in_set",
        "expect_column_distinct_values_to_be_in_set",
        "expect_column_distinct_values_to_equal_set",
        "relationships",
    }, "status-like")


def _has_freshness(freshness: Any) -> bool:
    if not isinstance(freshness, dict):
        return False
    for key in ("warn_after", "error_after"):
        after = freshness.get(key) or {}
        if isinstance(after, dict) and after.get("count") not in (None, 0) and after.get("period"):
            return True
    return False


def _has_loaded_at(source: dict) -> bool:
    config = source.get("config") or {}
    return bool(source.get("loaded_at_field") or source.get("loaded_at_query") or config.get("loaded_at_query")
                or config.get("loaded_at_field"))


_SOURCES = "version: 2\n\nsources:\n  - name: raw\n    database: marketplace-analytics\n    schema: raw\n    tables:\n"
_FRESHNESS = "        config:\n          loaded_at_field: _airbyte_extracted_at\n          freshness:\n" \
             "            warn_after: {count: 24, period: hour}\n"


@static_check(
    "lint.source_freshness",
    needs=("manifest",),
    severity="warning",
    title="Sources declare freshness (warn_after/error_after with a loaded_at_field) so stale loads are caught.",
    why="When the extraction stops, every model still builds, on old data; `dbt source freshness` only warns "
    "if the sources say how old their rows may be.",
    fix="Give each source table (or the source) a loaded_at_field such as _airbyte_extracted_at and a "
    "freshness with warn_after (and error_after).",
    examples=Examples(
        bad={f"{STAGING}/_sources.yml": _SOURCES + "      - name: categories\n      - name: orders\n"},
        good={f"{STAGING}/_sources.yml": _SOURCES + "      - name: categories\n" + _FRESHNESS
              + "      - name: orders\n" + _FRESHNESS},
    ),
)
def source_freshness(ctx: StaticContext) -> CheckResult:
    sources = project_sources(ctx)
    if not sources:
        return result("skipped", "skipped: the project declares no sources")
    findings = []
    for source in sources:
        if _has_freshness(source.get("freshness")) and _has_loaded_at(source):
            continue
        why = "no freshness" if not _has_freshness(source.get("freshness")) else "freshness without loaded_at_field"
        findings.append(locate(ctx, source, f"source {source.get('source_name')}.{source.get('name')}: {why}",
                               re.compile(r"name\s*:\s*['\"]?" + re.escape(str(source.get("name"))) + r"\b")))
    evidence = {"sources_checked": len(sources), "findings": [found.to_json() for found in findings]}
    if not findings:
        return result("pass", f"all {len(sources)} source tables declare freshness", evidence=evidence)
    return result("fail", f"{len(findings)}/{len(sources)} source tables without freshness: {findings[0].message}",
                  score=(len(sources) - len(findings)) / len(sources), evidence=evidence)
