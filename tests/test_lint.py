"""lint.* rules: each with a model that trips it and one that does not.

Most tests use tiny hand-made manifests (the shape `dbt parse` writes) plus the raw model
files; the last ones run the real `dbt parse` on the fixture projects under
tests/fixtures/static/ (a good one with 10 models and a bad one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import checks.lint  # noqa: F401  (registers the rules)
from checks.dbt_project import models, parsed
from checks.dbt_sql import output_columns, strip_jinja
from checks.registry import REGISTRY, run_check, specs
from checks.static_context import StaticContext, load_manifest, source_location

FIXTURES = Path(__file__).parent / "fixtures" / "static"
PROJECT = "proj"


# -- builders -----------------------------------------------------------------------------


def model(
    path: str,
    sql: str,
    *,
    config: dict | None = None,
    columns: dict | None = None,
    description: str = "",
    depends_on: list[str] | None = None,
    compiled: str | None = None,
    constraints: list | None = None,
) -> dict:
    """A manifest model node for models/<path>."""
    name = Path(path).stem
    sql = textwrap.dedent(sql).strip() + "\n"
    refs = [{"name": r, "package": None, "version": None} for r in _refs(sql)]
    sources = [list(s) for s in _sources(sql)]
    deps = (
        depends_on
        if depends_on is not None
        else ([f"model.{PROJECT}.{r['name']}" for r in refs] + [f"source.{PROJECT}.{a}.{b}" for a, b in sources])
    )
    node = {
        "unique_id": f"model.{PROJECT}.{name}",
        "resource_type": "model",
        "package_name": PROJECT,
        "name": name,
        "path": path,
        "original_file_path": f"models/{path}",
        "raw_code": sql,
        "config": {"materialized": "view", **(config or {})},
        "refs": refs,
        "sources": sources,
        "depends_on": {"nodes": deps, "macros": []},
        "description": description,
        "columns": {c: {"name": c, "description": d, "constraints": []} for c, d in (columns or {}).items()},
        "constraints": constraints or [],
    }
    if compiled is not None:
        node["compiled_code"] = textwrap.dedent(compiled).strip() + "\n"
    return node


def _refs(sql: str) -> list[str]:
    import re

    return re.findall(r"ref\(\s*'(\w+)'\s*\)", sql)


def _sources(sql: str) -> list[tuple[str, str]]:
    import re

    return re.findall(r"source\(\s*'(\w+)'\s*,\s*'(\w+)'\s*\)", sql)


def dbt_test(name: str, model_name: str, column: str | None = None, namespace: str | None = None, **kwargs) -> dict:
    uid = f"test.{PROJECT}.{name}_{model_name}_{column or 'x'}"
    kw = {"model": f"{{{{ get_where_subquery(ref('{model_name}')) }}}}", **kwargs}
    if column:
        kw["column_name"] = column
    return {
        "unique_id": uid,
        "resource_type": "test",
        "package_name": PROJECT,
        "name": uid.split(".")[-1],
        "attached_node": f"model.{PROJECT}.{model_name}",
        "column_name": column,
        "test_metadata": {"name": name, "kwargs": kw, "namespace": namespace},
        "depends_on": {"nodes": [f"model.{PROJECT}.{model_name}"]},
    }


def source(name: str, *, freshness: bool, loaded_at: str | None = "_airbyte_extracted_at") -> dict:
    fr = {
        "warn_after": {"count": 24 if freshness else None, "period": "hour" if freshness else None},
        "error_after": {"count": None, "period": None},
        "filter": None,
    }
    return {
        "unique_id": f"source.{PROJECT}.raw.{name}",
        "resource_type": "source",
        "package_name": PROJECT,
        "source_name": "raw",
        "name": name,
        "original_file_path": "models/staging/_sources.yml",
        "freshness": fr,
        "loaded_at_field": loaded_at,
    }


def manifest(*nodes: dict, sources: tuple = ()) -> dict:
    return {
        "metadata": {"project_name": PROJECT},
        "nodes": {n["unique_id"]: n for n in nodes},
        "sources": {s["unique_id"]: s for s in sources},
    }


def workspace(tmp_path: Path, man: dict | None = None, files: dict[str, str] | None = None) -> StaticContext:
    """A workspace whose dbt/ project holds the manifest's model files (and `files`)."""
    dbt = tmp_path / "ws" / "dbt"
    (dbt / "models").mkdir(parents=True)
    (dbt / "dbt_project.yml").write_text(f"name: {PROJECT}\nprofile: x\n")
    for n in (man or {}).get("nodes", {}).values():
        if n["resource_type"] == "model":
            p = dbt / n["original_file_path"]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(n["raw_code"])
    for s in (man or {}).get("sources", {}).values():
        p = dbt / s["original_file_path"]
        p.parent.mkdir(parents=True, exist_ok=True)
        lines = p.read_text().splitlines() if p.exists() else ["version: 2", "sources:", "  - name: raw", "    tables:"]
        p.write_text("\n".join(lines + [f"      - name: {s['name']}"]) + "\n")
    for rel, text in (files or {}).items():
        p = dbt / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).strip() + "\n")
    return StaticContext.build(tmp_path / "ws", dbt, man, None, commits=[], starter_root=None)


