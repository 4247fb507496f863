"""What a grading run learned, stage by stage (`Grading`), and its one time limit (`Deadline`):
the values the pipeline fills and the report is rendered from."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checks.registry import CheckResult
from grader import __version__

if TYPE_CHECKING:
    from grader.dataset.generator import Dataset
    from grader.dbt_run import DbtRun
    from grader.snapshot import Snapshot


class Deadline:
    """One time limit for the whole grading (--time-limit): dbt and every pass draw from it."""

    def __init__(self, limit_s: float | None):
        self.limit_s = limit_s
        self._ends = None if limit_s is None else time.monotonic() + limit_s

    def remaining(self) -> float:
        return float("inf") if self._ends is None else max(self._ends - time.monotonic(), 0.0)

    def budget(self, wanted: float) -> float:
        """`wanted` seconds, or what is left of the grading's time when that is less."""
        return min(wanted, self.remaining())


@dataclass
class Grading:
    """Everything a run learned, stage by stage; the report is rendered from it."""

    candidate: str
    workspace: str
    seed: int
    scale: str
    snapshot: Snapshot | None = None
    dataset: Dataset | None = None
    warehouse: dict[str, Any] = field(default_factory=lambda: {"warehouse": None, "versions": {}})
    dbt: DbtRun | None = None
    checks: list[CheckResult] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    work_dir: str | None = None
    airflow_python: Path | None = None
    interrupted: bool = False
    isolation: dict[str, Any] = field(default_factory=dict)
    deadline: Deadline = field(default_factory=lambda: Deadline(None))

    def fail(self, stage: str, message: str) -> None:
        self.errors.append({"stage": stage, "message": message})


def versions() -> dict[str, str]:
    """The grader's own versions for the report's environment."""
    import importlib.metadata

    found = {"grader": __version__, "python": sys.version.split()[0]}
    for dist in ("sqlglot", "gitpython"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found
