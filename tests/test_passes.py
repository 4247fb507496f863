"""What a mutation pass rebuilds (checks.passes.mutation_rebuild), on a manifest graph of dbt's shape.

Whether its outcomes equal a rebuild of the whole lineage is shown by the calibration (every
mutation's verdict unchanged); here: that it picks exactly the tests that can notice a defect and
the models that must be rebuilt for them to see it.
"""

from __future__ import annotations

from checks.passes import mutation_rebuild


def _node(uid: str, materialized: str | None = None) -> dict:
    kind, package, name = uid.split(".")[:3]
    node = {"resource_type": kind, "name": name, "fqn": [package, name]}
    if materialized:
        node["config"] = {"materialized": materialized}
    return node


def _manifest() -> dict:
    edges = {
        "source.p.raw.orders": ["model.p.stg_orders"],
        "source.p.raw.users": ["model.p.dim_users"],
        "model.p.stg_orders": ["model.p.int_orders", "test.p.unique_stg_orders_id"],
        "model.p.int_orders": ["model.p.fct_orders", "test.p.accepted_int_orders_status", "model.p.report_orders"],
        "model.p.dim_users": ["model.p.fct_orders", "test.p.unique_dim_users_id"],
        "model.p.fct_orders": ["test.p.not_null_fct_orders_id", "unit_test.p.fct_orders_logic"],
        "model.p.report_orders": [],
    }
    parents: dict[str, list[str]] = {}
    for parent, children in edges.items():
        for child in children:
            parents.setdefault(child, []).append(parent)
    materialized = {"stg_orders": "view", "int_orders": "table", "fct_orders": "incremental",
                    "dim_users": "table", "report_orders": "table"}
    nodes = {uid: _node(uid, materialized.get(uid.split(".")[2])) for uid in {*edges, *parents} if not uid.startswith("source.")}
    sources = {"source.p.raw.orders": {"name": "orders", "schema": "raw", "source_name": "raw"},
               "source.p.raw.users": {"name": "users", "schema": "raw", "source_name": "raw"}}
    return {"nodes": nodes, "sources": sources, "child_map": edges, "parent_map": parents}


CLEAN = {"test.p.unique_stg_orders_id", "test.p.not_null_fct_orders_id", "test.p.unique_dim_users_id"}


def test_only_the_watching_tests_and_the_tables_between_are_built() -> None:
    plan = mutation_rebuild(_manifest(), "orders", CLEAN)
    assert plan.watching == {"test.p.unique_stg_orders_id", "test.p.not_null_fct_orders_id"}  # not dim_users', not a failing one
    assert plan.models == 2  # int_orders and fct_orders hold rows; stg_orders is a view; report_orders has no test
    assert plan.args == ["build", "--indirect-selection", "empty", "--select", "fqn:p.fct_orders", "fqn:p.int_orders",
                         "fqn:p.not_null_fct_orders_id", "fqn:p.unique_stg_orders_id"]


def test_tests_on_views_alone_run_without_rebuilding_anything() -> None:
    plan = mutation_rebuild(_manifest(), "orders", {"test.p.unique_stg_orders_id"})
    assert plan.models == 0
    assert plan.args == ["build", "--indirect-selection", "empty", "--select", "fqn:p.unique_stg_orders_id"]


def test_no_watching_test_means_no_rebuild_and_no_source_means_everything() -> None:
    assert mutation_rebuild(_manifest(), "orders", {"test.p.unique_dim_users_id"}).args is None
    everything = mutation_rebuild(_manifest(), "payments", CLEAN)  # no source() declares raw.payments
    assert everything.args == ["build"] and everything.watching is None


def test_a_name_the_selector_syntax_cannot_say_falls_back_to_the_whole_lineage() -> None:
    manifest = _manifest()
    manifest["nodes"]["test.p.unique_stg_orders_id"]["fqn"] = ["p", "unique.stg_orders_id"]
    plan = mutation_rebuild(manifest, "orders", CLEAN)
    assert plan.args == ["build", "--select", "source:raw.orders+"]
