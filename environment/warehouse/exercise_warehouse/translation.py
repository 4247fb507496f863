"""BigQuery SQL translation fixes: where bqemulator's sqlglot translation differs from BigQuery.

`before(sql)` rewrites BigQuery SQL before bqemulator translates it; `install()` adds or
overrides rules inside sqlglot / bqemulator once per process. Each fix names the BigQuery
behaviour it restores; tests/test_fidelity.py holds the cases.
"""

from __future__ import annotations


def before(bq_sql: str) -> str:
    """The BigQuery SQL bqemulator should translate (unchanged when no fix applies)."""
    return bq_sql


def install() -> None:
    """Register the fixes that live at the sqlglot level (idempotent)."""
