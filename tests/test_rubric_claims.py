"""Every level the reference solutions' reports show rests on observed evidence; the untouched
starter earns nothing it was handed; a project that does not compile is gated. (The scale's
separation of the reference solutions is `grade calibrate`'s: bands, bounds, ordered chains.)"""

from __future__ import annotations

from typing import Any

import pytest

from grader.calibration import load_solutions, materialise
from grader.rubric import unsupported_claims
from tests.grading import grade_report

# Quick gradings (no rebuilds) keep this module cheap; `grade calibrate` (CI) walks the claims of
# every reference solution's full grading, and checks their bands, bounds and order.
SOLUTIONS = ("exemplary", "starter", "broken")


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("claims")
    out = {}
    for solution in (s for s in load_solutions() if s.name in SOLUTIONS):
        workspace = materialise(solution, tmp / "workspaces")
        result, report = grade_report(workspace, tmp / "out", "--quick")
        assert result.returncode == 0, result.stderr[-2000:]
        out[solution.name] = report
    return out


@pytest.mark.slow
def test_every_shown_level_of_every_reference_solution_has_its_evidence(reports):
    for name, report in reports.items():
        assert unsupported_claims(report) == [], name


@pytest.mark.slow
def test_the_untouched_starter_is_credited_with_nothing_it_was_handed(reports):
    starter = reports["starter"]
    assert starter["inherited"], "the starter's DAG and models are the handout's"
    passing_dag = [c for c in starter["checks"] if c["id"].startswith("dag.") and c["status"] == "pass"]
    assert passing_dag and all(c["inherited"] for c in passing_dag)
    production = next(c for c in starter["rubric"]["criteria"] if c["id"] == "production_readiness")
    assert production["level"] == 0 and production["earned_by"] == []


@pytest.mark.slow
def test_a_project_that_does_not_compile_is_gated_and_its_rebuild_criteria_are_not_observed(reports):
    broken = reports["broken"]
    assert broken["rubric"]["delivery"]["delivered"] is False
    assert broken["observed"]["idempotency"]["observed"] is False and broken["observed"]["idempotency"]["by_hand"]
    assert any(d["id"] == "idempotency" for d in broken["debrief"])
