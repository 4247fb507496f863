"""DuckDB's spatial extension where bqemulator's `INSTALL spatial` finds it without a network.

bqemulator installs the spatial extension at every start. Offline (a grading machine, a
candidate's laptop behind a proxy) that download fails, so the file shipped in the
duckdb-extension-spatial wheel is copied into `$HOME/.duckdb/extensions/<version>/<platform>/`
of the process that starts the engine. The warehouse image runs this at build time:

    python -m exercise_warehouse.extensions [HOME]
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import os
import shutil
import sys
from pathlib import Path


def install_spatial(home: Path) -> Path:
    """Copy the wheel's spatial extension under `home`/.duckdb (atomically); the file's path."""
    import duckdb

    version = f"v{importlib.metadata.version('duckdb')}"
    source = Path(str(importlib.resources.files("duckdb_extension_spatial"))) / "extensions" / version / \
        "spatial.duckdb_extension"
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: duckdb-extension-spatial must match duckdb {version}")
    (platform,) = duckdb.connect().execute("PRAGMA platform").fetchone() or ("",)
    target = home / ".duckdb" / "extensions" / version / platform / source.name
    if not target.is_file() or target.stat().st_size != source.stat().st_size:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    return target


if __name__ == "__main__":
    print(install_spatial(Path(sys.argv[1] if len(sys.argv) > 1 else Path.home())))
