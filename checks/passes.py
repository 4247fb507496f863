"""Checks that rebuild the candidate's project: idempotency, mutation testing and generalisation,
declared in the order the pipeline runs them (dbt.generalises replaces the raw layer with
another dataset, so it comes last).

They catch what one build cannot: marts that change on a rerun (dbt.idempotent), answers
written for the canonical data (dbt.generalises), and tests that would not notice a broken
source (tests.mutations).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from collections.abc import Callable
from contextlib import AbstractContextManager

import checks.results  # noqa: F401  (registers the result checks dbt.generalises runs again)
from checks.marts import MARTS, MartProblem, ResultContext, fetch, jsonable
from checks.registry import CheckResult, Examples, check, result, run_check, run_order
from grader.dataset.generator import Dataset


@dataclass(frozen=True)
class VariantOutcome:
    """dbt.generalises's other world: the variant dataset, its `dbt build --full-refresh`, and a
    client of the engine that holds the marts it built."""

    dataset: Dataset
    run: Any  # DbtRun
    client: Any


def needs_variant(canonical_checks: list[CheckResult]) -> bool:
    """Whether dbt.generalises will build the variant: some result check passed on canonical data."""
    judged = {spec.id for spec in run_order("result")}
    return any(c.id in judged and c.status == "pass" for c in canonical_checks)


@dataclass
class PassContext:
    """What rebuilding checks need; the pipeline provides the warehouse-bound operations."""

    results: ResultContext
    dataset: Dataset
    baseline: Any  # the first DbtRun on canonical data
    rebuild: Callable[[list[str], str], Any]  # (dbt args, label) -> DbtRun
    # (table, rows): raw.<table> holds `rows` inside the block, and its loaded rows again after it
    mutated_table: Callable[[str, list[dict[str, Any]]], AbstractContextManager[None]]
    variant_build: Callable[[], VariantOutcome]  # the variant dataset loaded and built with --full-refresh
    canonical_checks: list[CheckResult] = field(default_factory=list)
    progress: Callable[[str], None] = lambda message: None

    def unmet_needs(self) -> dict[str, str]:
        """Nothing to rebuild from without a manifest (dbt could not parse the project)."""
        return {"manifest": "dbt produced no manifest"} if self.results.manifest is None else {}


def mart_fingerprints(ctx: ResultContext) -> dict[str, dict[str, Any]]:
    """Row count and a content hash of every mart that exists, independent of row order."""
    prints = {}
    for model in MARTS:
        try:
            relation, _ = ctx.table_columns(model)
        except MartProblem:
            continue
        rows = [json.dumps({k: jsonable(v) for k, v in row.items()}, sort_keys=True, default=str)
                for row in fetch(ctx.client, f"SELECT * FROM `{relation}`", retry_s=ctx.retry_s)]
        digest = hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()
        prints[model] = {"relation": relation, "rows": len(rows), "sha256": digest}
    return prints


@check("dbt.idempotent", stage="rebuild", needs=("manifest",),
       title="A second dbt build on the same data leaves every mart unchanged (row count and content)",
       why="Schedulers retry and backfill: a build that appends rows again, or stamps the wall clock into its "
           "data, changes the marts each time it runs, so the numbers depend on how often it ran.",
       fix="Make every model a function of its inputs: tables rebuilt whole, or incremental models that merge on "
           "a unique_key and filter new rows with is_incremental(); no current_timestamp() in business columns.",
       examples=Examples(
           bad={"models/marts/fct_payments.sql": "{{ config(materialized='incremental') }}\n"
                                                 "select * from {{ ref('stg_payments') }}"},
           good={"models/marts/fct_payments.sql": "{{ config(materialized='incremental', unique_key='event_id', "
                                                  "incremental_strategy='merge') }}\n"
                                                  "select * from {{ ref('stg_payments') }}\n"
                                                  "{% if is_incremental() %}\nwhere event_timestamp > "
                                                  "(select max(event_timestamp) from {{ this }})\n{% endif %}"}))
def dbt_idempotent(ctx: PassContext) -> CheckResult:
    before = mart_fingerprints(ctx.results)
    if not before:
        return result("fail", "no mart was built, so nothing shows the build is idempotent",
                      evidence={"marts_looked_for": list(MARTS), "observed": False})
    ctx.progress("dbt.idempotent: second dbt build on the same data")
    # The tests ran in the first build and decide nothing here: only what the models write.
    second = ctx.rebuild(["build", "--exclude-resource-type", "test", "unit_test"], "idempotent")
    after = mart_fingerprints(ctx.results)
    changed = sorted(m for m in before if after.get(m) != before[m])
    evidence = {"method": "SELECT * of each mart before and after a second `dbt build` (models, seeds and snapshots; "
                          "the tests ran in the first); sha256 of the sorted rows",
                "before": before, "after": after, "second_build": {"status": second.status, "nodes": second.nodes}}
    if changed:
        details = ", ".join(f"{m} ({before[m]['rows']} -> {after.get(m, {}).get('rows', 'missing')} rows)" for m in changed)
        return result("fail", f"{len(changed)} mart(s) changed on a rerun: {details}",
                      score=1 - len(changed) / len(before), evidence=evidence)
    return result("pass", f"{len(before)} marts identical after a second build", evidence=evidence)


# --- mutation testing ------------------------------------------------------------------

@dataclass(frozen=True)
class Mutation:
    """One planted defect. `kind` says what catches it: "generic" (key, not-null, relationship
    and accepted-values tests) or "business" (only a test of a business rule of this data)."""

    id: str
    table: str
    description: str
    apply: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
    kind: str = "generic"


def _first(rows: list[dict[str, Any]], predicate: Callable[[dict[str, Any]], bool] = lambda r: True) -> int:
    """Index of the first matching row by id: deterministic, whatever the row order."""
    return min((i for i, r in enumerate(rows) if predicate(r)), key=lambda i: str(rows[i]["id"]))


def _duplicate_order(rows):
    i = _first(rows)
    return rows + [copy.deepcopy(rows[i])]


def _null_item_key(rows):
    rows[_first(rows)]["id"] = None
    return rows


def _orphan_item(rows):
    rows[_first(rows)]["product_id"] = "00000000-0000-4000-8000-000000000000"
    return rows


def _unknown_currency(rows):
    rows[_first(rows)]["currency"] = "JPY"
    return rows


def _bad_status(rows):
    rows[_first(rows)]["status"] = "lost_in_transit"
    return rows


def _total_mismatch(rows):
    rows[_first(rows)]["total_amount"] += 1000  # +10.00 in cents
    return rows


def _replay_changed_amount(rows):
    i = _first(rows, lambda r: r["status"] == "completed")
    replay = copy.deepcopy(rows[i])
    replay.update(id="ffffffff-ffff-4fff-bfff-ffffffffffff", amount=replay["amount"] + 500,
                  created_at=replay["created_at"] + timedelta(seconds=30),
                  event_timestamp=replay["event_timestamp"] + timedelta(seconds=30))
    return rows + [replay]


def _item_price_drift(rows):
    i = _first(rows)
    rows[i]["unit_price"] += 100  # +1.00 in cents: quantity * unit_price still holds,
    rows[i]["total_price"] += 100 * rows[i]["quantity"]  # the order's subtotal no longer does
    return rows


def _item_other_currency(rows):
    i = _first(rows)
    rows[i]["currency"] = "EUR" if rows[i]["currency"] != "EUR" else "GBP"
    return rows


def _overlapping_tier_periods(rows):
    i = _first(rows, lambda r: r["effective_to"] is not None)
    rows[i]["effective_to"] += timedelta(days=30)
    return rows


def _status_backwards(rows):
    i = _first(rows, lambda r: r["status"] == "delivered" and r.get("delivered_at") is not None)
    rows[i]["status"] = "pending"
    return rows


MUTATIONS = (
    Mutation("orders.duplicate_pk", "orders", "an order row duplicated (same id)", _duplicate_order),
    Mutation("order_items.null_key", "order_items", "an order item with a NULL id", _null_item_key),
    Mutation("order_items.orphan_product", "order_items", "an order item pointing at no product", _orphan_item),
    Mutation("orders.unknown_currency", "orders", "an order in a currency without a rate (JPY)", _unknown_currency),
    Mutation("orders.bad_status", "orders", "an order status outside the allowed set", _bad_status),
    Mutation("orders.total_mismatch", "orders", "total_amount != subtotal + shipping + tax - discount",
             _total_mismatch, kind="business"),
    Mutation("payments.replay_changed_amount", "payments",
             "a replayed payment event (same event_id) with a changed amount", _replay_changed_amount,
             kind="business"),
    Mutation("order_items.subtotal_drift", "order_items",
             "an item's price raised, so the order's subtotal no longer equals the sum of its items",
             _item_price_drift, kind="business"),
    Mutation("order_items.currency_mismatch", "order_items",
             "an order item in another (valid) currency than its order", _item_other_currency, kind="business"),
    Mutation("seller_tier_history.overlap", "seller_tier_history",
             "a closed tier period extended 30 days into the next one (overlapping periods)",
             _overlapping_tier_periods, kind="business"),
    Mutation("orders.status_backwards", "orders",
             "a delivered order (delivered_at set) whose status went back to pending", _status_backwards,
             kind="business"),
)


@dataclass(frozen=True)
class MutationRebuild:
    """What one planted defect needs rebuilt: `args` for `dbt build`, the clean-passing tests that
    can notice it (None: every test, when no source declares the table) and how many models the
    build recreates. `args` None: no test can notice it, so nothing is rebuilt."""

    args: list[str] | None
    watching: set[str] | None
    models: int = 0


_REBUILT = ("table", "incremental", "snapshot", "materialized_view")  # what holds rows of its own


def mutation_rebuild(manifest: dict[str, Any] | None, table: str, clean: set[str]) -> MutationRebuild:
    """The smallest `dbt build` whose test outcomes equal those of rebuilding all of raw.<table>'s lineage.

    Only the tests that passed on clean data and read raw.<table> (through its source()) can
    catch the defect; they see it once every model between the source and them that stores rows
    (tables, incremental models, snapshots) is rebuilt. Views and ephemeral models read the new
    rows as they are, so recreating them, or building what no such test reads, changes no outcome.
    A project that declares no source for the table gets its whole build, tests included.
    """
    manifest = manifest or {}
    sources = [uid for uid, node in manifest.get("sources", {}).items()
               if (node.get("identifier") or node.get("name")) == table and node.get("schema") == "raw"]
    if not sources:
        return MutationRebuild(["build"], None)
    downstream = _reachable(sources, manifest.get("child_map", {}))
    watching = {uid for uid in downstream if uid in clean}
    if not watching:
        return MutationRebuild(None, set())
    nodes = manifest.get("nodes", {})
    between = _reachable(sorted(watching), manifest.get("parent_map", {})) & downstream
    models = sorted(uid for uid in between if nodes.get(uid, {}).get("resource_type") in ("model", "snapshot")
                    and nodes[uid].get("config", {}).get("materialized") in _REBUILT)
    chosen = [*models, *sorted(watching)]
    fqns = [nodes.get(uid, {}).get("fqn") for uid in chosen]
    if not all(isinstance(f, list) and f and all(isinstance(p, str) and p and "." not in p for p in f) for f in fqns):
        # a name dbt's selector syntax cannot say exactly: the whole lineage, as before
        source = manifest["sources"][sources[0]]
        return MutationRebuild(["build", "--select", f"source:{source['source_name']}.{source['name']}+"], watching,
                               len(models))
    return MutationRebuild(["build", "--indirect-selection", "empty", "--select",
                            *("fqn:" + ".".join(f) for f in fqns if f)], watching, len(models))


def _reachable(roots: list[str], edges: dict[str, list[str]]) -> set[str]:
    """`roots` and every node reachable from them along `edges` (child_map or parent_map)."""
    seen, pending = set(roots), list(roots)
    while pending:
        for nxt in edges.get(pending.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                pending.append(nxt)
    return seen


def _test_statuses(run: Any) -> dict[str, str]:
    return {r.unique_id: r.status for r in run.results if r.resource_type in ("test", "unit_test")}


@check("tests.mutations", stage="rebuild", needs=("manifest",),
       title="Share of defects planted in the raw data that the candidate's own tests catch",
       why="Tests exist to notice broken data before it reaches a dashboard. Each defect is planted in the raw "
           "layer one at a time; a defect no test notices would have reached the marts unnoticed.",
       fix="Test keys (unique, not_null), relationships and accepted values, and the business rules of this data: "
           "one row per event_id, totals that add up, items in their order's currency, tier periods that do "
           "not overlap.",
       examples=Examples(
           bad={"models/staging/_staging.yml": "version: 2\nmodels:\n  - name: stg_orders\n"},
           good={"models/staging/_staging.yml": "version: 2\nmodels:\n  - name: stg_orders\n    columns:\n"
                                                "      - name: order_id\n        data_tests: [unique, not_null]\n"
                                                "      - name: status\n        data_tests:\n"
                                                "          - accepted_values:\n              arguments:\n"
                                                "                values: [pending, confirmed, processing, shipped, "
                                                "delivered, cancelled, refunded]\n"}))
def tests_mutations(ctx: PassContext) -> CheckResult:
    clean = {t: s for t, s in _test_statuses(ctx.baseline).items() if s == "pass"}
    if not clean:
        return result("fail", "no test passed on the clean data, so no planted defect can be caught",
                      evidence={"mutations": [m.description for m in MUTATIONS]})
    outcomes: list[dict[str, Any]] = []
    for number, mutation in enumerate(MUTATIONS, start=1):
        plan = mutation_rebuild(ctx.results.manifest, mutation.table, set(clean))
        if plan.args is None:  # known in advance: no test can notice it
            outcomes.append({"id": mutation.id, "kind": mutation.kind, "defect": mutation.description,
                             "table": f"raw.{mutation.table}", "caught": False, "caught_by": [],
                             "rebuild": f"not needed: no test that passed on clean data reads raw.{mutation.table}"})
            continue
        ctx.progress(f"tests.mutations {number}/{len(MUTATIONS)}: {mutation.description}")
        started = time.monotonic()
        with ctx.mutated_table(mutation.table, mutation.apply(copy.deepcopy(ctx.dataset.rows[mutation.table]))):
            run = ctx.rebuild(plan.args, f"mutation-{number}")
        after = _test_statuses(run)
        # A test declared severity: warn that starts warning has noticed the defect too (dbt shows it).
        caught_by = sorted(t for t in clean if after.get(t) in ("fail", "error", "warn"))
        outcomes.append({"id": mutation.id, "kind": mutation.kind, "defect": mutation.description,
                         "table": f"raw.{mutation.table}",
                         "caught": bool(caught_by), "caught_by": [t.split(".")[-1] for t in caught_by][:10],
                         "rebuild": {"tests_watching": len(plan.watching) if plan.watching is not None else "all",
                                     "models_rebuilt": plan.models, "duration_s": round(time.monotonic() - started, 1)}})
    caught = sum(o["caught"] for o in outcomes)
    share = caught / len(outcomes)
    missed = [o["id"] for o in outcomes if not o["caught"]]
    business = [o for o in outcomes if o["kind"] == "business"]
    message = (f"{caught} of {len(outcomes)} planted defects caught ({sum(o['caught'] for o in business)} of "
               f"{len(business)} business-rule defects)" + (f"; missed: {', '.join(missed)}" if missed else ""))
    evidence = {"method": "one defect at a time in raw; `dbt build` of the tests that passed on clean data and read "
                          "that raw table through source(), with the tables between rebuilt (views read the new rows "
                          "as they are); caught when one of those tests fails (or warns, when declared severity: warn)",
                "tests_passing_on_clean_data": len(clean),
                "mutations": outcomes}
    return result("pass" if share >= 0.75 else "fail", message, score=share, evidence=evidence)


@check("dbt.generalises", stage="rebuild", needs=("manifest",),
       title="The result checks that pass on the canonical data also pass on the variant dataset (other ids and "
             "values)",
       why="A project fitted to the data it was shown (a list of replayed ids, a count, a date) passes on that "
           "data and breaks on tomorrow's; a second dataset with other ids and values exposes it.",
       fix="Derive every rule from what the data means (event_id, deleted_at, the rate table), never from the "
           "particular ids or values seen in the sample.",
       examples=Examples(
           bad={"models/staging/stg_payments.sql": "select * from {{ source('raw', 'payments') }}\n"
                                                   "where id not in ('9f1c...', '03ab...')  -- the replays seen"},
           good={"models/staging/stg_payments.sql": "select * from {{ source('raw', 'payments') }}\n"
                                                    "qualify row_number() over (partition by event_id "
                                                    "order by event_timestamp, id) = 1"}))
def dbt_generalises(ctx: PassContext) -> CheckResult:
    judged = [spec.id for spec in run_order("result")]
    canonical = {c.id: c for c in ctx.canonical_checks if c.id in judged}
    passed = sorted(i for i, c in canonical.items() if c.status == "pass")
    if not passed:
        return result("fail", "no result check passed on the canonical data, so nothing can generalise",
                      evidence={"canonical": {i: c.status for i, c in canonical.items()}})
    built = ctx.variant_build()  # another world, from empty datasets: no state of the canonical builds carries over
    variant, run = built.dataset, built.run
    variant_ctx = ResultContext(built.client, ctx.results.manifest, variant.truth, label=f"seed {variant.seed}")
    outcome = {spec.id: run_check(spec, variant_ctx) for spec in run_order("result")}
    regressed = [i for i in passed if outcome[i].status != "pass"]
    evidence = {
        "variant_seed": variant.seed, "variant_build": {"status": run.status, "nodes": run.nodes},
        "checks": {i: {"canonical": canonical[i].status if i in canonical else None, "variant": outcome[i].status,
                       "variant_message": outcome[i].message} for i in judged},
    }
    if regressed:
        return result("fail", f"{len(regressed)} check(s) pass on the canonical data but fail on the variant: "
                              f"{', '.join(regressed)} (answers fitted to the canonical data?)",
                      score=1 - len(regressed) / len(passed), evidence=evidence)
    return result("pass", f"all {len(passed)} passing result checks also pass on the variant dataset",
                  evidence=evidence)
