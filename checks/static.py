"""Run every static check (lint.*, dag.*, history.*) over a snapshot, without executing candidate code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import checks.dag  # noqa: F401  (registers dag.*)
import checks.history  # noqa: F401  (registers history.*)
import checks.lint  # noqa: F401  (registers lint.*)
from checks.registry import CheckResult, run_check, specs
from checks.static_context import StaticContext

STATIC_FAMILIES = ("lint", "dag", "history")


def static_context(snapshot: Any, dbt_run: Any, airflow_python: Path | None = None) -> StaticContext:
    manifest = dbt_run.manifest() if dbt_run is not None else None
    return StaticContext.build(
        snapshot.root,
        dbt_project_dir=getattr(dbt_run, "project_dir", None),
        manifest=manifest,
        compiled_dir=getattr(dbt_run, "compiled_dir", None),
        commits=[c.to_json() for c in snapshot.commits],
        airflow_python=airflow_python,
    )


def run_static_checks(snapshot: Any, dbt_run: Any, airflow_python: Path | None = None) -> list[CheckResult]:
    ctx = static_context(snapshot, dbt_run, airflow_python)
    return [run_check(spec, ctx) for family in STATIC_FAMILIES for spec in specs(family)]
