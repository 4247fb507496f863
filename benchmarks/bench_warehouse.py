"""How long the embedded warehouse takes to start, stop and load raw-shaped tables.

    python benchmarks/bench_warehouse.py [--rows 100000] [--starts 3]

Synthetic rows shaped like the raw layer (every column type the grader loads, Airbyte
columns included) split over four tables; deterministic, so runs compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, UTC
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raw_layer.bigquery import load_table  # noqa: E402
from raw_layer.schema import AIRBYTE_COLUMNS  # noqa: E402

from grader.warehouse import EmbeddedEmulator, prepare_datasets  # noqa: E402

SCHEMA = [("id", "STRING"), ("seq", "INT64"), ("amount", "NUMERIC"), ("is_active", "BOOL"),
          ("created_at", "TIMESTAMP"), ("confirmed_at", "DATETIME"), ("attributes", "JSON"),
          ("ship_date", "DATE"), ("rating", "FLOAT64")] + list(AIRBYTE_COLUMNS)
SHARES = {"orders": 0.3, "order_items": 0.4, "payments": 0.2, "event_log": 0.1}
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def ndjson(table: str, rows: int) -> bytes:
    lines = []
    for i in range(rows):
        at = EPOCH + timedelta(seconds=97 * i)
        lines.append(json.dumps({
            "id": f"{table}-{i:08d}", "seq": i, "amount": f"{i % 100000}.{i % 100:02d}", "is_active": i % 3 != 0,
            "created_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "confirmed_at": (at - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S.%f"),
            "attributes": {"condition": ["new", "used"][i % 2], "tags": [f"t{i % 7}"]},
            "ship_date": at.date().isoformat(), "rating": (i % 50) / 10,
            "_airbyte_raw_id": f"raw-{table}-{i}", "_airbyte_extracted_at": "2025-06-01T00:00:00Z",
            "_airbyte_meta": {"changes": [], "sync_id": 1}, "_airbyte_generation_id": 1,
        }, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows over all tables (default 100000)")
    parser.add_argument("--starts", type=int, default=3, help="emulator starts to time (default 3)")
    args = parser.parse_args()

    files = {table: ndjson(table, round(args.rows * share)) for table, share in SHARES.items()}
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as cache:
        starts, stops = [], []
        for _ in range(args.starts):
            warehouse = EmbeddedEmulator(Path(cache), None)
            starts.append(warehouse.start_seconds)
            began = time.perf_counter()
            warehouse.stop()
            stops.append(time.perf_counter() - began)
        print(f"start: {' '.join(f'{s:.2f}' for s in starts)} s (median {statistics.median(starts):.2f}; "
              f"the first copies the spatial extension into the cache)")
        print(f"stop:  {' '.join(f'{s:.2f}' for s in stops)} s")

        with EmbeddedEmulator(Path(cache), None) as warehouse:
            client = warehouse.client()
            began = time.perf_counter()
            prepare_datasets(client)
            print(f"prepare_datasets: {time.perf_counter() - began:.2f} s")
            total_rows, total_began = 0, time.perf_counter()
            for table, data in files.items():
                began = time.perf_counter()
                rows = load_table(client, "raw", table, SCHEMA, data)
                seconds = time.perf_counter() - began
                total_rows += rows
                print(f"load raw.{table}: {rows} rows, {len(data) / 1e6:.1f} MB in {seconds:.2f} s "
                      f"({rows / seconds:,.0f} rows/s)")
            seconds = time.perf_counter() - total_began
            print(f"load total: {total_rows} rows in {seconds:.2f} s ({total_rows / seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main()
