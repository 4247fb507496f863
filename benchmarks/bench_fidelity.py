"""BigQuery fidelity of the grading engine: correct / wrong / error per likelihood group.

    python benchmarks/bench_fidelity.py [--no-dbt] [--show wrong,error] [--json OUT]

Runs tests/fidelity_cases.yaml (GoogleSQL with the answers BigQuery documents) and the dbt
fixture project (every materialisation and strategy, built twice with real dbt) against the
embedded engine, started the way the grader starts it (grader.warehouse.EmbeddedEmulator).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.warehouse import EmbeddedEmulator  # noqa: E402
from tests.fidelity import GROUPS, run_all, run_dbt_fixture, tally  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-dbt", action="store_true", help="SQL cases only (skip the dbt fixture, ≈1 min)")
    parser.add_argument("--show", default="wrong,error", help="verdicts whose cases are listed (comma separated, or 'none')")
    parser.add_argument("--json", type=Path, help="also write every outcome to this file")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as tmp:
        work = Path(tmp)
        with EmbeddedEmulator(work, work / "bqemulator.log") as warehouse:
            client = warehouse.client()
            outcomes = run_all(client)
            sql_table = tally(outcomes)
            dbt_outcomes = [] if args.no_dbt else run_dbt_fixture(warehouse.endpoint, client, work / "dbt")
    show = set(args.show.split(","))
    for outcome in outcomes + dbt_outcomes:
        if outcome.verdict in show:
            print(f"{outcome.verdict:7} {outcome.group:6} {outcome.id}: {outcome.observed[:240]}")
    print()
    for title, table in (("SQL cases", sql_table), ("dbt fixture", tally(dbt_outcomes)),
                         ("all", tally(outcomes + dbt_outcomes))):
        if not any(row["total"] for row in table.values()):
            continue
        print(f"{title:12} {'group':7} {'correct':>8} {'wrong':>6} {'error':>6} {'total':>6}")
        for group in GROUPS:
            row = table[group]
            print(f"{'':12} {group:7} {row['correct']:8} {row['wrong']:6} {row['error']:6} {row['total']:6}")
    print(f"\n{time.perf_counter() - started:.1f} s")
    if args.json:
        args.json.write_text(json.dumps([o.__dict__ for o in outcomes + dbt_outcomes], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
