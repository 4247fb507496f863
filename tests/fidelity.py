"""Run the BigQuery fidelity cases (tests/fidelity_cases.yaml) against a warehouse and judge them.

Shared by tests/test_fidelity.py and benchmarks/bench_fidelity.py, so the test and the figure
count the same thing. A case is `correct` when the rows (and the column types, when the case
names them) are what BigQuery documents, `wrong` when the query ran but answered otherwise,
`error` when the engine refused or failed the query that BigQuery runs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml
from google.cloud import bigquery

CASES_PATH = Path(__file__).with_name("fidelity_cases.yaml")
DATASET = "fidelity"
GROUPS = ("high", "medium", "low")
# The client would retry a 5xx answer for ten minutes; a fidelity case wants the first answer.
NO_RETRY = bigquery.DEFAULT_RETRY.with_predicate(lambda _exc: False)
QUERY_TIMEOUT_S = 30.0

Verdict = Literal["correct", "wrong", "error"]


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    sql: str
    expect: list[list[Any]] | None
    error: bool
    types: list[str] | None
    source: str
    engine_difference: str | None
    unordered_arrays: bool


@dataclass(frozen=True)
class Outcome:
    id: str
    group: str
    verdict: Verdict
    observed: str


def load_cases(path: Path = CASES_PATH) -> tuple[dict[str, Any], list[Case]]:
    """(setup tables, cases) from the YAML file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cases = [Case(id=c["id"], group=c["group"], sql=c["sql"], expect=c.get("expect"), error=bool(c.get("error")),
                  types=c.get("types"), source=c["source"], engine_difference=c.get("engine_difference"),
                  unordered_arrays=bool(c.get("unordered_arrays")))
             for c in data["cases"]]
    return dict(data.get("setup", {})), cases


def prepare(client: bigquery.Client, setup: dict[str, Any]) -> None:
    """A fresh `fidelity` dataset holding the tables the cases read, loaded as the raw layer is."""
    from raw_layer.bigquery import load_table

    client.delete_dataset(f"{client.project}.{DATASET}", delete_contents=True, not_found_ok=True)
    client.create_dataset(f"{client.project}.{DATASET}")
    for name, table in setup.items():
        ndjson = "".join(json.dumps(row) + "\n" for row in table["rows"]).encode()
        load_table(client, DATASET, name, [tuple(column) for column in table["schema"]], ndjson)


def run_case(client: bigquery.Client, case: Case) -> Outcome:
    try:
        job = client.query(case.sql, job_retry=None, retry=NO_RETRY)
        result = job.result(timeout=QUERY_TIMEOUT_S, retry=NO_RETRY)
        rows = [list(row.values()) for row in result]
        types = [field.field_type for field in result.schema or []]
    except Exception as exc:  # noqa: BLE001 — any failure of a query BigQuery runs is the engine's error
        message = " ".join(str(exc).split())[:400]
        return Outcome(case.id, case.group, "correct" if case.error else "error", message)
    observed = json.dumps({"rows": [[_plain(v) for v in row] for row in rows], "types": types}, default=str)
    if case.error:
        return Outcome(case.id, case.group, "wrong", f"ran, BigQuery refuses it: {observed}")
    same_rows = len(rows) == len(case.expect or []) and all(
        _same_row(row, want, case.unordered_arrays) for row, want in zip(rows, case.expect or []))
    same_types = case.types is None or [_standard(t) for t in types] == case.types
    return Outcome(case.id, case.group, "correct" if same_rows and same_types else "wrong", observed)


def run_all(client: bigquery.Client, cases: list[Case] | None = None) -> list[Outcome]:
    setup, all_cases = load_cases()
    prepare(client, setup)
    return [run_case(client, case) for case in (all_cases if cases is None else cases)]


_STANDARD = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


def _standard(field_type: str) -> str:
    return _STANDARD.get(field_type, field_type)


def _same_row(row: list[Any], want: list[Any], unordered_arrays: bool) -> bool:
    return len(row) == len(want) and all(_same(v, w, unordered_arrays) for v, w in zip(row, want))


def _same(value: Any, want: Any, unordered_arrays: bool = False) -> bool:
    """BigQuery's answer `want` (YAML notation, see the cases file) against the client's value."""
    if want is None or value is None:
        return want is None and value is None
    if isinstance(value, bool) or isinstance(want, bool):
        return isinstance(value, bool) and isinstance(want, bool) and value == want
    if isinstance(value, Decimal):
        try:
            return value == Decimal(str(want))
        except InvalidOperation:
            return False
    if isinstance(value, float):
        if not isinstance(want, (int, float)):
            return False
        if math.isinf(value) or math.isinf(want):
            return value == want
        return math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(value, int):
        return isinstance(want, int) and value == want
    if isinstance(value, dt.datetime):
        return isinstance(want, str) and _plain(value) == want
    if isinstance(value, dt.date):
        return isinstance(want, str) and value.isoformat() == want
    if isinstance(value, list):
        if not isinstance(want, list) or len(value) != len(want):
            return False
        if unordered_arrays:
            value = sorted(value, key=lambda v: json.dumps(_plain(v), sort_keys=True))
            want = sorted(want, key=lambda v: json.dumps(v, sort_keys=True, default=str))
        return all(_same(v, w, unordered_arrays) for v, w in zip(value, want))
    if isinstance(value, dict):
        return isinstance(want, dict) and value.keys() == want.keys() and all(
            _same(value[k], want[k], unordered_arrays) for k in value)
    return value == want


