"""The warehouse's raw layout (exercise contract §3): Airbyte destinations-v2 typed tables.

One table per source table, the source columns with the contract's type mapping plus the
`_airbyte_*` columns. This module is the one raw writer: the grader's loader (`raw_tables`,
from generated rows) and the Airbyte destination (destination_bigquery_emulator, from the
RECORD messages of a sync) both type columns, encode values and add the `_airbyte_*` columns
here, so a raw table has one shape whichever path filled it.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, NamedTuple

from raw_layer.money import fmt
from raw_layer.schema import AIRBYTE_COLUMNS, TABLES, TABLES_BY_NAME, Table, bq_type_for

_RAW_ID_NAMESPACE = uuid.UUID("6f1c7a52-8d1e-4c55-9a3b-2f0c1d7e9b10")
GENERATION_ID = 1


@dataclass(frozen=True)
class RawTable:
    name: str
    schema: list[tuple[str, str]]
    ndjson: bytes
    rows: int


class RawColumn(NamedTuple):
    name: str
    bq_type: str
    json_text: bool = False  # the source sends this JSON column's values as JSON text


# ---------------------------------------------------------------------------------------------
# Types: a column's BigQuery type from the contract (Postgres types) or from an Airbyte stream
# ---------------------------------------------------------------------------------------------

# Airbyte protocol v1 well-known types ({"$ref": "WellKnownTypes.json#/definitions/<name>"}).
_WELL_KNOWN_TYPES = {
    "String": "STRING", "BinaryData": "STRING", "TimeWithTimezone": "STRING", "TimeWithoutTimezone": "STRING",
    "Boolean": "BOOL", "Date": "DATE", "Integer": "INT64", "Number": "NUMERIC",
    "TimestampWithTimezone": "TIMESTAMP", "TimestampWithoutTimezone": "DATETIME",
}
_JSON_TYPES = {"integer": "INT64", "number": "NUMERIC", "boolean": "BOOL", "object": "JSON", "array": "JSON"}


def bq_type_for_json_schema(schema: Mapping[str, Any]) -> str:
    """A stream property's raw column type from its JSON schema and Airbyte's type hints (contract §3).

    A union of types, or no type at all, keeps the value as it is: JSON.
    """
    if "$ref" in schema:
        return _WELL_KNOWN_TYPES.get(str(schema["$ref"]).rsplit("/", 1)[-1], "JSON")
    declared = schema.get("type")
    types = [declared] if isinstance(declared, str) else [t for t in declared or () if t != "null"]
    if len(types) != 1:
        return "JSON"
    if types[0] == "string":
        airbyte_type, format_ = schema.get("airbyte_type"), schema.get("format")
        if airbyte_type == "timestamp_without_timezone":
            return "DATETIME"
        if airbyte_type == "timestamp_with_timezone" or format_ == "date-time":
            return "TIMESTAMP"
        return "DATE" if format_ == "date" else "STRING"
    if types[0] == "number" and schema.get("airbyte_type") == "integer":
        return "INT64"
    return _JSON_TYPES.get(types[0], "JSON")


def stream_columns(stream: str, json_schema: Mapping[str, Any]) -> list[RawColumn]:
    """The raw columns of an Airbyte stream, in the order of its JSON schema's properties.

    Airbyte's Postgres source declares jsonb columns as plain strings holding JSON text; where
    the contract says a column of one of its tables is JSON, it is loaded as JSON (decoded),
    so that a sync gives the same layout as the grader's load.
    """
    contract = {c.name: c.bq_type for c in TABLES_BY_NAME[stream].columns} if stream in TABLES_BY_NAME else {}
    columns = []
    for name, prop in (json_schema.get("properties") or {}).items():
        bq_type = bq_type_for_json_schema(prop)
        if bq_type == "STRING" and contract.get(name) == "JSON":
            columns.append(RawColumn(name, "JSON", json_text=True))
        else:
            columns.append(RawColumn(name, bq_type))
    return columns


def airbyte_schema(columns: Iterable[tuple[str, str] | RawColumn]) -> list[tuple[str, str]]:
    """A raw table's BigQuery schema: its source columns, then the `_airbyte_*` columns."""
    return [(c[0], c[1]) for c in columns] + list(AIRBYTE_COLUMNS)


def raw_schema(table: Table) -> list[tuple[str, str]]:
    return airbyte_schema((c.name, c.bq_type) for c in table.columns)


# ---------------------------------------------------------------------------------------------
# Values: how a typed column holds a value in a newline-delimited JSON load (see
# raw_layer.bigquery.load_table for what the emulator takes)
# ---------------------------------------------------------------------------------------------

_NUMERIC_SCALE = Decimal("1e-9")  # BigQuery NUMERIC: 38 digits, 9 of them after the point
_NUMERIC_LIMIT = Decimal("1e29")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _numeric(value: Any) -> str:
    if isinstance(value, float):
        value = repr(value)  # the shortest text that reads back as this float: 12.3, not 12.300000000000001
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise ValueError(f"not a number: {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    if int(number.as_tuple().exponent) < -9:  # finite: the exponent is a number
        number = number.quantize(_NUMERIC_SCALE, rounding=ROUND_HALF_UP)
    if abs(number) >= _NUMERIC_LIMIT:
        raise ValueError(f"out of NUMERIC range: {value!r}")
    return format(number, "f")


def _int64(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, (str, Decimal)):
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not an integer: {value!r}") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise ValueError(f"not an integer: {value!r}")
        value = int(number)
    if isinstance(value, bool) or not isinstance(value, int) or not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"not an INT64: {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"not a boolean: {value!r}")
    return value


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float, dict, list)):
        return json.dumps(value, separators=(",", ":"))  # a non-string JSON value keeps its JSON text
    raise ValueError(f"not a string: {value!r}")


