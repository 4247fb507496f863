"""dbt.build: the candidate's own `dbt build` on the canonical data."""

from __future__ import annotations

from typing import Any

from checks.registry import CheckResult, Examples, check, result
from grader.dbt_run import DbtRun

MAX_LISTED = 15


@check("dbt.build", stage="build",
       title="The candidate's dbt build on the canonical data: nodes passed, failed, errored; a severity: warn "
             "test is a warning",
       why="Everything else rests on it: a model that does not build delivers no mart, and a test of the "
           "candidate's own that fails stops their pipeline. A test declared severity: warn only warns, as dbt "
           "treats it.",
       fix="Run `dbt build` against the exercise's warehouse until every model builds and every test passes; "
           "declare a test severity: warn only where a failure should not stop the pipeline, and say why.",
       examples=Examples(bad={"models/marts/fct_orders.sql": "select order_id from {{ ref('stg_order') }}"},
                         good={"models/marts/fct_orders.sql": "select order_id from {{ ref('stg_orders') }}"}))
def dbt_build(run: DbtRun) -> CheckResult:
    nodes = run.nodes
    total = sum(nodes.values())
    evidence: dict[str, Any] = {"nodes": dict(nodes), "problems": list(run.problems),
                "commands": [f"dbt {i.command[1]}" for i in run.invocations if len(i.command) > 1]}
    if run.status == "skipped":
        return result("fail", "; ".join(run.problems) or "dbt was not run", evidence=evidence)
    broken = [r for r in run.results if r.status not in ("success", "pass", "warn", "skipped", "no-op")]
    evidence["not_passing"] = [{"node": r.unique_id, "status": r.status, "message": (r.message or "")[:500],
                                "engine_fault": r.engine_fault}
                               for r in broken[:MAX_LISTED]]
    # A test the candidate declared `severity: warn` reports "warn", and dbt exits 0: a warning, as dbt treats it.
    warned = [r for r in run.results if r.status == "warn"]
    evidence["warnings"] = [{"node": r.unique_id, "message": (r.message or "")[:500]} for r in warned[:MAX_LISTED]]
    if run.timed_out:
        return result("fail", "; ".join(run.problems), evidence=evidence)
    if total == 0:
        message = "dbt did not run any node: " + (run.error or "see the dbt log").splitlines()[0][:300]
        evidence["error"] = run.error
        return result("fail", message, evidence=evidence)
    passed = nodes["pass"] + nodes["warn"]
    summary = ", ".join(f"{n} {k}" for k, n in nodes.items() if n)
    if run.status == "success" and not broken:
        note = (f" ({len(warned)} warning(s) from tests declared severity: warn, e.g. {warned[0].name})"
                if warned else "")
        return result("pass", f"dbt build succeeded: {summary}{note}", evidence=evidence)
    first = broken[0] if broken else None
    detail = f"; first: {first.name} ({first.status})" if first else ""
    return result("fail", f"dbt build failed: {summary}{detail}", score=passed / total, evidence=evidence)
