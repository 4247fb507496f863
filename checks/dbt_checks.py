"""dbt.build: the candidate's own `dbt build` on the canonical data."""

from __future__ import annotations

from checks.registry import REGISTRY, CheckResult, check, run_check
from grader.dbt_run import DbtRun

MAX_LISTED = 15


@check("dbt.build")
def dbt_build(run: DbtRun) -> CheckResult:
    """The candidate's dbt build on the canonical data: nodes passed, failed, errored."""
    nodes = run.nodes
    total = sum(nodes.values())
    evidence = {"nodes": dict(nodes), "problems": list(run.problems),
                "commands": [f"dbt {i.command[1]}" for i in run.invocations if len(i.command) > 1]}
    if run.status == "skipped":
        return CheckResult("dbt.build", "fail", 0.0, "; ".join(run.problems) or "dbt was not run", evidence)
    broken = [r for r in run.results if r.status not in ("success", "pass", "skipped", "no-op")]
    evidence["not_passing"] = [{"node": r.unique_id, "status": r.status, "message": (r.message or "")[:500],
                                "engine_fault": r.engine_fault}
                               for r in broken[:MAX_LISTED]]
    if run.timed_out:
        return CheckResult("dbt.build", "fail", 0.0, "; ".join(run.problems), evidence)
    if total == 0:
        message = "dbt did not run any node: " + (run.error or "see the dbt log").splitlines()[0][:300]
        evidence["error"] = run.error
        return CheckResult("dbt.build", "fail", 0.0, message, evidence)
    passed = nodes["pass"] + nodes["warn"]
    summary = ", ".join(f"{n} {k}" for k, n in nodes.items() if n)
    if run.status == "success" and not broken:
        return CheckResult("dbt.build", "pass", 1.0, f"dbt build succeeded: {summary}", evidence)
    first = broken[0] if broken else None
    detail = f"; first: {first.name} ({first.status})" if first else ""
    return CheckResult("dbt.build", "fail", passed / total, f"dbt build failed: {summary}{detail}", evidence)


def dbt_build_check(run: DbtRun) -> CheckResult:
    return run_check(REGISTRY["dbt.build"], run)
