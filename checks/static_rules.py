"""How a static rule (lint.*, dag.*) is declared: `static_check` is the catalogue's `check`
with stage="static", whose declared `needs` are met before the rule runs. An unmet need is a
`skipped` result with its reason, so no rule tests another's precondition by hand.

The static needs: "project" (the workspace holds dbt models), "manifest" (dbt parsed the
project) and "dags" (the workspace holds Airflow DAG files)."""

from __future__ import annotations

import functools
from typing import Any
from collections.abc import Callable

from checks import dbt_project
from checks.registry import CheckSkipped, Examples, Need, Severity, check
from checks.static_context import StaticContext

# Why each static need is unmet: the skip message the report shows.
UNMET = {
    "project": "skipped: no dbt models found in the workspace",
    "manifest": "skipped: dbt could not parse the project, so there is no manifest to read "
    "tests, docs and configs from (see the dbt.build check)",
    "dags": "skipped: no Airflow DAG files found in the workspace",
}


def unmet_need(ctx: StaticContext, needs: tuple[Need, ...]) -> str | None:
    """The reason the first unmet need (in declared order) is not met, or None."""
    for need in needs:
        if need == "manifest" and not ctx.manifest:
            return UNMET[need]
        if need == "project" and not dbt_project.models(ctx):
            return UNMET[need]
        if need == "dags" and not ctx.dag_files:
            return UNMET[need]
    return None


def static_check(check_id: str, *, needs: tuple[Need, ...], severity: Severity, title: str, why: str, fix: str,
                 examples: Examples) -> Callable[[Callable[[StaticContext], Any]], Callable[[StaticContext], Any]]:
    """Register a static rule with its full catalogue entry; its needs are checked before it runs."""

    def decorate(rule: Callable[[StaticContext], Any]) -> Callable[[StaticContext], Any]:
        @functools.wraps(rule)
        def guarded(ctx: StaticContext) -> Any:
            reason = unmet_need(ctx, needs)
            if reason is not None:
                raise CheckSkipped(reason)
            return rule(ctx)

        return check(check_id, stage="static", needs=needs, severity=severity, title=title, why=why, fix=fix,
                     examples=examples)(guarded)

    return decorate
