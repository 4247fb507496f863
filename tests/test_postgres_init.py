"""environment/postgres/init loads into a real PostgreSQL the way the container's entrypoint runs it."""

from __future__ import annotations

import gzip
import subprocess
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from raw_layer.schema import TABLES

from grader.dataset.generator import CANONICAL_SEED, generate
from tests.postgres_server import postgres_server

INIT = Path(__file__).resolve().parents[1] / "environment" / "postgres" / "init"


@pytest.fixture(scope="module")
def marketplace_db():
    with postgres_server() as admin_url:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("CREATE ROLE marketplace LOGIN PASSWORD 'marketplace_secret'")
            conn.execute("CREATE DATABASE marketplace OWNER marketplace")
        url = admin_url.rsplit("/", 1)[0].replace("postgres@", "marketplace@") + "/marketplace"
        for path in sorted(INIT.iterdir()):  # the entrypoint's order: file name
            sql = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            result = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", url], input=sql, capture_output=True)
            assert result.returncode == 0, result.stderr.decode()[-2000:]
        with psycopg.connect(url) as conn:
            yield conn


def test_row_counts_match_the_generator(marketplace_db):
    expected = generate(CANONICAL_SEED, "default").truth["row_counts"]
    for table in TABLES:
        (count,) = marketplace_db.execute(f"SELECT count(*) FROM {table.name}").fetchone()
        assert count == expected[table.name], table.name


def test_types_of_the_trap_columns(marketplace_db):
    rows = marketplace_db.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'"
    ).fetchall()
    types = {(t, c): d for t, c, d in rows}
    assert types[("orders", "confirmed_at")] == "timestamp without time zone"
    assert types[("orders", "created_at")] == "timestamp with time zone"
    assert types[("payments", "amount")] == "numeric"
    assert types[("products", "tags")] == "ARRAY"
    assert types[("products", "attributes")] == "jsonb"
    assert types[("users", "country_code")] == "character"


def test_every_column_has_a_comment_and_confirmed_at_names_its_zone(marketplace_db):
    missing = marketplace_db.execute(
        """SELECT c.table_name, c.column_name FROM information_schema.columns c
           JOIN pg_class k ON k.relname = c.table_name
           WHERE c.table_schema = 'public' AND col_description(k.oid, c.ordinal_position) IS NULL"""
    ).fetchall()
    assert missing == []
    (comment,) = marketplace_db.execute(
        "SELECT col_description('orders'::regclass, (SELECT attnum FROM pg_attribute "
        "WHERE attrelid = 'orders'::regclass AND attname = 'confirmed_at'))").fetchone()
    assert "America/New_York" in comment


def test_the_traps_are_visible_in_sql(marketplace_db):
    (dupes,) = marketplace_db.execute(
        "SELECT count(*) FROM (SELECT event_id FROM payments GROUP BY event_id HAVING count(*) > 1) d").fetchone()
    assert dupes > 300
    (distinct_rows,) = marketplace_db.execute("SELECT count(*) FROM (SELECT DISTINCT * FROM payments) d").fetchone()
    (all_rows,) = marketplace_db.execute("SELECT count(*) FROM payments").fetchone()
    assert distinct_rows == all_rows  # SELECT DISTINCT * does not remove the replays
    (before,) = marketplace_db.execute(
        "SELECT count(*) FROM orders WHERE confirmed_at AT TIME ZONE 'UTC' < created_at").fetchone()
    (true_before,) = marketplace_db.execute(
        "SELECT count(*) FROM orders WHERE confirmed_at AT TIME ZONE 'America/New_York' < created_at").fetchone()
    assert before > 1000 and true_before == 0
    (tags,) = marketplace_db.execute("SELECT tags FROM products WHERE cardinality(tags) > 0 LIMIT 1").fetchone()
    assert isinstance(tags, list) and tags
    (attributes,) = marketplace_db.execute("SELECT attributes FROM products LIMIT 1").fetchone()
    assert set(attributes) == {"condition", "colour"}
    (next_id,) = marketplace_db.execute("SELECT nextval(pg_get_serial_sequence('event_log', 'id'))").fetchone()
    (max_id,) = marketplace_db.execute("SELECT max(id) FROM event_log").fetchone()
    assert next_id == max_id + 1


def test_future_updated_at_lies_ahead_of_the_load_whenever_it_happens(marketplace_db):
    """The planted clock-skew products are after now() at load time, by their distance to the snapshot."""
    dataset = generate(CANONICAL_SEED, "default")
    planted = {pid: p for pid, p in dataset.truth["products"].items() if p["future_updated_at"]}
    rows = marketplace_db.execute(
        "SELECT id::text, updated_at, now() FROM products WHERE updated_at > now()").fetchall()
    assert {r[0] for r in rows} == set(planted)
    generated = {p["id"]: p["updated_at"] for p in dataset.rows["products"]}
    # each keeps its lead over one load moment: updated_at = load moment + (generated - snapshot)
    (load_moment,) = {updated_at - (generated[pid] - dataset.extracted_at) for pid, updated_at, _ in rows}
    (now,) = {r[2] for r in rows}
    assert now - timedelta(minutes=30) < load_moment <= now
    (others_moved,) = marketplace_db.execute(
        "SELECT count(*) FROM products WHERE updated_at > %s AND updated_at <= now()",
        (dataset.extracted_at,)).fetchone()
    assert others_moved == 0
