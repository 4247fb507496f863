"""How much the grader adds beyond the candidate's own dbt build.

Grades the exemplary reference solution (default scale unless --scale) with --quick and
with every rebuilding check, and the untouched starter with every check; then runs a bare
`dbt seed` + `dbt build` of the exemplary project with dbt's own CLI on one running emulator
holding the same raw data. Prints each grading's stages and passes (the report's timings)
and its ratio to that bare build.

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


STAGES = ("snapshot_s", "warehouse_start_s", "dataset_s", "raw_load_s", "dbt_s", "result_checks_s", "static_checks_s",
          "rebuild_checks_s")


def stage_line(label: str, timings: dict[str, float], bare_total: float) -> str:
    """One grading's stages, its passes and its ratio to the bare build."""
    stages = "  ".join(f"{key.removesuffix('_s')} {timings[key]:.1f}" for key in STAGES if key in timings)
    passes = "  ".join(f"{key.removeprefix('pass.').removesuffix('_s')} {value:.1f}"
                       for key, value in sorted(timings.items()) if key.startswith("pass."))
    line = (f"  {label:<22} total {timings['wall_s']:6.1f} s  ({timings['wall_s'] / bare_total:.2f}x bare)\n"
            f"  {'':<22} stages: {stages}")
    return line + (f"\n  {'':<22} passes: {passes}" if passes else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="default", choices=["small", "default"])
    args = parser.parse_args()
    solutions = {s.name: s for s in load_solutions()}
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp_name:
        tmp = Path(tmp_name)
        workspace = materialise(solutions["exemplary"], tmp)
        starter = materialise(solutions["starter"], tmp)
        quick = grade(workspace, tmp / "quick", args.scale, "--quick")["timings"]
        full = grade(workspace, tmp / "full", args.scale)["timings"]
        untouched = grade(starter, tmp / "out-starter", args.scale)["timings"]
        bare = bare_dbt(workspace, args.scale, tmp)
    bare_total = bare["seed"] + bare["build"]
    print(f"scale {args.scale}, {os.cpu_count()} cores")
    print(f"  bare dbt (exemplary)   seed {bare['seed']:.1f} s + build {bare['build']:.1f} s = {bare_total:.1f} s"
          "  (dbt's CLI, same engine, raw already loaded)")
    print(stage_line("exemplary, --quick", quick, bare_total))
    print(stage_line("exemplary, full", full, bare_total))
    print(stage_line("starter, full", untouched, bare_total))
    print(f"  goals: --quick <= 1.2x bare: {quick['wall_s'] / bare_total:.2f}x;  full exemplary <= 60 s: "
          f"{full['wall_s']:.1f} s;  starter <= 20 s: {untouched['wall_s']:.1f} s")


if __name__ == "__main__":
    main()
