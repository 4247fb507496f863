"""The Airbyte destination for the BigQuery emulator, driven as Airbyte drives it.

The connector runs as a subprocess reading Airbyte messages on stdin; the records are the
dataset generator's rows as Airbyte's Postgres source would emit them (timestamps as ISO text,
numerics as JSON numbers or text, jsonb as JSON text); the tables are read back from the
embedded emulator. No mocks.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import io
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
import yaml
from destination_bigquery_emulator.postgres_feed import discover, feed
from raw_layer.airbyte import (
    RawColumn,
    airbyte_record,
    airbyte_schema,
    bq_type_for_json_schema,
    encode,
    raw_schema,
    stream_columns,
)
from raw_layer.bigquery import WarehouseError, append_table, query
from raw_layer.schema import TABLES, TABLES_BY_NAME, Table

from grader.dataset.generator import CANONICAL_SEED, generate
from grader.warehouse import prepare_datasets
from tests.postgres_server import postgres_server

REPO = Path(__file__).resolve().parents[1]
ENVIRONMENT = REPO / "environment"
CONNECTOR_DIR = ENVIRONMENT / "airbyte" / "destination-bigquery-emulator"
CONNECTOR = [sys.executable, "-m", "destination_bigquery_emulator.main"]
CURSORS = {"orders": "updated_at", "payments": "created_at", "categories": "created_at"}


# ---------------------------------------------------------------------------------------------
# Airbyte messages as the Postgres source sends them
# ---------------------------------------------------------------------------------------------


def source_schema(pg_type: str) -> dict[str, Any]:
    """The property schema Airbyte's Postgres source declares for a column (jsonb is a string)."""
    t = pg_type.upper()
    if t.endswith("[]"):
        return {"type": "array", "items": {"type": "string"}}
    if t == "TIMESTAMPTZ":
        return {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"}
    if t == "TIMESTAMP":
        return {"type": "string", "format": "date-time", "airbyte_type": "timestamp_without_timezone"}
    if t.startswith("NUMERIC"):
        return {"type": "number"}
    if t in ("INTEGER", "SERIAL", "BIGSERIAL"):
        return {"type": "integer"}
    if t == "BOOLEAN":
        return {"type": "boolean"}
    return {"type": "string"}


def source_value(value: Any, pg_type: str, numbers_as_text: bool = False) -> Any:
    if value is None:
        return None
    if pg_type.startswith("NUMERIC"):  # generated as integer cents
        amount = Decimal(value) / 100
        return str(amount) if numbers_as_text else float(amount)
    if pg_type == "TIMESTAMPTZ":
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if pg_type == "TIMESTAMP":
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if pg_type == "JSONB":
        return json.dumps(value)
    return value


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def records(table: str, rows: list[dict[str, Any]], emitted_at: datetime, numbers_as_text: bool = False) -> list[dict]:
    columns = TABLES_BY_NAME[table].columns
    return [{"type": "RECORD", "record": {
        "stream": table, "emitted_at": ms(emitted_at),
        "data": {c.name: source_value(row[c.name], c.pg_type, numbers_as_text) for c in columns}}}
        for row in rows]


def state(table: str) -> dict:
    return {"type": "STATE", "state": {"type": "STREAM", "stream": {
        "stream_descriptor": {"name": table}, "stream_state": {"position": table}}}}


def status(table: str, value: str) -> dict:
    return {"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 0.0, "stream_status": {
        "stream_descriptor": {"name": table}, "status": value}}}