def run(rule: str, ctx: StaticContext):
    return run_check(REGISTRY[rule], ctx)


def findings(res) -> list[dict]:
    return res.evidence.get("findings", [])


STG_PAYMENTS_OK = model(
    "staging/stg_payments.sql",
    """
    select event_id, order_id, status, amount, currency, event_timestamp
    from {{ source('raw', 'payments') }}
    qualify row_number() over (partition by event_id order by event_timestamp) = 1
""",
)


# -- Jinja handling and locations ----------------------------------------------------------


def test_strip_jinja_keeps_lineage_and_first_branch():
    st = strip_jinja(
        textwrap.dedent("""
        {{ config(materialized='incremental', unique_key='event_id') }}
        {% set cols = ['a', 'b'] %}
        with d as ( {{ dbt_utils.deduplicate(relation=ref('stg'), partition_by='event_id', order_by='ts') }} )
        select {{ dbt_utils.star(ref('stg')) }} from d
        join {{ source('raw', 'users') }} u on true
        {% if is_incremental() %} where ts > (select max(ts) from {{ this }}) {% else %} where true {% endif %}
    """)
    )
    assert "config" not in st.sql and "set cols" not in st.sql
    assert "select * from __dbt_expr_1__" in st.sql and "__dbt_source__raw__users" in st.sql
    assert "__dbt_this__" in st.sql and "where true" not in st.sql
    assert parsed is not None


def test_source_location_points_at_the_original_file_not_compiled(tmp_path):
    node = model(
        "marts/fct_orders.sql",
        """
        -- orders mart
        select
            order_id,
            timestamp(confirmed_at, 'America/New_York') as confirmed_at
        from {{ ref('stg_orders') }}
    """,
        compiled="select order_id, timestamp(confirmed_at, 'America/New_York') as confirmed_at "
        "from `p`.`d`.`stg_orders`",
    )
    ctx = workspace(tmp_path, manifest(node))
    file, line, snippet = source_location(ctx, node, "America/New_York")
    assert (file, line) == ("dbt/models/marts/fct_orders.sql", 4)
    assert "timestamp(confirmed_at" in snippet


def test_output_columns_resolve_through_ctes():
    import sqlglot

    tree = sqlglot.parse_one(
        "with a as (select x, y as z from t), b as (select * from a) select * from b", read="bigquery"
    )
    assert output_columns(tree) == ["x", "z"]
    assert output_columns(sqlglot.parse_one("select * from t", read="bigquery")) is None


# -- rule by rule ---------------------------------------------------------------------------


def test_select_star_in_mart(tmp_path):
    bad = model(
        "marts/fct_orders.sql",
        """
        select *
        from {{ ref('stg_orders') }}
    """,
    )
    res = run("lint.select_star_in_mart", workspace(tmp_path / "a", manifest(bad)))
    assert res.status == "fail"
    assert findings(res)[0]["file"] == "dbt/models/marts/fct_orders.sql" and findings(res)[0]["line"] == 1
    for i, sql in enumerate(
        [
            "select * except (internal_note) from {{ ref('stg_orders') }}",
            "select o.*, u.country_code from {{ ref('stg_orders') }} o join {{ ref('stg_users') }} u using (user_id)",
            "with s as (select * from {{ ref('stg_orders') }}) select * from s",
        ]
    ):
        res = run("lint.select_star_in_mart", workspace(tmp_path / f"b{i}", manifest(model("marts/fct_x.sql", sql))))
        assert res.status == "fail", sql
    good = model(
        "marts/fct_orders.sql",
        """
        with orders as (select * from {{ ref('stg_orders') }}),
        final as (select order_id, status from orders)
        select * from final
    """,
    )
    assert run("lint.select_star_in_mart", workspace(tmp_path / "c", manifest(good))).status == "pass"
    # staging models may select *
    stg = model("staging/stg_orders.sql", "select * from {{ source('raw', 'orders') }}")
    assert run("lint.select_star_in_mart", workspace(tmp_path / "d", manifest(stg, good))).status == "pass"


