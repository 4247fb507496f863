"""Reading the candidate's marts for result checks: found through the manifest, typed, explained.

A mart that is missing, not built, or lacks a required column raises `MartProblem` whose
message names what was expected and what exists, so the failing check can say exactly why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, UTC
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from google.api_core.exceptions import NotFound, RetryError
from google.cloud import bigquery
from google.cloud.bigquery.retry import DEFAULT_RETRY

from checks.registry import GraderFault
from grader.dbt_run import relation_of

MARTS = ("fct_orders", "fct_payments", "dim_users", "dim_products", "fct_daily_sales", "fct_seller_performance")
# The timestamp columns the exercise contract (section 4) names per mart: the ones held to the rule that nothing
# lies after the extraction time. Columns a candidate adds beside them (an audit copy of a raw value) are theirs.
CONTRACT_TIMESTAMP_COLUMNS = {
    "fct_orders": ("created_at", "confirmed_at"),
    "fct_payments": ("event_timestamp",),
    "dim_products": ("updated_at",),
    "fct_daily_sales": ("order_date",),
}
TEMPORAL_TYPES = ("TIMESTAMP", "DATETIME", "DATE")
SAMPLE_SIZE = 10
# How long one warehouse call keeps retrying a failing connection before the grader concludes
# that its warehouse is gone (the client's own default is ten minutes per call).
WAREHOUSE_RETRY_S = 30.0


class MartProblem(Exception):
    """The mart cannot be read as the contract requires; the message says why. `unobserved`:
    the mart is not there at all (no manifest, no such model, no table), so nothing about its
    content was observed, as opposed to a mart that exists in the wrong shape."""

    def __init__(self, message: str, unobserved: bool = False):
        super().__init__(message)
        self.unobserved = unobserved


@dataclass
class Mart:
    model: str
    relation: str
    column_types: dict[str, str]
    sql: str
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ResultContext:
    """What result checks see: a warehouse client, the candidate's manifest and the truth."""

    client: bigquery.Client
    manifest: dict[str, Any] | None
    truth: dict[str, Any]
    label: str = "canonical"
    retry_s: float = WAREHOUSE_RETRY_S
    _cache: dict[tuple[str, tuple[str, ...], str], Mart] = field(default_factory=dict)

    @property
    def extracted_at(self) -> datetime:
        instant = parse_instant(self.truth["extracted_at"])
        assert instant is not None, "the ground truth always records its extraction time"
        return instant

    def relation(self, model: str) -> str:
        if self.manifest is None:
            raise MartProblem(f"{model}: dbt produced no manifest, so no model can be located", unobserved=True)
        relation = relation_of(self.manifest, model)
        if relation is None:
            present = sorted(n["name"] for n in self.manifest.get("nodes", {}).values()
                             if n.get("resource_type") == "model")
            raise MartProblem(f"expected a model named {model}; the project's models are: "
                              f"{', '.join(present) or 'none'}", unobserved=True)
        return relation

    def table_columns(self, model: str) -> tuple[str, dict[str, str]]:
        relation = self.relation(model)
        try:
            table = self.client.get_table(relation, retry=DEFAULT_RETRY.with_deadline(self.retry_s))
        except Exception as exc:  # not found, or the emulator's own answer about the table
            if not isinstance(exc, NotFound) and warehouse_gone(exc):
                raise GraderFault(f"the warehouse did not answer while reading {model}: {_first_line(exc)}") from exc
            raise MartProblem(f"{model} is declared but its table {relation} does not exist in the warehouse "
                              f"(did the model fail to build?): {str(exc).splitlines()[0][:200]}",
                              unobserved=True) from None
        return relation, {f.name.lower(): f.field_type.upper() for f in table.schema}

    def read(self, model: str, columns: list[str], where: str = "") -> Mart:
        """Rows of `model` with exactly `columns` (lower case), or MartProblem naming what is missing."""
        key = (model, tuple(columns), where)
        if key in self._cache:
            return self._cache[key]
        relation, types = self.table_columns(model)
        missing = [c for c in columns if c not in types]
        if missing:
            raise MartProblem(f"{model} ({relation}) lacks required column(s) {', '.join(missing)}; "
                              f"it has: {', '.join(sorted(types))}")
        sql = f"SELECT {', '.join(columns)} FROM `{relation}`" + (f" WHERE {where}" if where else "")
        rows = query(self.client, sql, retry_s=self.retry_s)
        mart = Mart(model, relation, {c: types[c] for c in columns}, sql, rows)
        self._cache[key] = mart
        return mart


def query(client: bigquery.Client, sql: str, *, retry_s: float = WAREHOUSE_RETRY_S) -> list[dict[str, Any]]:
    """Rows of `sql`, columns in lower case (see `fetch`)."""
    return [{k.lower(): v for k, v in row.items()} for row in fetch(client, sql, retry_s=retry_s)]


def fetch(client: bigquery.Client, sql: str, *, retry_s: float = WAREHOUSE_RETRY_S) -> list[bigquery.Row]:
    """Rows of `sql` as the client returns them. A warehouse that stopped answering is a
    GraderFault; any other error (the candidate's table or SQL) propagates as it is."""
    retry = DEFAULT_RETRY.with_deadline(retry_s)
    try:
        return list(client.query(sql, retry=retry).result(retry=retry))
    except Exception as exc:
        if warehouse_gone(exc):
            raise GraderFault(f"the warehouse did not answer: {_first_line(exc)}") from exc
        raise


def warehouse_gone(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the warehouse could not be reached: the
    grader's fault, never an answer about the candidate's tables."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (RetryError, ConnectionError, TimeoutError,
                                requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return True
        current = current.__cause__ or current.__context__
    return False


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def parse_instant(value: Any) -> datetime | None:
    """An instant from the truth (ISO string) or a warehouse value; naive values are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" UTC", "+00:00"))
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def as_decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def as_date(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]


def jsonable(value: Any) -> Any:
    """Warehouse values for evidence: exact decimals and ISO instants as strings."""
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value.to_integral() else str(value)
    if isinstance(value, datetime):
        return (parse_instant(value) or value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


def sample(items: list[Any], size: int = SAMPLE_SIZE) -> list[Any]:
    """A small, deterministic sample of offending rows for the report."""
    return [jsonable_row(i) for i in sorted(items, key=repr)[:size]]


def jsonable_row(item: Any) -> Any:
    if isinstance(item, dict):
        return {k: jsonable(v) for k, v in item.items()}
    return jsonable(item)