def catalog(streams: list[tuple[str, str]], generation: int, sync_id: int) -> dict:
    """A configured catalog: (table, destination sync mode) pairs."""
    configured = []
    for name, mode in streams:
        table = TABLES_BY_NAME[name]
        configured.append({
            "stream": {"name": name, "json_schema": {"type": "object", "properties": {
                c.name: source_schema(c.pg_type) for c in table.columns}},
                "supported_sync_modes": ["full_refresh", "incremental"],
                "source_defined_primary_key": [[table.primary_key]]},
            "sync_mode": "full_refresh" if mode == "overwrite" else "incremental",
            "destination_sync_mode": mode, "primary_key": [[table.primary_key]],
            "cursor_field": [CURSORS[name]] if mode != "overwrite" else [],
            "generation_id": generation, "minimum_generation_id": generation if mode == "overwrite" else 0,
            "sync_id": sync_id})
    return {"streams": configured}


def run(args: list[str], stdin: str = "", timeout: float = 300) -> list[dict]:
    """The connector's output messages; it must exit 0."""
    result = subprocess.run([*CONNECTOR, *args], input=stdin, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def write(tmp_path: Path, config: dict, configured: dict, messages: list[dict]) -> list[str]:
    """Run `write`; the streams whose STATE came back, in order."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(configured))
    output = run(["write", "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")],
                 "".join(json.dumps(m) + "\n" for m in messages))
    errors = [m for m in output if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]
    assert not errors, errors
    return [m["state"]["stream"]["stream_descriptor"]["name"] for m in output if m["type"] == "STATE"]


# ---------------------------------------------------------------------------------------------
# Reading the tables back
# ---------------------------------------------------------------------------------------------


def table_rows(client, table: str) -> list[dict[str, Any]]:
    return query(client, f"SELECT * FROM `{client.project}.raw.{table}`")


def table_schema(client, table: str) -> list[tuple[str, str]]:
    return [(f.name, f.field_type) for f in client.get_table(f"{client.project}.raw.{table}").schema]


def expected_value(value: Any, pg_type: str) -> Any:
    return Decimal(value) / 100 if value is not None and pg_type.startswith("NUMERIC") else value


def assert_source_columns(actual: list[dict[str, Any]], expected: list[dict[str, Any]], table: Table) -> None:
    """The same rows by primary key, every source column equal in type and value."""
    by_key = {row[table.primary_key]: row for row in actual}
    assert len(by_key) == len(actual), f"{table.name}: duplicate keys"
    assert sorted(by_key) == sorted(row[table.primary_key] for row in expected), table.name
    for want in expected:
        got = by_key[want[table.primary_key]]
        for column in table.columns:
            value = expected_value(want[column.name], column.pg_type)
            assert got[column.name] == value, (table.name, want[table.primary_key], column.name)
            assert type(got[column.name]) is type(value) or value is None, (table.name, column.name)


def assert_airbyte_columns(rows: list[dict[str, Any]], extracted_at: datetime, generation: int, sync_id: int) -> None:
    assert len({row["_airbyte_raw_id"] for row in rows}) == len(rows)
    for row in rows:
        assert uuid.UUID(row["_airbyte_raw_id"])
        assert row["_airbyte_extracted_at"] == extracted_at.replace(microsecond=extracted_at.microsecond // 1000 * 1000)
        assert row["_airbyte_meta"] == {"changes": [], "sync_id": sync_id}
        assert row["_airbyte_generation_id"] == generation


@pytest.fixture(scope="module")
def small():
    return generate(42, "small")


@pytest.fixture
def config(emulator) -> dict:
    prepare_datasets(emulator.client())
    return {"endpoint": emulator.endpoint, "batch_size": 100}


# ---------------------------------------------------------------------------------------------
# The shared raw writer: types and values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schema, bq_type", [
    ({"type": "string"}, "STRING"),
    ({"type": ["null", "string"], "format": "date-time"}, "TIMESTAMP"),
    ({"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"}, "TIMESTAMP"),
    ({"type": "string", "format": "date-time", "airbyte_type": "timestamp_without_timezone"}, "DATETIME"),
    ({"type": "string", "format": "date"}, "DATE"),
    ({"type": "number"}, "NUMERIC"),
    ({"type": "number", "airbyte_type": "integer"}, "INT64"),
    ({"type": "integer"}, "INT64"),
    ({"type": "boolean"}, "BOOL"),
    ({"type": "object"}, "JSON"),
    ({"type": "array", "items": {"type": "string"}}, "JSON"),
    ({"type": ["string", "integer"]}, "JSON"),
    ({}, "JSON"),
    ({"$ref": "WellKnownTypes.json#/definitions/TimestampWithoutTimezone"}, "DATETIME"),
    ({"$ref": "WellKnownTypes.json#/definitions/Integer"}, "INT64"),
])
def test_json_schema_types_map_as_the_contract_says(schema, bq_type):
    assert bq_type_for_json_schema(schema) == bq_type


def test_the_postgres_source_schemas_give_the_contract_layout():
    for table in TABLES:
        columns = stream_columns(table.name, {"properties": {c.name: source_schema(c.pg_type) for c in table.columns}})
        assert airbyte_schema(columns) == raw_schema(table), table.name
        assert {c.name for c in columns if c.json_text} == {c.name for c in table.columns if c.pg_type == "JSONB"}
    # a table the contract does not know keeps the JSON schema's types: jsonb text stays text
    assert stream_columns("other", {"properties": {"attributes": {"type": "string"}}}) == [
        RawColumn("attributes", "STRING")]


@pytest.mark.parametrize("value, bq_type, encoded", [
    (12.3, "NUMERIC", "12.3"),
    ("12.30", "NUMERIC", "12.30"),
    (7, "NUMERIC", "7"),
    ("1e3", "NUMERIC", "1000"),
    (0.1 + 0.2, "NUMERIC", "0.300000000"),
    (3.0, "INT64", 3),
    ("42", "INT64", 42),
    ("2025-03-09T02:30:00.5+01:00", "TIMESTAMP", "2025-03-09T01:30:00.500000Z"),
    ("2025-03-09 07:30:00", "TIMESTAMP", "2025-03-09T07:30:00.000000Z"),
    (datetime(2025, 3, 9, 7, 30, tzinfo=UTC), "TIMESTAMP", "2025-03-09T07:30:00.000000Z"),
    ("2025-03-09T02:30:00", "DATETIME", "2025-03-09T02:30:00.000000"),
    ("2025-03-09", "DATE", "2025-03-09"),
    ({"a": [1]}, "JSON", {"a": [1]}),
    (5, "STRING", "5"),
])
def test_encode_takes_what_sources_emit(value, bq_type, encoded):
    assert encode(value, bq_type) == encoded


@pytest.mark.parametrize("value, bq_type", [
    ("2025-03-09T02:30:00+01:00", "DATETIME"), (datetime(2025, 3, 9), "TIMESTAMP"), ("soon", "TIMESTAMP"),
    ("twelve", "NUMERIC"), (float("nan"), "NUMERIC"), (1e40, "NUMERIC"), (True, "INT64"), (1.5, "INT64"),
    ("true", "BOOL"), (2**63, "INT64"),
])
def test_encode_refuses_what_does_not_fit(value, bq_type):
    with pytest.raises(ValueError):
        encode(value, bq_type)


def test_a_value_that_does_not_fit_becomes_null_with_a_change_unless_strict():
    columns = [RawColumn("id", "INT64"), RawColumn("at", "TIMESTAMP"), RawColumn("doc", "JSON", json_text=True)]
    extracted = datetime(2025, 11, 14, 6, 0, tzinfo=UTC)
    truncated = {"field": "x", "change": "TRUNCATED", "reason": "SOURCE_RECORD_SIZE_LIMITATION"}
    record = airbyte_record(columns, {"id": 1, "at": "yesterday", "doc": '{"a": 1}'}, raw_id="r",
                            extracted_at=extracted, generation_id=3, sync_id=7, changes=[truncated])
    assert record == {
        "id": 1, "at": None, "doc": {"a": 1}, "_airbyte_raw_id": "r",
        "_airbyte_extracted_at": "2025-11-14T06:00:00.000000Z", "_airbyte_generation_id": 3,
        "_airbyte_meta": {"sync_id": 7, "changes": [
            truncated, {"field": "at", "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"}]}}
    with pytest.raises(ValueError, match="column at"):
        airbyte_record(columns, {"at": "yesterday"}, raw_id="r", extracted_at=extracted, generation_id=1, sync_id=1,
                       strict=True)


# ---------------------------------------------------------------------------------------------
# spec and check
# ---------------------------------------------------------------------------------------------


def test_spec_is_a_valid_airbyte_connection_specification():
    script = Path(sys.executable).with_name("destination-bigquery-emulator")
    result = subprocess.run([str(script), "spec"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (message,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert message["type"] == "SPEC"
    spec = message["spec"]
    assert spec["supportsIncremental"] is True
    assert spec["supported_destination_sync_modes"] == ["overwrite", "append", "append_dedup"]
    connection = spec["connectionSpecification"]
    jsonschema.Draft7Validator.check_schema(connection)
    defaults = {name: prop["default"] for name, prop in connection["properties"].items()}
    assert defaults["endpoint"] == "http://bigquery-emulator:9050"
    assert defaults["project_id"] == "marketplace-analytics" and defaults["dataset_id"] == "raw"
    jsonschema.validate(defaults, connection)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"endpoint": "bigquery-emulator:9050"}, connection)  # no scheme


def test_check_fails_clearly_when_the_emulator_is_unreachable(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "config.json").write_text(json.dumps({"endpoint": f"http://127.0.0.1:{port}"}))
    (message,) = run(["check", "--config", str(tmp_path / "config.json")], timeout=60)
    status = message["connectionStatus"]
    assert status["status"] == "FAILED"
    assert f"no BigQuery emulator answers at http://127.0.0.1:{port}" in status["message"]
    assert "Connection refused" in status["message"]


def test_write_stops_with_the_reason_when_the_emulator_is_unreachable(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"endpoint": "http://127.0.0.1:1"}))
    (tmp_path / "catalog.json").write_text(json.dumps(catalog([("categories", "overwrite")], 1, 1)))
    result = subprocess.run([*CONNECTOR, "write", "--config", str(tmp_path / "config.json"),
                             "--catalog", str(tmp_path / "catalog.json")], input="", capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    (error,) = [m["trace"]["error"] for m in map(json.loads, result.stdout.splitlines()) if m["type"] == "TRACE"]
    assert error["message"].startswith("no BigQuery emulator answers at http://127.0.0.1:1")


@pytest.mark.slow
def test_check_succeeds_against_the_emulator(emulator, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"endpoint": emulator.endpoint, "dataset_id": "checked"}))
    (message,) = run(["check", "--config", str(tmp_path / "config.json")])
    assert message["connectionStatus"]["status"] == "SUCCEEDED"
    client = emulator.client()
    assert [t.table_id for t in client.list_tables(f"{client.project}.checked")] == []  # the probe table is gone


# ---------------------------------------------------------------------------------------------
# write, one sync mode after the other
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_refresh_overwrite_lands_the_contract_layout_and_replaces(emulator, tmp_path, small, config):
    client = emulator.client()
    # a source that sends no stream statuses: the tables are replaced at the end of the input
    messages = [m for t in TABLES for m in [*records(t.name, small.rows[t.name], small.extracted_at), state(t.name)]]
    states = write(tmp_path, config, catalog([(t.name, "overwrite") for t in TABLES], 1, 1), messages)
    assert states == [t.name for t in TABLES]
    for table in TABLES:
        assert table_schema(client, table.name) == raw_schema(table), table.name
        rows = table_rows(client, table.name)
        assert_source_columns(rows, small.rows[table.name], table)
        assert_airbyte_columns(rows, small.extracted_at, generation=1, sync_id=1)

    # The next sync replaces orders with a third of them. Categories end INCOMPLETE and users
    # are never reached (the source failed): both tables stay as they were, their states held.
    later = small.extracted_at + timedelta(hours=1)
    part = small.rows["orders"][::3]
    messages = [*records("orders", part, later), state("orders"), status("orders", "COMPLETE"),
                *records("categories", small.rows["categories"][:5], later), state("categories"),
                status("categories", "INCOMPLETE")]
    streams = [("orders", "overwrite"), ("categories", "overwrite"), ("users", "overwrite")]
    assert write(tmp_path, config, catalog(streams, 2, 2), messages) == ["orders"]
    orders = table_rows(client, "orders")
    assert_source_columns(orders, part, TABLES_BY_NAME["orders"])
    assert_airbyte_columns(orders, later, generation=2, sync_id=2)
    for name in ("categories", "users"):
        assert_source_columns(table_rows(client, name), small.rows[name], TABLES_BY_NAME[name])


@pytest.mark.slow
def test_incremental_syncs_append_or_keep_the_latest_cursor_per_key(emulator, tmp_path, small, config):
    """orders: append + deduped on id by updated_at; payments: append. Two syncs, batches of 100."""
    client = emulator.client()
    orders, payments = small.rows["orders"], small.rows["payments"]
    day = timedelta(days=1)

    def version(row: dict, shift: timedelta, status_: str) -> dict:
        return {**row, "status": status_, "updated_at": row["updated_at"] + shift}

    stale_in_first = [version(o, -day, "pending") for o in orders[:5]]  # arrive after the current version
    messages = [*records("orders", orders + stale_in_first, small.extracted_at), state("orders"),
                *records("payments", payments, small.extracted_at), state("payments")]
    configured = catalog([("orders", "append_dedup"), ("payments", "append")], 1, 1)
    assert write(tmp_path, config, configured, messages) == ["orders", "payments"]
    assert_source_columns(table_rows(client, "orders"), orders, TABLES_BY_NAME["orders"])
    assert_source_columns(table_rows(client, "payments"), payments, TABLES_BY_NAME["payments"])

    later = small.extracted_at + timedelta(hours=6)
    updated = [version(o, day, "refunded") for o in orders[10:40]]
    stale = [version(o, -day, "cancelled") for o in orders[40:45]]
    new = [{**o, "id": str(uuid.UUID(int=i)), "order_number": f"ORD-NEW-{i}"} for i, o in enumerate(orders[:10], 1)]
    replayed = payments[:20]
    messages = [*records("orders", updated + stale + new, later, numbers_as_text=True), state("orders"),
                *records("payments", replayed, later, numbers_as_text=True), state("payments")]
    assert write(tmp_path, config, catalog([("orders", "append_dedup"), ("payments", "append")], 1, 2),
                 messages) == ["orders", "payments"]

    got = table_rows(client, "orders")
    latest = {o["id"]: o for o in orders} | {o["id"]: o for o in updated + new}
    assert_source_columns(got, list(latest.values()), TABLES_BY_NAME["orders"])
    second_sync = {o["id"] for o in updated + new}
    assert {r["id"] for r in got if r["_airbyte_meta"]["sync_id"] == 2} == second_sync
    assert all(r["_airbyte_extracted_at"] == later for r in got if r["id"] in second_sync)

    got = table_rows(client, "payments")
    assert len(got) == len(payments) + len(replayed)
    assert Counter(r["id"] for r in got) == Counter(p["id"] for p in payments + replayed)
    assert sorted(r["_airbyte_extracted_at"] for r in got)[-len(replayed):] == [later] * len(replayed)


@pytest.mark.slow
def test_appending_to_a_table_with_other_columns_fails_clearly(emulator, config):
    client = emulator.client()
    append_table(client, "raw", "orders", [("id", "STRING")], b"")
    with pytest.raises(WarehouseError, match=r"raw.orders has the columns \[\('id', 'STRING'\)\].*full refresh"):
        append_table(client, "raw", "orders", raw_schema(TABLES_BY_NAME["orders"]), b"")


# ---------------------------------------------------------------------------------------------
# The fallback without Airbyte: source Postgres -> postgres_feed -> the connector
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def marketplace_url():
    """The committed environment/postgres/init files loaded into a throwaway server, as the container does."""
    with postgres_server() as admin_url:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("CREATE ROLE marketplace LOGIN PASSWORD 'marketplace_secret'")
            conn.execute("CREATE DATABASE marketplace OWNER marketplace")
        url = admin_url.rsplit("/", 1)[0].replace("postgres@", "marketplace@") + "/marketplace"
        for path in sorted((ENVIRONMENT / "postgres" / "init").iterdir()):
            sql = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            result = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", url], input=sql, capture_output=True)
            assert result.returncode == 0, result.stderr.decode()[-2000:]
        yield url


@pytest.mark.slow
def test_postgres_feed_writes_what_the_grader_loads(emulator, marketplace_url, config):
    with psycopg.connect(marketplace_url) as conn:
        sources = discover(conn)
    assert [s.stream["name"] for s in sources] == sorted(t.name for t in TABLES)
    for source in sources:  # all nine: the source's types give the contract's layout
        table = TABLES_BY_NAME[source.stream["name"]]
        assert airbyte_schema(stream_columns(table.name, source.stream["json_schema"])) == raw_schema(table)
        assert source.stream["source_defined_primary_key"] == [[table.primary_key]]

    out = io.StringIO()
    before = datetime.now(UTC)
    sent = feed(marketplace_url, config, ["categories", "users"], out=out)
    truth = generate(CANONICAL_SEED, "default")
    assert sent == len(truth.rows["categories"]) + len(truth.rows["users"]), out.getvalue()
    assert "users: " in out.getvalue() and "rows/s" in out.getvalue()
    client = emulator.client()
    for name in ("categories", "users"):
        table = TABLES_BY_NAME[name]
        assert table_schema(client, name) == raw_schema(table)
        rows = table_rows(client, name)
        assert_source_columns(rows, truth.rows[name], table)
        (extracted_at,) = {r["_airbyte_extracted_at"] for r in rows}  # one extraction time per feed
        assert before - timedelta(seconds=1) <= extracted_at <= datetime.now(UTC)
        assert_airbyte_columns(rows, extracted_at, generation=1, sync_id=1)


# ---------------------------------------------------------------------------------------------
# The image's build context in environment/
# ---------------------------------------------------------------------------------------------


def image_build(service: str) -> tuple[Path, list[list[str]]]:
    """A compose service's build context and the instructions of its Dockerfile (continuations joined)."""
    build = yaml.safe_load((ENVIRONMENT / "docker-compose.yml").read_text())["services"][service]["build"]
    context = (ENVIRONMENT / build["context"]).resolve()
    text = (context / build.get("dockerfile", "Dockerfile")).read_text().replace("\\\n", " ")
    return context, [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_the_connector_services_build_one_image_from_the_airbyte_folder():
    """The destination and the no-Airbyte feed: one image, built from the folder holding both packages."""
    services = yaml.safe_load((ENVIRONMENT / "docker-compose.yml").read_text())["services"]
    builds = {name: services[name]["build"] for name in ("destination-bigquery-emulator", "postgres-feed")}
    assert all(b == {"context": "./airbyte", "dockerfile": "destination-bigquery-emulator/Dockerfile"}
               for b in builds.values()), builds
    assert services["destination-bigquery-emulator"]["image"] == services["postgres-feed"]["image"]


def test_the_image_pins_the_versions_the_tests_run():
    lines = (CONNECTOR_DIR / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert {name.split("[")[0]: version for name, version in pins.items()} == {
        name: importlib.metadata.version(name) for name in ("airbyte-cdk", "google-cloud-bigquery", "psycopg")}
    _, instructions = image_build("destination-bigquery-emulator")
    runs = [" ".join(i[1:]) for i in instructions if i[0] == "RUN"]
    assert runs[0].endswith("-r requirements.txt"), runs  # the pins first; the packages find them installed


def test_the_image_installs_from_its_build_context_alone(tmp_path):
    """Replays the Dockerfile's COPY and pip install steps on a copy of the build context only.

    What the image installs (the raw layer and the connector, from their folders in environment/)
    must import from that install, not from this repository, and print the spec. Third-party
    packages come from this interpreter's site-packages (their pins are the test above); with
    `python -S` nothing else of this environment, editable installs included, is on the path.
    """
    context, instructions = image_build("destination-bigquery-emulator")
    ignored = [line.strip().removeprefix("**/") for line in (context / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    root = tmp_path / "image"
    site = tmp_path / "site-packages"
    workdir = root
    installed = []
    for keyword, *args in instructions:
        if keyword == "WORKDIR":
            workdir = root / args[0].lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            source, target = context / args[0], workdir / args[1]
            assert source.exists() and source.resolve().is_relative_to(context), f"COPY {args[0]}: not in {context}"
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns(*ignored))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target / source.name)
        elif keyword == "RUN" and args[:2] == ["pip", "install"]:
            packages = [a for a in args[2:] if not a.startswith("-")]
            if "-r" in args:
                assert (workdir / args[args.index("-r") + 1]).is_file()
                continue
            result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                     "--no-deps", "--no-build-isolation", "--no-cache-dir", "--target", str(site),
                                     *packages], cwd=workdir, capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, result.stderr[-3000:]
            installed += packages
    assert installed == ["./raw-layer", "./destination-bigquery-emulator"]

    third_party = sysconfig.get_paths()["purelib"]
    code = ("import sys, raw_layer.airbyte as r, raw_layer.bigquery as b, destination_bigquery_emulator.postgres_feed as f; "
            "print(r.__file__, b.__file__, f.__file__); "
            "from destination_bigquery_emulator.main import main; sys.argv[1:] = ['spec']; main()")
    result = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{site}:{third_party}",
                                              "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    files, spec = result.stdout.splitlines()
    assert all(Path(f).is_relative_to(site) for f in files.split()), files
    assert json.loads(spec)["type"] == "SPEC"


@pytest.mark.slow
def test_the_interviewers_verify_probe_runs_on_the_raw_layer(emulator, config):
    """interviewer.sh verify's Python, run in the connector image, against the emulator: a load job and counts."""
    script = (ENVIRONMENT / "interviewer.sh").read_text()
    verify = script[script.index("verify() {"):script.index("preload() {")]
    probe = verify.split("in_stack_python <<'EOF'", 1)[1].split("\n", 1)[1].split("\nEOF\n", 1)[0]
    assert "from raw_layer.bigquery import" in probe
    result = subprocess.run([sys.executable, "-c", probe.replace("http://bigquery-emulator:9050", config["endpoint"])],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "probe from the postgres-feed container: 2 rows, OK" in result.stdout
    assert "datasets: marts, raw, staging" in result.stdout


# ---------------------------------------------------------------------------------------------
# Never losing data: commit points, evidence of completion, malformed input
# ---------------------------------------------------------------------------------------------


def write_raw(tmp_path: Path, config: dict, configured: dict, lines: list[str]) -> subprocess.CompletedProcess:
    """Run `write` on these exact input lines; the finished process, whatever its exit status."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(configured))
    return subprocess.run([*CONNECTOR, "write", "--config", str(tmp_path / "config.json"), "--catalog",
                           str(tmp_path / "catalog.json")], input="".join(line + "\n" for line in lines),
                          capture_output=True, text=True, timeout=300)


def error_messages(result: subprocess.CompletedProcess) -> list[str]:
    messages = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return [m["trace"]["error"]["message"] for m in messages if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]


def raw_tables(client) -> list[str]:
    return sorted(t.table_id for t in client.list_tables(f"{client.project}.raw"))


@pytest.fixture
def loaded(emulator, tmp_path, small, config):
    """raw.orders, raw.users and raw.payments from a first overwrite sync (no statuses, state after the records)."""
    names = ("orders", "users", "payments")
    messages = [m for n in names for m in [*records(n, small.rows[n], small.extracted_at), state(n)]]
    assert write(tmp_path, config, catalog([(n, "overwrite") for n in names], 1, 1), messages) == list(names)
    return emulator.client()


@pytest.mark.slow
@pytest.mark.parametrize("bad_line, reason", [
    ("this is not json", r"input line 4 is not JSON"),
    ('{"record": {"stream": "orders"}}', r"input line 4 is not an Airbyte message \(no \"type\"\)"),
    ('{"type": "RECORD", "record": {"stream": "orders", "data": {}}}',
     r"input line 4: the RECORD of stream 'orders' has no emitted_at"),
])
def test_malformed_input_fails_the_sync_naming_the_line_and_changes_nothing(loaded, tmp_path, small, config,
                                                                             bad_line, reason):
    client = loaded
    later = small.extracted_at + timedelta(hours=1)
    lines = [json.dumps(m) for m in records("orders", small.rows["orders"][:3], later)]
    lines += [bad_line, *[json.dumps(m) for m in [state("orders"), status("orders", "COMPLETE")]]]
    result = write_raw(tmp_path, config, catalog([("orders", "overwrite"), ("payments", "append")], 2, 2), lines)
    assert result.returncode != 0
    (message,) = error_messages(result)
    assert re.search(reason, message), message
    assert "tables are as they were" in message
    assert_source_columns(table_rows(client, "orders"), small.rows["orders"], TABLES_BY_NAME["orders"])
    assert len(table_rows(client, "payments")) == len(small.rows["payments"])
    assert raw_tables(client) == ["orders", "payments", "users"]  # no staging table left behind


@pytest.mark.slow
def test_without_statuses_only_a_state_after_the_last_record_evidences_completion(loaded, tmp_path, small, config):
    """Airbyte 0.63 forwards no statuses and always ends the input: records without a state after them
    (a source cut off mid-stream) replace nothing; a stream that received nothing is untouched."""
    client = loaded
    later = small.extracted_at + timedelta(hours=1)
    part = small.rows["users"][:7]
    lines = [json.dumps(m) for m in [*records("orders", small.rows["orders"][:5], later), state("orders"),
                                     *records("orders", small.rows["orders"][5:9], later),  # no state after these
                                     *records("users", part, later), state("users")]]
    streams = [("orders", "overwrite"), ("users", "overwrite"), ("payments", "overwrite")]
    result = write_raw(tmp_path, config, catalog(streams, 2, 2), lines)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "raw.orders: left as it was, the stream's completion is not evidenced" in result.stdout
    assert "raw.payments: left as it was, the stream received nothing" in result.stdout
    assert_source_columns(table_rows(client, "orders"), small.rows["orders"], TABLES_BY_NAME["orders"])
    assert len(table_rows(client, "payments")) == len(small.rows["payments"])
    assert_source_columns(table_rows(client, "users"), part, TABLES_BY_NAME["users"])  # evidenced: replaced
    assert raw_tables(client) == ["orders", "payments", "users"]


@pytest.mark.slow
def test_appended_records_reach_the_table_only_at_their_state(emulator, tmp_path, small, config):
    client = emulator.client()
    payments = small.rows["payments"]
    lines = [json.dumps(m) for m in [*records("payments", payments[:250], small.extracted_at), state("payments"),
                                     *records("payments", payments[250:400], small.extracted_at)]]
    result = write_raw(tmp_path, config, catalog([("payments", "append")], 1, 1), lines)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "150 records after the last state not appended" in result.stdout
    assert sorted(r["id"] for r in table_rows(client, "payments")) == sorted(p["id"] for p in payments[:250])
    assert raw_tables(client) == ["payments"]