def test_select_star_from_compiled_sql_is_located_in_the_raw_file(tmp_path):
    node = model(
        "marts/dim_users.sql",
        """
        {{ config(materialized='table') }}
        {{ star_of('stg_users') }}
    """,
        compiled="select * from `marketplace-analytics`.`staging`.`stg_users`",
    )
    res = run("lint.select_star_in_mart", workspace(tmp_path, manifest(node)))
    assert res.status == "fail"
    f = findings(res)[0]
    assert f["file"].startswith("dbt/models/marts/dim_users.sql") and f["line"] == 1


def test_hardcoded_relation(tmp_path):
    bad = model(
        "marts/fct_payments.sql",
        """
        select p.event_id, o.status
        from {{ ref('stg_payments') }} p
        left join `marketplace-analytics.raw.orders` o on o.id = p.order_id
        left join raw.users u on u.id = o.buyer_id
    """,
    )
    res = run("lint.hardcoded_relation", workspace(tmp_path / "a", manifest(bad)))
    assert res.status == "fail"
    got = {(f["line"], f["message"].split("`")[1]) for f in findings(res)}
    assert got == {(3, "marketplace-analytics.raw.orders"), (4, "raw.users")}
    good = model(
        "marts/fct_orders.sql",
        """
        with o as (select * from {{ ref('stg_orders') }}),
        items as (select order_id, item from o, o.items as item)
        select o.order_id, count(*) as n
        from o join items using (order_id)
        cross join unnest(o.tags) as tag
        {% if is_incremental() %} where o.updated_at > (select max(updated_at) from {{ this }}) {% endif %}
        group by 1
    """,
    )
    assert run("lint.hardcoded_relation", workspace(tmp_path / "b", manifest(good))).status == "pass"


def test_hardcoded_relation_without_manifest(tmp_path):
    ctx = workspace(tmp_path, None, {"models/staging/stg_users.sql": "select * from marketplace.raw.users"})
    res = run("lint.hardcoded_relation", ctx)
    assert res.status == "fail" and findings(res)[0]["line"] == 1


def test_mart_reads_source(tmp_path):
    bad = model("marts/dim_users.sql", "select id as user_id from {{ source('raw', 'users') }}")
    res = run("lint.mart_reads_source", workspace(tmp_path / "a", manifest(bad)))
    assert res.status == "fail" and "raw.users" in findings(res)[0]["message"] and findings(res)[0]["line"] == 1
    inter = model("intermediate/int_x.sql", "select 1 as a from {{ source('raw', 'users') }}")
    good = model("marts/dim_users.sql", "select user_id from {{ ref('stg_users') }}")
    res = run("lint.mart_reads_source", workspace(tmp_path / "b", manifest(inter, good)))
    assert res.status == "fail" and "int_x" in findings(res)[0]["message"]
    assert run("lint.mart_reads_source", workspace(tmp_path / "c", manifest(good))).status == "pass"
    # and from the raw files when dbt could not parse
    ctx = workspace(tmp_path / "d", None, {"models/marts/dim_users.sql": bad["raw_code"]})
    assert run("lint.mart_reads_source", ctx).status == "fail"


def test_staging_joins(tmp_path):
    bad = model(
        "staging/stg_orders.sql",
        """
        select o.id as order_id, u.country_code
        from {{ source('raw', 'orders') }} o
        join {{ source('raw', 'users') }} u on u.id = o.buyer_id
    """,
    )
    res = run("lint.staging_joins", workspace(tmp_path / "a", manifest(bad)))
    assert res.status == "fail" and findings(res)[0]["line"] == 3
    assert "source('raw', 'users')" in findings(res)[0]["message"]
    good = model(
        "staging/stg_products.sql",
        """
        select id as product_id, tag from {{ source('raw', 'products') }} cross join unnest(tags) as tag
    """,
    )
    assert run("lint.staging_joins", workspace(tmp_path / "b", manifest(good))).status == "pass"