def _datetime_value(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"not a timestamp: {value!r}")
    return value


def _timestamp(value: Any) -> str:
    """UTC with microseconds and a Z; text without an offset is UTC, as BigQuery reads it."""
    moment = _datetime_value(value)
    if moment.tzinfo is None:
        if not isinstance(value, str):
            raise ValueError(f"a TIMESTAMP needs an aware datetime: {value!r}")
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"  # drop "+00:00"


def _datetime(value: Any) -> str:
    """Wall-clock time with microseconds; a value with a UTC offset is not one."""
    moment = _datetime_value(value)
    if moment.tzinfo is not None:
        raise ValueError(f"a DATETIME has no UTC offset: {value!r}")
    return moment.isoformat(timespec="microseconds")


def _date(value: Any) -> str:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError(f"not an ISO 8601 date: {value!r}") from None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValueError(f"not a date: {value!r}")
    return value.isoformat()


def _json(value: Any) -> Any:
    return value  # the JSON value itself: a JSON column holds the object or array, not its text


_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "STRING": _string, "NUMERIC": _numeric, "INT64": _int64, "BOOL": _bool,
    "TIMESTAMP": _timestamp, "DATETIME": _datetime, "DATE": _date, "JSON": _json,
}


def encode(value: Any, bq_type: str) -> Any:
    """`value` as a JSON load into a `bq_type` column takes it; ValueError if it is no such value.

    Accepts Python values (Decimal, datetime, ...) and their JSON forms as Airbyte sources emit
    them (numbers as JSON numbers or text, timestamps as ISO 8601 text).
    """
    return None if value is None else _ENCODERS[bq_type](value)


_bq_type_for = functools.cache(bq_type_for)


def raw_value(value: Any, pg_type: str) -> Any:
    """A generated source value (NUMERIC as integer cents) as the typed raw column holds it."""
    if value is not None and pg_type.startswith("NUMERIC"):
        value = fmt(value)
    return encode(value, _bq_type_for(pg_type))


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


def airbyte_record(columns: Sequence[RawColumn], data: Mapping[str, Any], *, raw_id: str,
                   extracted_at: datetime | str, generation_id: int, sync_id: int,
                   changes: Sequence[Mapping[str, str]] = (), strict: bool = False) -> dict[str, Any]:
    """One raw row: each column's value from `data` (absent = NULL), typed, then the `_airbyte_*` columns.

    A value that does not fit its column raises ValueError when `strict`; otherwise it becomes
    NULL and a NULLED change in `_airbyte_meta`, as Airbyte's typed destinations record it.
    """
    record: dict[str, Any] = {}
    changes = list(changes)
    for name, bq_type, json_text in columns:
        value = data.get(name)
        try:
            if json_text and isinstance(value, str):
                value = json.loads(value)
            record[name] = encode(value, bq_type)
        except ValueError as exc:  # json.JSONDecodeError is one too
            if strict:
                raise ValueError(f"column {name}: {exc}") from exc
            record[name] = None
            changes.append({"field": name, "change": "NULLED", "reason": "DESTINATION_SERIALIZATION_ERROR"})
    record["_airbyte_raw_id"] = raw_id
    record["_airbyte_extracted_at"] = encode(extracted_at, "TIMESTAMP")
    record["_airbyte_meta"] = {"changes": changes, "sync_id": sync_id}
    record["_airbyte_generation_id"] = generation_id
    return record


def to_ndjson(records: Iterable[Mapping[str, Any]]) -> bytes:
    """Newline-delimited JSON for a load job (empty for no records: the emulator rejects an empty line)."""
    lines = [json.dumps(record, separators=(",", ":")) for record in records]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _table_columns(table: Table) -> tuple[list[RawColumn], frozenset[str]]:
    """The table's raw columns and the names of its NUMERIC columns (generated as integer cents)."""
    return ([RawColumn(c.name, c.bq_type) for c in table.columns],
            frozenset(c.name for c in table.columns if c.pg_type.startswith("NUMERIC")))


def _raw_record(table: Table, columns: list[RawColumn], cents: frozenset[str], row: dict[str, Any],
                extracted_at: datetime) -> dict[str, Any]:
    data = {c.name: fmt(row[c.name]) if c.name in cents and row[c.name] is not None else row[c.name]
            for c in columns}
    raw_id = str(uuid.uuid5(_RAW_ID_NAMESPACE, f"{table.name}:{row[table.primary_key]}"))
    return airbyte_record(columns, data, raw_id=raw_id, extracted_at=extracted_at, generation_id=GENERATION_ID,
                          sync_id=GENERATION_ID, strict=True)


def raw_record(table: Table, row: dict[str, Any], extracted_at: datetime) -> dict[str, Any]:
    return _raw_record(table, *_table_columns(table), row, extracted_at)


def raw_table(table: Table, rows: list[dict[str, Any]], extracted_at: datetime) -> RawTable:
    """One source table's rows in the raw shape, as NDJSON for a load job."""
    columns, cents = _table_columns(table)
    records = (_raw_record(table, columns, cents, row, extracted_at) for row in rows)
    return RawTable(table.name, raw_schema(table), to_ndjson(records), len(rows))


def raw_tables(rows: dict[str, list[dict[str, Any]]], extracted_at: datetime) -> Iterator[RawTable]:
    for table in TABLES:
        yield raw_table(table, rows[table.name], extracted_at)
