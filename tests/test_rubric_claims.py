"""Every level the reference solutions' reports show rests on observed evidence, and the
scale separates them: the untouched starter earns (almost) nothing, a careful but basic
solution lands Hire, a third of a level or more below the exemplary one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grader.calibration import load_solutions, materialise
from grader.rubric import Rubric
from tests.grading import grade_report

SOLUTIONS = ("exemplary", "solid", "naive", "starter", "broken")


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("claims")
    out = {}
    for solution in (s for s in load_solutions() if s.name in SOLUTIONS):
        workspace = materialise(solution, tmp / "workspaces")
        result, report = grade_report(workspace, tmp / "out")
        assert result.returncode == 0, result.stderr[-2000:]
        out[solution.name] = report
    return out


def unsupported_claims(report: dict[str, Any]) -> list[str]:
    """Levels shown without the check results their requirements name."""
    rubric = Rubric.load()
    specs = {c["id"]: c for _, c in rubric.criteria()}
    checks = {c["id"]: c for c in report["checks"]}
    problems = []
    for criterion in report["rubric"]["criteria"]:
        spec, level = specs[criterion["id"]], criterion["level"]
        if criterion["source"] != "auto":
            continue
        if criterion["observed"] is False:
            ran = [c for c in spec["primary"] if checks.get(c, {}).get("status") in ("pass", "fail")
                   and (checks[c].get("evidence") or {}).get("observed") is not False]
            if level is not None or len(ran) == len(spec["primary"]):
                problems.append(f"{criterion['id']}: 'not observed' although its primary checks ran")
            continue
        if criterion["description"] != spec["levels"][level]:
            problems.append(f"{criterion['id']}: description is not level {level}'s")
        for needed in range(1, level + 1):
            earned = [e for e in criterion["earned_by"] if e["level"] == needed]
            if not earned:
                problems.append(f"{criterion['id']}: level {needed} shown without findings")
            for e in earned:
                check = checks.get(e["check"])
                if check is None or check["status"] != e["status"] or check.get("inherited"):
                    problems.append(f"{criterion['id']}: level {needed} rests on {e['check']}, which did not show that")
    return problems


@pytest.mark.slow
def test_every_shown_level_of_every_reference_solution_has_its_evidence(reports):
    for name, report in reports.items():
        assert unsupported_claims(report) == [], name


@pytest.mark.slow
def test_the_scale_separates_the_reference_solutions(reports):
    totals = {name: r["rubric"]["total"] for name, r in reports.items()}
    print("totals:", totals)
    assert totals["starter"] <= 0.5
    assert reports["broken"]["rubric"]["band"] in ("Lean No Hire", "No Hire")
    assert reports["solid"]["rubric"]["band"] == "Hire" and reports["exemplary"]["rubric"]["band"] == "Strong Hire"
    assert totals["exemplary"] - totals["solid"] >= 1 / 3
    assert totals["exemplary"] > totals["solid"] > totals["naive"] > totals["starter"]


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