def test_mart_missing_pk_test(tmp_path):
    fct = model("marts/fct_orders.sql", "select order_id, status from {{ ref('stg_orders') }}")
    res = run(
        "lint.mart_missing_pk_test",
        workspace(tmp_path / "a", manifest(fct, dbt_test("unique", "fct_orders", "order_id"))),
    )
    assert res.status == "fail" and "unique(order_id)" in findings(res)[0]["message"]
    ok = manifest(fct, dbt_test("unique", "fct_orders", "order_id"), dbt_test("not_null", "fct_orders", "order_id"))
    res = run("lint.mart_missing_pk_test", workspace(tmp_path / "b", ok))
    assert res.status == "pass" and res.evidence["keys"]["fct_orders"].startswith("order_id")
    combo = model("marts/fct_daily_sales.sql", "select order_date, shipping_country, 1 as gmv_usd from {{ ref('x') }}")
    ok = manifest(
        combo,
        dbt_test(
            "unique_combination_of_columns",
            "fct_daily_sales",
            namespace="dbt_utils",
            combination_of_columns=["order_date", "shipping_country"],
        ),
    )
    assert run("lint.mart_missing_pk_test", workspace(tmp_path / "c", ok)).status == "pass"
    constrained = model(
        "marts/dim_users.sql",
        "select user_id from {{ ref('stg_users') }}",
        constraints=[{"type": "primary_key", "columns": ["user_id"]}],
    )
    assert run("lint.mart_missing_pk_test", workspace(tmp_path / "d", manifest(constrained))).status == "pass"
    assert (
        run(
            "lint.mart_missing_pk_test",
            workspace(tmp_path / "e", None, {"models/marts/fct_orders.sql": fct["raw_code"]}),
        ).status
        == "skipped"
    )


def test_relationship_coverage(tmp_path):
    fct = model(
        "marts/fct_orders.sql", "select order_id, buyer_id, seller_id, payment_provider_id from {{ ref('stg_orders') }}"
    )
    stg = model(
        "staging/stg_orders.sql", "select id as order_id, buyer_id, seller_id from {{ source('raw', 'orders') }}"
    )
    tests = [
        dbt_test("relationships", "stg_orders", "buyer_id", to="ref('stg_users')", field="user_id"),
        dbt_test("relationships", "fct_orders", "seller_id", to="ref('dim_users')", field="user_id"),
    ]
    res = run("lint.relationship_coverage", workspace(tmp_path / "a", manifest(fct, stg, *tests)))
    assert res.status == "pass" and res.score == 0.75
    assert res.evidence["uncovered"] == ["stg_orders.seller_id"]
    assert "fct_orders.buyer_id (tested upstream in stg_orders)" in res.evidence["covered"]
    res = run("lint.relationship_coverage", workspace(tmp_path / "b", manifest(fct, stg)))
    assert res.status == "fail" and res.score == 0.0 and len(res.evidence["uncovered"]) == 4


def test_accepted_values_coverage(tmp_path):
    fct = model("marts/fct_orders.sql", "select order_id, status, currency, user_type, seller_tier from {{ ref('x') }}")
    tests = [
        dbt_test("accepted_values", "fct_orders", "status", values=["pending"]),
        dbt_test("accepted_values", "fct_orders", "currency", values=["USD"]),
        dbt_test(
            "expect_column_values_to_be_in_set",
            "fct_orders",
            "user_type",
            namespace="dbt_expectations",
            value_set=["buyer"],
        ),
    ]
    res = run("lint.accepted_values_coverage", workspace(tmp_path / "a", manifest(fct, *tests)))
    assert res.status == "pass" and res.score == 0.75 and res.evidence["uncovered"] == ["fct_orders.seller_tier"]
    res = run("lint.accepted_values_coverage", workspace(tmp_path / "b", manifest(fct, tests[0])))
    assert res.status == "fail" and res.score == 0.25


def test_undocumented_models(tmp_path):
    a = model("marts/fct_orders.sql", "select 1 as order_id", description="One row per order.")
    b = model("marts/dim_users.sql", "select 1 as user_id")
    res = run("lint.undocumented_models", workspace(tmp_path / "a", manifest(a, b)))
    assert res.status == "fail" and res.score == 0.5 and "dim_users" in findings(res)[0]["message"]
    assert run("lint.undocumented_models", workspace(tmp_path / "b", manifest(a))).status == "pass"


def test_undocumented_columns(tmp_path):
    doc = model(
        "marts/fct_orders.sql",
        "select order_id, status from {{ ref('x') }}",
        columns={"order_id": "The grain.", "status": "Order status."},
    )
    half = model(
        "marts/dim_users.sql",
        "select user_id, country_code from {{ ref('y') }}",
        columns={"user_id": "User.", "country_code": ""},
    )
    res = run("lint.undocumented_columns", workspace(tmp_path / "a", manifest(doc, half)))
    assert res.status == "fail" and res.score == 0.75  # 3 of 4 columns, below the 0.8 bar
    assert res.evidence["undocumented"] == {"dim_users": ["country_code"]}
    assert run("lint.undocumented_columns", workspace(tmp_path / "b", manifest(doc))).status == "pass"
    # a column selected in SQL but absent from the YAML counts as undocumented
    extra = model(
        "marts/fct_orders.sql",
        "select order_id, status, note from {{ ref('x') }}",
        columns={"order_id": "The grain.", "status": "Order status."},
    )
    res = run("lint.undocumented_columns", workspace(tmp_path / "c", manifest(extra)))
    assert res.evidence["undocumented"] == {"fct_orders": ["note"]}


