"""Copy the connector's code into its Docker build context in the exercise environment.

The environment folder is what a candidate receives, without this repository, so the image
must build from that folder alone: environment/airbyte/destination-bigquery-emulator/src holds
a copy of this package and of the grader modules it imports (the raw layout, the schema, the
warehouse helpers). Run `python -m destination_bigquery_emulator.build_context` after changing
any of them; tests/test_destination.py fails while the copy differs from the source.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTEXT = REPO / "environment" / "airbyte" / "destination-bigquery-emulator"
SOURCES = (
    "destination_bigquery_emulator/__init__.py",
    "destination_bigquery_emulator/config.py",
    "destination_bigquery_emulator/destination.py",
    "destination_bigquery_emulator/main.py",
    "destination_bigquery_emulator/postgres_feed.py",
    "destination_bigquery_emulator/streams.py",
    "grader/__init__.py",
    "grader/dataset/__init__.py",
    "grader/dataset/money.py",
    "grader/dataset/raw.py",
    "grader/dataset/schema.py",
    "grader/sandbox.py",
    "grader/warehouse.py",
)


def sources() -> dict[str, bytes]:
    """The copy's files (path under src/ -> content)."""
    return {path: (REPO / path).read_bytes() for path in SOURCES}


def write(context: Path = CONTEXT) -> list[Path]:
    """Replace `context`/src with a fresh copy; the files written."""
    src = context / "src"
    shutil.rmtree(src, ignore_errors=True)
    written = []
    for path, content in sources().items():
        target = src / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(target)
    return written


if __name__ == "__main__":
    for path in write():
        print(path.relative_to(REPO))
