"""What the sandbox costs: the exemplary grading with and without isolation.

Grades the exemplary reference solution twice per mode (default scale unless --scale; --quick
unless --full): in the sandbox (the grading's namespaces, a bubblewrap jail per process) and
unisolated (GRADE_SANDBOX=off with --allow-unisolated), alternating, and prints each wall time,
the best of each mode and the overhead. Goal: under 10 %.

    .venv/bin/python benchmarks/bench_sandbox.py [--scale default|small] [--full] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader.calibration import load_solutions, materialise  # noqa: E402


def grade(workspace: Path, out: Path, scale: str, sandboxed: bool, full: bool) -> tuple[float, dict]:
    env = dict(os.environ)
    extra = [] if full else ["--quick"]
    if not sandboxed:
        env["GRADE_SANDBOX"] = "off"
        extra.append("--allow-unisolated")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "grader.cli", str(workspace), "--out", str(out), "--scale", scale,
                    "--quiet", *extra], check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    report = json.loads((out / workspace.name / "report.json").read_text())
    assert report["environment"]["isolation"]["isolated"] is sandboxed, report["environment"]["isolation"]
    return wall, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="default", choices=["small", "default"])
    parser.add_argument("--full", action="store_true", help="every rebuilding check, not --quick")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    solution = next(s for s in load_solutions() if s.name == "exemplary")
    walls: dict[bool, list[float]] = {True: [], False: []}
    totals: dict[bool, set[float]] = {True: set(), False: set()}
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp_name:
        tmp = Path(tmp_name)
        workspace = materialise(solution, tmp)
        for round_number in range(args.rounds):
            for sandboxed in (False, True):
                wall, report = grade(workspace, tmp / f"out-{sandboxed}-{round_number}", args.scale, sandboxed, args.full)
                walls[sandboxed].append(wall)
                totals[sandboxed].add(report["rubric"]["total"])
                print(f"  round {round_number + 1} {'sandboxed  ' if sandboxed else 'unisolated '} {wall:6.1f} s",
                      flush=True)
    best = {mode: min(values) for mode, values in walls.items()}
    print(f"exemplary solution, scale {args.scale}, {'full' if args.full else '--quick'}, {os.cpu_count()} cores")
    print(f"  unisolated best {best[False]:6.1f} s   sandboxed best {best[True]:6.1f} s   "
          f"overhead {100 * (best[True] / best[False] - 1):+.1f} %")
    print(f"  same verdict in both modes: {totals[True] == totals[False]} ({sorted(totals[True] | totals[False])})")


if __name__ == "__main__":
    main()