def test_source_freshness(tmp_path):
    stg = model("staging/stg_payments.sql", "select 1 as x from {{ source('raw', 'payments') }}")
    res = run(
        "lint.source_freshness",
        workspace(
            tmp_path / "a",
            manifest(stg, sources=(source("payments", freshness=True), source("orders", freshness=False))),
        ),
    )
    assert res.status == "fail" and res.score == 0.5
    f = findings(res)[0]
    assert f["file"] == "dbt/models/staging/_sources.yml" and f["snippet"] == "- name: orders"
    res = run(
        "lint.source_freshness",
        workspace(tmp_path / "b", manifest(stg, sources=(source("payments", freshness=True, loaded_at=None),))),
    )
    assert res.status == "fail" and "loaded_at_field" in findings(res)[0]["message"]
    assert (
        run(
            "lint.source_freshness",
            workspace(tmp_path / "c", manifest(stg, sources=(source("payments", freshness=True),))),
        ).status
        == "pass"
    )


DEDUP_OK = {
    "qualify": "select * from {{ source('raw', 'payments') }} "
    "qualify row_number() over (partition by event_id order by event_timestamp) = 1",
    "subquery_rn": """
        select * except (rn) from (
            select *, row_number() over (partition by event_id order by created_at) as rn
            from {{ source('raw', 'payments') }}
        ) where rn = 1""",
    "group_by": """
        select event_id, any_value(order_id) as order_id, min(event_timestamp) as event_timestamp
        from {{ source('raw', 'payments') }} group by event_id""",
    "macro": """
        {{ dbt_utils.deduplicate(relation=source('raw', 'payments'), partition_by='event_id',
                                 order_by='event_timestamp') }}""",
    "distinct_cols": "select distinct event_id, order_id, amount, currency, status from {{ source('raw', 'payments') }}",
}
DEDUP_BAD = {
    "distinct_star": ("select distinct * from {{ source('raw', 'payments') }}", "DISTINCT *"),
    "no_filter": (
        "select *, row_number() over (partition by event_id order by id) as rn from {{ source('raw', 'payments') }}",
        "without a filter",
    ),
    "distinct_with_id": ("select distinct id, event_id, amount from {{ source('raw', 'payments') }}", "per-replay"),
    "nothing": ("select event_id, amount from {{ source('raw', 'payments') }}", "no deduplication"),
}


@pytest.mark.parametrize("case", sorted(DEDUP_OK))
def test_payments_dedup_recognised(tmp_path, case):
    node = model("staging/stg_payments.sql", DEDUP_OK[case])
    res = run("lint.payments_dedup_pattern", workspace(tmp_path, manifest(node)))
    assert res.status == "pass", (case, res.message)
    assert res.evidence["recognised"][0]["file"] == "dbt/models/staging/stg_payments.sql"


@pytest.mark.parametrize("case", sorted(DEDUP_BAD))
def test_payments_dedup_not_recognised(tmp_path, case):
    sql, why = DEDUP_BAD[case]
    node = model("staging/stg_payments.sql", sql)
    fct = model("marts/fct_payments.sql", "select event_id, amount from {{ ref('stg_payments') }}")
    res = run("lint.payments_dedup_pattern", workspace(tmp_path, manifest(node, fct)))
    assert res.status == "fail" and why in res.message, res.message
    assert findings(res)[0]["file"].startswith("dbt/models/")



PAYMENTS_ONE_TO_ONE = "select id as payment_row_id, event_id, amount from {{ source('raw', 'payments') }}"
FIRST_DELIVERY = ("select * from {{ ref('%s') }} "
                  "qualify row_number() over (partition by event_id order by event_timestamp) = 1")


@pytest.mark.parametrize("layout", ["intermediate", "mart"])
def test_dedup_downstream_of_staging_is_a_light_layout_finding(tmp_path, layout):
    """A preference, not a missed trap: status fail at half score, naming where the replays are removed."""
    stg = model("staging/stg_payments.sql", PAYMENTS_ONE_TO_ONE)
    nodes = [stg]
    if layout == "intermediate":
        nodes.append(model("intermediate/int_payments_deduplicated.sql", FIRST_DELIVERY % "stg_payments"))
        nodes.append(model("marts/fct_payments.sql", "select event_id, amount from {{ ref('int_payments_deduplicated') }}"))
        where = "int_payments_deduplicated (intermediate)"
    else:
        nodes.append(model("marts/fct_payments.sql", FIRST_DELIVERY % "stg_payments"))
        where = "fct_payments (mart)"
    res = run("lint.payments_dedup_layer", workspace(tmp_path, manifest(*nodes)))
    assert res.status == "fail" and res.score == 0.5, res.message
    assert where in res.message and "not a missed trap" in res.message
    assert res.severity == "info"
    # The trap's own static check accepts the same project.
    assert run("lint.payments_dedup_pattern", workspace(tmp_path / "again", manifest(*nodes))).status == "pass"