def _plain(value: Any) -> Any:
    """A value in the cases file's notation (for messages and comparison of timestamps)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            utc = value.astimezone(dt.UTC)
            fraction = f".{utc.microsecond:06d}".rstrip("0") if utc.microsecond else ""
            return utc.strftime("%Y-%m-%d %H:%M:%S") + fraction + " UTC"
        fraction = f".{value.microsecond:06d}".rstrip("0") if value.microsecond else ""
        return value.strftime("%Y-%m-%dT%H:%M:%S") + fraction
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def tally(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    """{group: {correct, wrong, error, total}} in GROUPS order."""
    table = {g: {"correct": 0, "wrong": 0, "error": 0, "total": 0} for g in GROUPS}
    for outcome in outcomes:
        row = table[outcome.group]
        row[outcome.verdict] += 1
        row["total"] += 1
    return table


# ---------------------------------------------------------------- the dbt project fixture
DBT_PROJECT = Path(__file__).parent / "fixtures" / "dbt_projects" / "fidelity"
# Each node of the fixture, by how likely a candidate's project emits its SQL.
DBT_NODE_GROUPS = {
    "payments_raw": "high", "rates": "high", "stg_payments": "high", "fct_payments": "high",
    "inc_merge": "high", "inc_insert_overwrite": "medium", "inc_insert_overwrite_static": "medium",
    "payments_snapshot": "medium", "payments_check_snapshot": "medium", "inc_microbatch": "low",
    "mv_payments": "low",
}
# What the marts hold after the second build (computed by hand from the seeds; see the models).
DBT_VALUE_CASES = [
    ("dbt.values.fct_payments", "high",
     "SELECT event_id, CAST(amount AS STRING), amount_usd, confirmed_at_utc FROM `{project}.dbt_fidelity.fct_payments` ORDER BY event_id",
     [["e1", "10.1", "10.1", "2024-03-01 10:00:00 UTC"], ["e2", "0.2", "0.22", None],
      ["e3", "1234.565", "1567.9", "2024-11-03 08:30:00 UTC"], ["e4", "0.1", "0.11", "2024-03-10 07:30:00 UTC"]]),
    ("dbt.values.fct_payments_contract_types", "high",
     "SELECT column_name, data_type FROM `{project}.dbt_fidelity.INFORMATION_SCHEMA.COLUMNS` "
     "WHERE table_name = 'fct_payments' AND column_name IN ('amount', 'amount_usd', 'event_date') ORDER BY column_name",
     [["amount", "NUMERIC"], ["amount_usd", "NUMERIC"], ["event_date", "DATE"]]),
    ("dbt.values.inc_merge_one_row_per_key", "high",
     "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM `{project}.dbt_fidelity.inc_merge`", [[4, 4]]),
    ("dbt.values.inc_insert_overwrite_rows", "medium",
     "SELECT event_date, COUNT(*) FROM `{project}.dbt_fidelity.inc_insert_overwrite` GROUP BY 1 ORDER BY 1",
     [["2024-03-01", 1], ["2024-03-02", 1], ["2024-03-03", 2]]),
    ("dbt.values.snapshot_current_rows", "medium",
     "SELECT COUNT(*) FROM `{project}.dbt_fidelity_snapshots.payments_snapshot` WHERE dbt_valid_to IS NULL", [[4]]),
]


def run_dbt_fixture(endpoint: str, client: bigquery.Client, work_dir: Path) -> list[Outcome]:
    """Build the fixture project twice with the grader's own dbt runner; one outcome per node
    (a node must succeed in both builds) and one per value case read afterwards."""
    import shutil

    from grader.dbt_run import build, rerun

    for dataset in ("dbt_fidelity", "dbt_fidelity_snapshots"):
        client.delete_dataset(f"{client.project}.{dataset}", delete_contents=True, not_found_ok=True)
    project = work_dir / "project"
    shutil.copytree(DBT_PROJECT, project)
    first = build(project, endpoint, work_dir / "dbt", timeout_s=600)
    second = rerun(project, endpoint, work_dir / "dbt", ["build"], 600, "second")
    outcomes = []
    for name, group in DBT_NODE_GROUPS.items():
        seen = []
        for label, run in (("first build", first), ("second build", second)):
            node = next((r for r in run.results if r.name == name), None)
            seen.append(f"{label}: {node.status if node else 'not run'}"
                        + (f" ({' '.join((node.message or '').split())[:300]})" if node and node.status not in
                           ("success", "pass") else ""))
        ok = all(s.split(": ", 1)[1].startswith(("success", "pass")) for s in seen)
        outcomes.append(Outcome(f"dbt.node.{name}", group, "correct" if ok else "error", "; ".join(seen)))
    tests = [r for r in second.results if r.resource_type == "test"]
    failing = [f"{r.name}: {r.status}" for r in tests if r.status != "pass"]
    outcomes.append(Outcome("dbt.generic_tests", "high", "correct" if tests and not failing else "error",
                            f"{len(tests)} tests; not passing: {failing or 'none'}"))
    for case_id, group, sql, expect in DBT_VALUE_CASES:
        case = Case(case_id, group, sql.format(project=client.project), expect, False, None, "fixture", None, False)
        outcomes.append(run_case(client, case))
    return outcomes

