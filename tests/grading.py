"""Helpers for end-to-end tests: build workspaces from the starter plus an overlay, run `grade`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from grader.calibration import Solution, load_solutions, materialise

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "tests" / "fixtures" / "solutions"
CALIBRATION = REPO / "calibration"


def workspace(tmp_path: Path, name: str, overlay: str | None, root: Path = CALIBRATION) -> Path:
    """The starter repository with `root/overlay` laid over it, as a git workspace."""
    return materialise(Solution(name, overlay, (), ""), tmp_path, overlay_root=root)


def calibration_workspace(tmp_path: Path, name: str) -> Path:
    """The reference solution `name` of calibration/solutions.yaml (its base and removals applied)."""
    solution = next(s for s in load_solutions() if s.name == name)
    return materialise(solution, tmp_path)


def grade(args: list[str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def grade_report(ws: Path, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
    """Grade `ws` at small scale; the completed process and its report.json."""
    result = grade([str(ws), "--out", str(out), "--scale", "small", "--quiet", *extra])
    report_path = out / ws.name / "report.json"
    assert report_path.exists(), f"no report written; stderr:\n{result.stderr[-3000:]}"
    return result, json.loads(report_path.read_text())


def checks_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report["checks"]}