def test_dedup_in_staging_passes_the_layout_rule_and_no_dedup_is_not_its_business(tmp_path):
    stg = model("staging/stg_payments.sql", DEDUP_OK["qualify"])
    fct = model("marts/fct_payments.sql", "select event_id, amount from {{ ref('stg_payments') }}")
    res = run("lint.payments_dedup_layer", workspace(tmp_path, manifest(stg, fct)))
    assert res.status == "pass" and "stg_payments" in res.message
    plain = model("staging/stg_payments.sql", PAYMENTS_ONE_TO_ONE)
    res = run("lint.payments_dedup_layer", workspace(tmp_path / "none", manifest(plain, fct)))
    assert res.status == "skipped" and "payments.dedup" in res.message

TZ_OK = {
    "timestamp_zone": "timestamp(confirmed_at, 'America/New_York')",
    "via_datetime": "timestamp(datetime(confirmed_at), 'America/New_York')",
    "parse": "parse_timestamp('%F %T', cast(confirmed_at as string), 'US/Eastern')",
}
TZ_BAD = {
    "add_5h": ("timestamp_add(timestamp(confirmed_at), interval 5 hour)", "fixed offset"),
    "sub_4h": ("datetime_sub(confirmed_at, interval 4 hour)", "fixed offset"),
    "offset_zone": ("timestamp(confirmed_at, '-05:00')", "fixed offset"),
    "cast": ("cast(confirmed_at as timestamp)", "as UTC"),
    "passthrough": ("confirmed_at", "without a timezone conversion"),
}


@pytest.mark.parametrize("case", sorted(TZ_OK))
def test_confirmed_at_timezone_ok(tmp_path, case):
    node = model(
        "staging/stg_orders.sql",
        f"select id as order_id,\n  {TZ_OK[case]} as confirmed_at\nfrom {{{{ source('raw', 'orders') }}}}",
    )
    res = run("lint.confirmed_at_timezone", workspace(tmp_path, manifest(node)))
    assert res.status == "pass", res.message
    assert res.evidence["conversions"][0]["line"] == 2


@pytest.mark.parametrize("case", sorted(TZ_BAD))
def test_confirmed_at_timezone_wrong(tmp_path, case):
    expr, why = TZ_BAD[case]
    node = model(
        "staging/stg_orders.sql",
        f"select id as order_id,\n  {expr} as confirmed_at\nfrom {{{{ source('raw', 'orders') }}}}",
    )
    res = run("lint.confirmed_at_timezone", workspace(tmp_path, manifest(node)))
    assert res.status == "fail" and why in res.message, res.message
    assert findings(res)[0]["line"] == 2, findings(res)


def test_incremental_config(tmp_path):
    good = model(
        "marts/fct_payments.sql",
        """
        select event_id, amount from {{ ref('stg_payments') }}
        {% if is_incremental() %} where event_timestamp > (select max(event_timestamp) from {{ this }}) {% endif %}
    """,
        config={"materialized": "incremental", "unique_key": "event_id", "incremental_strategy": "merge"},
    )
    assert run("lint.incremental_config", workspace(tmp_path / "a", manifest(good))).status == "pass"
    io = model(
        "marts/fct_daily_sales.sql",
        good["raw_code"],
        config={
            "materialized": "incremental",
            "incremental_strategy": "insert_overwrite",
            "partition_by": {"field": "d"},
        },
    )
    assert run("lint.incremental_config", workspace(tmp_path / "b", manifest(io))).status == "pass"
    no_key = model(
        "marts/fct_payments.sql",
        "{{ config(materialized='incremental') }}\nselect 1 as event_id",
        config={"materialized": "incremental"},
    )
    res = run("lint.incremental_config", workspace(tmp_path / "c", manifest(no_key)))
    msgs = " ".join(f["message"] for f in findings(res))
    assert res.status == "fail" and res.score == 0.5 and "unique_key" in msgs and "is_incremental" in msgs
    assert findings(res)[0]["line"] == 1
    append = model(
        "marts/fct_x.sql", good["raw_code"], config={"materialized": "incremental", "incremental_strategy": "append"}
    )
    assert "append" in run("lint.incremental_config", workspace(tmp_path / "d", manifest(append))).message
    table = model("marts/fct_orders.sql", "select 1 as order_id", config={"materialized": "table"})
    res = run("lint.incremental_config", workspace(tmp_path / "e", manifest(table)))
    assert res.status == "fail" and res.score == 0.25 and "full refresh" in res.message


