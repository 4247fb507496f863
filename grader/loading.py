"""Load a dataset's raw tables into a warehouse, in the contract's raw shape (§3).

The grader never depends on the candidate's Airbyte run: it loads `raw` itself, from the
same rows and the same raw definition (raw_layer.airbyte) that the dataset writer and the
exercise's Airbyte destination use.
"""

from __future__ import annotations

from google.cloud import bigquery
from raw_layer.airbyte import raw_tables
from raw_layer.bigquery import WarehouseError, load_table
from raw_layer.schema import RAW_DATASET

from grader.dataset.generator import Dataset
from grader.warehouse import prepare_datasets


def load_raw(client: bigquery.Client, dataset: Dataset) -> dict[str, int]:
    """Drop every dataset, recreate raw/staging/marts, load each raw table; rows loaded per table."""
    prepare_datasets(client)
    loaded = {}
    for table in raw_tables(dataset.rows, dataset.extracted_at):
        loaded[table.name] = load_table(client, RAW_DATASET, table.name, table.schema, table.ndjson)
        if loaded[table.name] != table.rows:
            raise WarehouseError(f"raw.{table.name}: loaded {loaded[table.name]} rows, expected {table.rows}")
    return loaded
