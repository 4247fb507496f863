"""Reading the candidate's marts for result checks: found through the manifest, typed, explained.

A mart that is missing, not built, or lacks a required column raises `MartProblem` whose
message names what was expected and what exists, so the failing check can say exactly why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from google.cloud import bigquery

from grader.dbt_run import relation_of

MARTS = ("fct_orders", "fct_payments", "dim_users", "dim_products", "fct_daily_sales", "fct_seller_performance")
SAMPLE_SIZE = 10


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
    _cache: dict[tuple[str, tuple[str, ...], str], Mart] = field(default_factory=dict)

    @property
    def extracted_at(self) -> datetime:
        return parse_instant(self.truth["extracted_at"])

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
            table = self.client.get_table(relation)
        except Exception as exc:  # not found, or the emulator's own error
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
        rows = query(self.client, sql)
        mart = Mart(model, relation, {c: types[c] for c in columns}, sql, rows)
        self._cache[key] = mart
        return mart


def query(client: bigquery.Client, sql: str) -> list[dict[str, Any]]:
    return [{k.lower(): v for k, v in row.items()} for row in client.query(sql).result()]


def parse_instant(value: Any) -> datetime | None:
    """An instant from the truth (ISO string) or a warehouse value; naive values are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" UTC", "+00:00"))
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


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
        return value.astimezone(timezone.utc).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]


def jsonable(value: Any) -> Any:
    """Warehouse values for evidence: exact decimals and ISO instants as strings."""
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value.to_integral() else str(value)
    if isinstance(value, datetime):
        return parse_instant(value).strftime("%Y-%m-%dT%H:%M:%SZ")
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
