"""The dataset generator: determinism, trap rates, truth that agrees with the rows."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from raw_layer.airbyte import raw_tables
from raw_layer.money import fmt, to_usd_cents
from raw_layer.schema import AIRBYTE_COLUMNS, TABLES

from grader.dataset.files import postgres_init_files, write_dataset
from grader.dataset.generator import (
    CANONICAL_SEED, NEW_YORK, RATES, SCALES, VARIANT_SEED, generate, is_ambiguous_or_skipped, us_dst_change_days,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def canonical():
    return generate(CANONICAL_SEED, "small")


@pytest.fixture(scope="module")
def variant():
    return generate(VARIANT_SEED, "small")


def test_same_seed_gives_identical_files(tmp_path):
    first = write_dataset(generate(CANONICAL_SEED, "small"), tmp_path / "a")
    second = write_dataset(generate(CANONICAL_SEED, "small"), tmp_path / "b")
    assert first == second
    for name in first["files"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_variant_has_different_ids_and_values_but_the_same_trap_rates(canonical, variant):
    for table in ("users", "products", "orders", "payments"):
        ids_a = {r["id"] for r in canonical.rows[table]}
        ids_b = {r["id"] for r in variant.rows[table]}
        assert not ids_a & ids_b, table
    assert canonical.extracted_at != variant.extracted_at
    assert canonical.truth["payments_summary"]["total_usd"] != variant.truth["payments_summary"]["total_usd"]
    cat_a = {c["name"]: c["id"] for c in canonical.rows["categories"]}
    cat_b = {c["name"]: c["id"] for c in variant.rows["categories"]}
    assert cat_a != cat_b
    for dataset in (canonical, variant):
        users = dataset.rows["users"]
        assert sum(u["deleted_at"] is not None for u in users) == round(len(users) * RATES["user_deleted"])
        assert sum(u["country_code"] is None for u in users) == round(len(users) * RATES["user_country_null"])
        events = dataset.truth["payments_summary"]
        assert events["replayed_events"] == round(events["unique_events"] * RATES["payment_replayed"])


def test_trap_rates_at_default_scale():
    dataset = generate(CANONICAL_SEED, "default")
    users = dataset.rows["users"]
    assert len(users) == SCALES["default"].users
    assert sum(u["deleted_at"] is not None for u in users) == 120
    assert sum(u["deleted_at"] is None and not u["is_active"] for u in users) == 60
    assert sum(u["country_code"] is None for u in users) == 120
    assert sum(p["updated_at"] > dataset.extracted_at for p in dataset.rows["products"]) == 80
    assert len(dataset.rows["order_items"]) > 10_000
    assert len(dataset.rows["event_log"]) > 20_000
    assert dataset.truth["payments_summary"]["replayed_events"] > 300
    assert {p["price_currency"] for p in dataset.rows["products"]} == {"USD", "EUR", "GBP"}


def test_payment_replays_differ_only_in_id_and_timestamps(canonical):
    by_event = defaultdict(list)
    for row in canonical.rows["payments"]:
        by_event[row["event_id"]].append(row)
    truth = canonical.truth
    assert len(by_event) == truth["payments_summary"]["unique_events"] == len(truth["payment_events"])
    replayed = [rows for rows in by_event.values() if len(rows) > 1]
    assert len(replayed) == truth["payments_summary"]["replayed_events"]
    for rows in replayed:
        rows.sort(key=lambda r: r["event_timestamp"])
        original = rows[0]
        for copy in rows[1:]:
            changed = {k for k in original if original[k] != copy[k]}
            assert changed == {"id", "created_at", "event_timestamp"}
            assert 0 < (copy["event_timestamp"] - original["event_timestamp"]).total_seconds() <= 300
    # SELECT DISTINCT * would not collapse them: every row is unique as a whole.
    assert len({tuple(sorted((k, str(v)) for k, v in r.items())) for r in canonical.rows["payments"]}) == len(
        canonical.rows["payments"])
    total = sum(to_usd_cents(rows[0]["amount"], rows[0]["currency"]) for rows in by_event.values())
    assert fmt(total) == truth["payments_summary"]["total_usd"]


def test_confirmed_at_is_new_york_wall_time_of_the_true_instant(canonical):
    orders = canonical.truth["orders"]
    confirmed = [o for o in canonical.rows["orders"] if o["confirmed_at"] is not None]
    assert len(confirmed) > len(canonical.rows["orders"]) * 0.6
    looks_before_creation = 0
    offsets = set()
    for row in confirmed:
        true_utc = datetime.fromisoformat(orders[row["id"]]["confirmed_at_utc"].replace("Z", "+00:00"))
        assert true_utc.astimezone(NEW_YORK).replace(tzinfo=None) == row["confirmed_at"]
        assert not is_ambiguous_or_skipped(row["confirmed_at"])
        assert true_utc >= row["created_at"]
        offsets.add(true_utc.astimezone(NEW_YORK).utcoffset().total_seconds() / 3600)
        if row["confirmed_at"].replace(tzinfo=UTC) < row["created_at"]:
            looks_before_creation += 1
    assert offsets == {-4.0, -5.0}  # daylight saving applies: a fixed offset is wrong part of the year
    assert looks_before_creation > len(confirmed) * 0.5
    never = [o for o in canonical.rows["orders"] if o["confirmed_at"] is None]
    assert never and all(orders[o["id"]]["confirmed_at_utc"] is None for o in never)


def test_some_orders_fall_on_dst_change_days():
    dataset = generate(CANONICAL_SEED, "default")
    dst_days = {d for y in (2024, 2025) for d in us_dst_change_days(y)}
    on_dst = [o for o in dataset.rows["orders"] if o["confirmed_at"] and o["confirmed_at"].date() in dst_days]
    assert len(on_dst) >= 20


def test_timestamps_never_pass_the_extraction_time_except_planted_products(canonical):
    limit = canonical.extracted_at
    for table in TABLES:
        for row in canonical.rows[table.name]:
            for column in table.columns:
                value = row[column.name]
                if column.pg_type == "TIMESTAMPTZ" and value is not None and value > limit:
                    assert (table.name, column.name) == ("products", "updated_at")
    future = [p for p in canonical.rows["products"] if p["updated_at"] > limit]
    assert len(future) == round(len(canonical.rows["products"]) * RATES["product_future_updated"])
    assert {p for p, t in canonical.truth["products"].items() if t["future_updated_at"]} == {p["id"] for p in future}


def test_order_totals_add_up_and_truth_converts_at_the_seed_rates(canonical):
    items = defaultdict(int)
    for item in canonical.rows["order_items"]:
        items[item["order_id"]] += item["total_price"]
        assert item["total_price"] == item["quantity"] * item["unit_price"]
    rates = {"USD": Decimal("1.00"), "EUR": Decimal("1.09"), "GBP": Decimal("1.27")}
    for order in canonical.rows["orders"]:
        assert order["total_amount"] == (order["subtotal_amount"] + order["shipping_amount"] + order["tax_amount"]
                                         - order["discount_amount"])
        assert order["subtotal_amount"] == items[order["id"]]
        truth = canonical.truth["orders"][order["id"]]
        expected = (Decimal(order["total_amount"]) / 100 * rates[order["currency"]]).quantize(Decimal("0.01"))
        assert abs(Decimal(truth["total_amount_usd"]) - expected) <= Decimal("0.01")


def test_soft_deletes_and_suspensions_are_distinct_in_truth(canonical):
    truth = canonical.truth
    active = set(truth["active_user_ids"])
    for user in canonical.rows["users"]:
        assert (user["id"] in active) == (user["deleted_at"] is None)
        if user["deleted_at"] is not None:
            assert user["is_active"] is False
    suspended = [u for u in canonical.rows["users"] if not u["is_active"] and u["deleted_at"] is None]
    assert suspended and all(u["id"] in active for u in suspended)


def test_current_tier_comes_from_the_open_history_row(canonical):
    history = defaultdict(list)
    for row in canonical.rows["seller_tier_history"]:
        history[row["user_id"]].append(row)
    stale = 0
    for user in canonical.rows["users"]:
        periods = sorted(history[user["id"]], key=lambda r: r["effective_from"])
        if user["user_type"] == "buyer":
            assert not periods and canonical.truth["users"][user["id"]]["current_seller_tier"] is None
            continue
        assert [p["is_current"] for p in periods] == [False] * (len(periods) - 1) + [True]
        for before, after in zip(periods, periods[1:]):
            assert before["effective_to"] == after["effective_from"]
        assert canonical.truth["sellers"][user["id"]]["current_tier"] == periods[-1]["tier"]
        stale += user["seller_tier"] != periods[-1]["tier"]
    assert stale > 0


def test_gmv_truth_counts_only_eligible_statuses(canonical):
    orders = {o["id"]: o for o in canonical.rows["orders"]}
    eligible = sum(to_usd_cents(i["total_price"], i["currency"]) for i in canonical.rows["order_items"]
                   if orders[i["order_id"]]["status"] in ("confirmed", "processing", "shipped", "delivered"))
    daily = canonical.truth["daily_sales"]
    assert sum(int(Decimal(d["gmv_usd"]) * 100) for d in daily) == eligible
    sellers = canonical.truth["sellers"]
    assert sum(int(Decimal(s["gmv_usd"]) * 100) for s in sellers.values()) == eligible
    statuses = Counter(o["status"] for o in canonical.rows["orders"])
    assert set(statuses) == {"pending", "confirmed", "processing", "shipped", "delivered", "cancelled", "refunded"}


def test_raw_tables_have_the_airbyte_shape(canonical):
    tables = {t.name: t for t in raw_tables(canonical.rows, canonical.extracted_at)}
    assert set(tables) == {t.name for t in TABLES}
    orders = dict(tables["orders"].schema)
    assert orders["confirmed_at"] == "DATETIME" and orders["created_at"] == "TIMESTAMP"
    assert orders["total_amount"] == "NUMERIC" and dict(tables["products"].schema)["tags"] == "JSON"
    for name, type_ in AIRBYTE_COLUMNS:
        assert dict(tables["users"].schema)[name] == type_
    first = json.loads(tables["orders"].ndjson.splitlines()[0])
    assert first["_airbyte_extracted_at"].startswith(canonical.extracted_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert tables["payments"].rows == len(canonical.rows["payments"])


def test_committed_postgres_init_equals_a_fresh_generation():
    committed = REPO / "environment" / "postgres" / "init"
    fresh = postgres_init_files(generate(CANONICAL_SEED, "default"))
    assert sorted(p.name for p in committed.iterdir()) == sorted(fresh)
    for name, content in fresh.items():
        on_disk = (committed / name).read_bytes()
        if name.endswith(".gz"):  # compare content: gzip bytes may vary with the zlib build
            assert gzip.decompress(on_disk) == gzip.decompress(content), name
        else:
            assert on_disk == content, name


def test_instructions_state_the_canonical_extraction_time():
    """Candidates who sync themselves get today's _airbyte_extracted_at; the instructions name the snapshot's."""
    extracted = generate(CANONICAL_SEED, "small").extracted_at
    instructions = (REPO / "environment" / "docs" / "EXERCISE_INSTRUCTIONS.md").read_text()
    assert extracted.strftime("%Y-%m-%d %H:%M:%S UTC") in instructions
