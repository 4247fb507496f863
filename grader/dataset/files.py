"""Write a dataset to disk: the Postgres init files, the raw warehouse tables and the truth.

Layout of DIR (all deterministic for a given seed and scale):
    postgres/01_schema.sql      DDL and column comments
    postgres/02_data.sql.gz     COPY blocks (gzip without a timestamp)
    postgres/03_load_time.sql   run at load time: future timestamps stay ahead of the load moment
    raw/<table>.ndjson          the warehouse's raw shape, one JSON object per row
    raw/schema.json             BigQuery schema of each raw table
    truth.json                  the ground truth the grader's checks compare against
    manifest.json               seed, scale, extraction time, row counts, file hashes
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from raw_layer.airbyte import raw_tables

from grader.dataset.generator import Dataset
from grader.dataset.postgres import data_sql, load_time_sql, schema_sql
from grader.dataset.truth import iso


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a zero mtime and no file name, so equal input gives equal bytes."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def postgres_init_files(dataset: Dataset) -> dict[str, bytes]:
    return {
        "01_schema.sql": schema_sql().encode(),
        "02_data.sql.gz": gzip_bytes(data_sql(dataset.rows).encode()),
        "03_load_time.sql": load_time_sql(dataset.extracted_at).encode(),
    }


def write_postgres_init(dataset: Dataset, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in postgres_init_files(dataset).items():
        (directory / name).write_bytes(content)
        written.append(directory / name)
    return written


def write_dataset(dataset: Dataset, out: Path) -> dict[str, Any]:
    """Write everything under `out`; returns the manifest."""
    written = write_postgres_init(dataset, out / "postgres")
    raw_dir = out / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    schemas = {}
    for table in raw_tables(dataset.rows, dataset.extracted_at):
        (raw_dir / f"{table.name}.ndjson").write_bytes(table.ndjson)
        schemas[table.name] = table.schema
        written.append(raw_dir / f"{table.name}.ndjson")
    (raw_dir / "schema.json").write_text(json.dumps(schemas, indent=1) + "\n")
    (out / "truth.json").write_text(json.dumps(dataset.truth, sort_keys=True, indent=1) + "\n")
    written += [raw_dir / "schema.json", out / "truth.json"]
    manifest = {
        "seed": dataset.seed,
        "scale": dataset.scale,
        "extracted_at": iso(dataset.extracted_at),
        "row_counts": {name: len(rows) for name, rows in dataset.rows.items()},
        "files": {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(written)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest
