"""Load a dataset's raw tables into a warehouse, in the contract's raw shape (§3).

The grader never depends on the candidate's Airbyte run: it loads `raw` itself, from the
same rows and the same raw definition (grader.dataset.raw) that the dataset writer uses.
"""

from __future__ import annotations

from google.cloud import bigquery

from grader.dataset.generator import Dataset
from grader.dataset.raw import raw_tables
from grader.dataset.schema import RAW_DATASET
from grader.warehouse import WarehouseError, load_table, prepare_datasets


def load_raw(client: bigquery.Client, dataset: Dataset) -> dict[str, int]:
    """Drop every dataset, recreate raw/staging/marts, load each raw table; rows loaded per table."""
    prepare_datasets(client)
    loaded = {}
    for table in raw_tables(dataset.rows, dataset.extracted_at):
        loaded[table.name] = load_table(client, RAW_DATASET, table.name, table.schema, table.ndjson)
        if loaded[table.name] != table.rows:
            raise WarehouseError(f"raw.{table.name}: loaded {loaded[table.name]} rows, expected {table.rows}")
    return loaded