def test_incremental_config_read_from_the_model_file_without_manifest(tmp_path):
    ctx = workspace(
        tmp_path,
        None,
        {
            "models/marts/fct_payments.sql": """
        {{ config(materialized='incremental', unique_key='event_id', incremental_strategy='merge') }}
        select event_id from {{ ref('stg_payments') }}
        {% if is_incremental() %} where true {% endif %}
    """
        },
    )
    assert run("lint.incremental_config", ctx).status == "pass"


def test_layer_naming(tmp_path):
    bad = [
        model("staging/users.sql", "select 1 as user_id"),
        model("marts/orders_summary.sql", "select 1 as n"),
        model("misc.sql", "select 1 as n"),
        model("marts/stg_wrong_place.sql", "select 1 as n"),
    ]
    res = run("lint.layer_naming", workspace(tmp_path / "a", manifest(*bad)))
    assert res.status == "fail" and len(findings(res)) == 4
    good = [
        model("staging/stg_users.sql", "select 1 as user_id"),
        model("intermediate/int_x.sql", "select 1 as a"),
        model("marts/fct_orders.sql", "select 1 as order_id"),
        model("marts/core/dim_users.sql", "select 1 as u"),
    ]
    assert run("lint.layer_naming", workspace(tmp_path / "b", manifest(*good))).status == "pass"


def test_rules_that_need_the_manifest_skip_and_the_others_still_run(tmp_path):
    ctx = workspace(
        tmp_path,
        None,
        {
            "models/staging/stg_payments.sql": "select distinct * from {{ source('raw', 'payments') }}",
            "models/marts/fct_payments.sql": "select * from {{ ref('stg_payments') }}",
        },
    )
    got = {s.id: run_check(s, ctx).status for s in specs("lint")}
    needs = {
        "lint.mart_missing_pk_test",
        "lint.relationship_coverage",
        "lint.accepted_values_coverage",
        "lint.undocumented_models",
        "lint.undocumented_columns",
        "lint.source_freshness",
    }
    # The layout rule has nothing to place when no deduplication is recognised (SELECT DISTINCT * is none).
    assert {k for k, v in got.items() if v == "skipped"} == needs | {"lint.payments_dedup_layer"}
    assert got["lint.payments_dedup_pattern"] == "fail" and got["lint.select_star_in_mart"] == "fail"
    assert "error" not in got.values()


def test_no_project_at_all_is_skipped(tmp_path):
    (tmp_path / "ws").mkdir()
    ctx = StaticContext.build(tmp_path / "ws", commits=[])
    assert {run_check(s, ctx).status for s in specs("lint")} == {"skipped"}


def test_unparseable_sql_does_not_crash(tmp_path):
    node = model("marts/fct_orders.sql", "select from where ((( {{ ref('x') }}")
    ctx = workspace(tmp_path, manifest(node))
    assert "error" not in {run_check(s, ctx).status for s in specs("lint")}
    assert models(ctx)[0].name == "fct_orders"


# -- the real dbt parser on the fixture projects -------------------------------------------


