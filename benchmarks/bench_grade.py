"""How much the grader adds beyond the candidate's own dbt build.

Grades the exemplary reference solution (default scale unless --scale) with --quick and
with every rebuilding check, then runs a bare `dbt seed` + `dbt build` of the same project
on one running emulator holding the same raw data, and prints the figures and the ratios.

    .venv/bin/python benchmarks/bench_grade.py [--scale default|small]
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
from grader.dataset.generator import CANONICAL_SEED, generate  # noqa: E402
from grader.dbt_run import dbt_executable, write_profile  # noqa: E402
from grader.loading import load_raw  # noqa: E402
from grader.warehouse import EmbeddedEmulator  # noqa: E402


def grade(workspace: Path, out: Path, scale: str, *extra: str) -> dict:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "grader.cli", str(workspace), "--out", str(out), "--scale", scale,
                    "--quiet", *extra], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    report = json.loads((out / workspace.name / "report.json").read_text())
    report["timings"]["wall_s"] = time.monotonic() - started
    return report


def bare_dbt(workspace: Path, scale: str, tmp: Path) -> dict[str, float]:
    with EmbeddedEmulator(tmp / "cache", tmp / "emulator.log") as warehouse:
        load_raw(warehouse.client(), generate(CANONICAL_SEED, scale))
        profiles = tmp / "profiles"
        profiles.mkdir()
        project = workspace / "dbt"
        write_profile(profiles, project, warehouse.endpoint)
        env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
        figures = {}
        for step in ("seed", "build"):
            started = time.monotonic()
            subprocess.run([str(dbt_executable()), step, "--profiles-dir", str(profiles), "--target-path",
                            str(tmp / "target")], cwd=project, env=env, check=True, stdout=subprocess.DEVNULL)
            figures[step] = time.monotonic() - started
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="default", choices=["small", "default"])
    args = parser.parse_args()
    solution = next(s for s in load_solutions() if s.name == "exemplary")
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp_name:
        tmp = Path(tmp_name)
        workspace = materialise(solution, tmp)
        quick = grade(workspace, tmp / "quick", args.scale, "--quick")["timings"]
        full = grade(workspace, tmp / "full", args.scale)["timings"]
        bare = bare_dbt(workspace, args.scale, tmp)
    bare_total = bare["seed"] + bare["build"]
    print(f"exemplary solution, scale {args.scale}, {os.cpu_count()} cores")
    print(f"  grade --quick   emulator start {quick['warehouse_start_s']:6.1f} s   raw load {quick['raw_load_s']:6.1f} s"
          f"   dbt seed+build {quick['dbt_s']:6.1f} s   checks {quick['result_checks_s'] + quick['static_checks_s']:5.1f} s"
          f"   total {quick['wall_s']:6.1f} s")
    print(f"  bare dbt        seed {bare['seed']:6.1f} s   build {bare['build']:6.1f} s   total {bare_total:6.1f} s"
          "  (same emulator, raw already loaded)")
    print(f"  ratio grade --quick / bare dbt seed+build: {quick['wall_s'] / bare_total:.2f}")
    print(f"  grade (all checks: second build, 7 mutations, variant dataset): total {full['wall_s']:6.1f} s, "
          f"rebuilding checks {full.get('rebuild_checks_s', 0):6.1f} s, ratio {full['wall_s'] / bare_total:.2f}")


if __name__ == "__main__":
    main()
