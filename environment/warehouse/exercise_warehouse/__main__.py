"""`python -m exercise_warehouse start ...`: bqemulator's own CLI with our changes applied.

Extra options (environment variables, so bqemulator's CLI stays as documented):
EXERCISE_WAREHOUSE_ALLOWED_DIR   the one folder DuckDB may still read and write (load-job staging)
EXERCISE_WAREHOUSE_MEMORY_LIMIT  DuckDB's memory_limit, e.g. "3GB"
EXERCISE_WAREHOUSE_DATASETS      datasets created as soon as the server answers, e.g. "raw,staging,marts"
"""

from __future__ import annotations

import sys


def main() -> None:
    from exercise_warehouse.launcher import apply

    apply()
    from bqemulator.cli import main as bqemulator_main

    from exercise_warehouse.datasets import start_in_background

    if sys.argv[1:2] == ["start"]:
        start_in_background(sys.argv[2:])

    bqemulator_main()


if __name__ == "__main__":
    main()