def _dbt_parse(src: Path, dest: Path) -> subprocess.Popen:
    shutil.copytree(src, dest)
    dbt = Path(sys.executable).parent / "dbt"
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    return subprocess.Popen(
        [str(dbt), "parse", "--profiles-dir", str(dest), "--no-partial-parse"],
        cwd=dest,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def parsed_fixtures(tmp_path_factory) -> dict[str, StaticContext]:
    base = tmp_path_factory.mktemp("dbt-fixtures")
    procs = {name: _dbt_parse(FIXTURES / name, base / name / "dbt") for name in ("dbt_good", "dbt_bad")}
    out = {}
    for name, proc in procs.items():
        log, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, log[-3000:]
        man = load_manifest(base / name / "dbt" / "target" / "manifest.json")
        out[name] = StaticContext.build(base / name, base / name / "dbt", man, None, commits=[])
    return out


@pytest.mark.slow
def test_dbt_parse_good_fixture_passes_every_rule(parsed_fixtures):
    ctx = parsed_fixtures["dbt_good"]
    assert len(models(ctx)) == 10
    t0 = time.time()
    res = {s.id: run_check(s, ctx) for s in specs("lint")}
    print(f"\nlint over the 10-model fixture: {time.time() - t0:.2f} s")
    assert {k: (r.status, r.message) for k, r in res.items() if r.status != "pass"} == {}


@pytest.mark.slow
def test_dbt_parse_bad_fixture_fails_every_rule(parsed_fixtures):
    ctx = parsed_fixtures["dbt_bad"]
    # lint.not_analysed judges whether the SQL could be analysed, not its quality: it passes
    res = {s.id: run_check(s, ctx) for s in specs("lint") if s.id != "lint.not_analysed"}
    # No deduplication recognised: the layout rule has nothing to place and leaves the verdict to the trap's checks.
    layout = res.pop("lint.payments_dedup_layer")
    assert layout.status == "skipped" and "payments.dedup" in layout.message
    assert {k for k, r in res.items() if r.status != "fail"} == set(), {
        k: (r.status, r.message) for k, r in res.items() if r.status != "fail"
    }
    for rid, r in res.items():
        for f in findings(r):
            assert f["file"].startswith("dbt/models/"), (rid, f)


def test_confirmed_at_converted_by_a_project_macro(tmp_path):
    node = model(
        "staging/stg_orders.sql",
        "select id as order_id,\n  {{ ny_to_utc('confirmed_at') }} as confirmed_at\nfrom {{ source('raw', 'orders') }}",
    )
    macro = "{% macro ny_to_utc(col) %}timestamp({{ col }}, 'America/New_York'){% endmacro %}"
    ctx = workspace(tmp_path, manifest(node), {"macros/tz.sql": macro})
    res = run("lint.confirmed_at_timezone", ctx)
    assert res.status == "pass" and res.evidence["conversions"][0]["line"] == 2, res.message


def test_unchanged_handout_models_earn_no_coverage_or_docs_credit(tmp_path):
    given = model(
        "staging/stg_categories.sql",
        "select id as category_id, parent_id as parent_category_id from x",
        description="Categories.",
        columns={"category_id": "Id.", "parent_category_id": "Parent."},
    )
    starter = tmp_path / "starter"
    (starter / "dbt" / "models" / "staging").mkdir(parents=True)
    (starter / "dbt" / "models" / "staging" / "stg_categories.sql").write_text(given["raw_code"])
    man = manifest(given, dbt_test("relationships", "stg_categories", "parent_category_id"))
    ctx = workspace(tmp_path / "a", man)
    ctx.starter_root = starter
    for rid in ("lint.relationship_coverage", "lint.undocumented_models", "lint.undocumented_columns"):
        res = run(rid, ctx)
        assert res.status == "fail" and res.score == 0.0 and "handed out" in res.message, rid
    # once the candidate adds their own model, it is what gets judged
    mine = model(
        "marts/dim_products.sql",
        "select product_id, category_id from {{ ref('stg_products') }}",
        description="Products.",
        columns={"product_id": "Id.", "category_id": "Category."},
    )
    ctx = workspace(tmp_path / "b", manifest(given, mine))
    ctx.starter_root = starter
    assert run("lint.undocumented_models", ctx).evidence["models_checked"] == 1
    assert run("lint.relationship_coverage", ctx).evidence["uncovered"] == ["dim_products.category_id"]


def test_incremental_filter_through_the_projects_own_macro(tmp_path):
    """A shared watermark macro that calls is_incremental() is the filter (found through the
    manifest's macro dependencies); a macro that never calls it is not."""
    sql = "select event_id from {{ ref('stg_payments') }}\n{{ watermark_filter('extracted_at') }}"
    config = {"materialized": "incremental", "unique_key": "event_id"}

    def with_macro(macro_sql: str, calls: list[str]) -> dict:
        node = model("marts/fct_payments.sql", sql, config=config)
        node["depends_on"]["macros"] = [f"macro.{PROJECT}.watermark_filter"]
        man = manifest(node)
        man["macros"] = {
            f"macro.{PROJECT}.watermark_filter": {"package_name": PROJECT, "macro_sql": macro_sql,
                                                   "depends_on": {"macros": calls}},
            "macro.dbt.is_incremental": {"package_name": "dbt", "depends_on": {"macros": []}},
        }
        return man

    good = with_macro("{% macro watermark_filter(c) %}{% if is_incremental() %}where {{ c }} > x{% endif %}{% endmacro %}",
                      ["macro.dbt.is_incremental"])
    assert run("lint.incremental_config", workspace(tmp_path / "a", good)).status == "pass"
    bad = with_macro("{% macro watermark_filter(c) %}where true{% endmacro %}", [])
    res = run("lint.incremental_config", workspace(tmp_path / "b", bad))
    assert res.status == "fail" and "is_incremental" in res.message
