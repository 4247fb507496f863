"""rubric.yaml: shape, the level arithmetic, caps, gates, interviewer notes, the generated doc."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.rubric import Rubric, RubricError, debrief, load_notes, render_candidate_markdown, score

REPO = Path(__file__).resolve().parents[1]


def all_checks(status: str, value: float) -> list[dict]:
    """Every check the rubric names, with `status`; passing ones carry the evidence the top levels need."""
    from checks.passes import MUTATIONS

    ids = {i["check"] for _, c in Rubric.load().criteria() for i in c.get("informed_by", [])} | {"dbt.generalises"}
    checks = [{"id": i, "status": status, "score": value, "message": f"{i} {status}", "evidence": {}}
              for i in sorted(ids)]
    for check in checks:
        if check["id"] == "tests.mutations":
            check["evidence"]["mutations"] = [{"id": m.id, "kind": m.kind, "caught": status == "pass",
                                               "caught_by": ["a_test"]} for m in MUTATIONS]
        if check["id"] == "lint.incremental_config":
            check["evidence"]["incremental_models"] = [{"model": "fct_payments", "partition_by": {"field": "day"}}]
    return checks


def by_id(result: dict) -> dict[str, dict]:
    return {c["id"]: c for c in result["criteria"]}


def with_changes(checks: list[dict], **changes: dict) -> list[dict]:
    """`checks` with some replaced: with_changes(checks, **{"payments.dedup": {"status": "fail"}})."""
    return [{**c, **changes.get(c["id"], {})} for c in checks]


def test_shape_follows_the_contract():
    rubric = Rubric.load()
    assert [s["id"] for s in rubric.sections] == ["data_quality", "pipeline_design", "code_quality",
                                                   "problem_solving", "system_design"]
    assert [s["weight"] for s in rubric.sections] == [25, 25, 20, 15, 15]
    assert len(rubric.criteria()) == 13
    assert [(b["name"], b["min"]) for b in rubric.data["bands"]] == [
        ("Strong Hire", 3.5), ("Hire", 3.0), ("Lean Hire", 2.5), ("Lean No Hire", 2.0), ("No Hire", 0.0)]


def test_generated_rubric_document_is_up_to_date():
    committed = (REPO / "environment" / "docs" / "EVALUATION_RUBRIC.md").read_text(encoding="utf-8")
    assert committed == render_candidate_markdown(), "run `grade rubric-doc` after editing rubric.yaml"


def test_everything_passing_is_strong_hire_and_debugging_awaits_the_interviewer():
    result = score(all_checks("pass", 1.0))
    assert result["total"] == 4.0 and result["band"] == "Strong Hire"
    assert result["pending_interviewer"] == ["debugging"]
    debugging = next(c for c in result["criteria"] if c["id"] == "debugging")
    assert debugging["level"] is None and debugging["source"] == "interviewer"


def test_everything_failing_is_no_hire_and_partial_scores_of_failures_are_capped():
    result = score(all_checks("fail", 0.95))
    assert result["band"] == "No Hire"
    assert all(c["level"] is None or c["level"] <= 2 for c in result["criteria"])


def test_a_failed_key_check_caps_its_criterion():
    checks = all_checks("pass", 1.0)
    for c in checks:
        if c["id"] == "payments.dedup":
            c.update(status="fail", score=0.5)
    dedup = next(c for c in score(checks)["criteria"] if c["id"] == "deduplication")
    assert dedup["auto_level"] == 2 and any("capped" in step for step in dedup["how"])


def test_generalisation_gate_caps_result_criteria():
    checks = all_checks("pass", 1.0) + [{"id": "dbt.generalises", "status": "fail", "score": 0.0}]
    levels = {c["id"]: c["level"] for c in score(checks)["criteria"]}
    assert levels["deduplication"] == 1 and levels["data_discovery"] == 1 and levels["testing"] == 4
    assert levels["null_handling"] == 1


def test_a_side_check_that_did_not_run_is_left_out_but_shown_in_the_coverage():
    checks = with_changes(all_checks("pass", 1.0), **{"lint.relationship_coverage": {"status": "skipped", "score": 0.0}})
    testing = by_id(score(checks))["testing"]
    assert testing["level"] == 4 and testing["observed"] is True
    assert testing["coverage"] == round(8 / 9, 3)
    assert any("lint.relationship_coverage: skipped, left out" in s for s in testing["how"])


def test_a_criterion_whose_primary_evidence_did_not_run_is_not_observed_and_counts_zero():
    checks = with_changes(all_checks("pass", 1.0), **{"dbt.idempotent": {
        "status": "skipped", "score": 0.0, "message": "dbt produced no manifest"}})
    result = score(checks)
    idempotency = by_id(result)["idempotency"]
    assert idempotency["level"] is None and idempotency["auto_level"] is None and idempotency["observed"] is False
    assert "dbt produced no manifest" in idempotency["not_observed_reason"]
    assert idempotency["by_hand"] and idempotency["description"] is None
    section = next(s for s in result["sections"] if s["id"] == "pipeline_design")
    # counted as 0, not left out; incremental loading's level 4 needs the rerun observed too
    assert section["score"] == round((0 + 3 + 4) / 3, 3)


def test_a_result_check_that_found_no_mart_does_not_observe_its_criterion():
    absent = {"status": "fail", "score": 0.0, "message": "expected a model named fct_payments; the project's models "
              "are: stg_categories", "evidence": {"problem": "...", "observed": False}}
    result = by_id(score(with_changes(all_checks("pass", 1.0), **{"payments.dedup": absent,
                                                                   "sellers.performance": absent})))
    assert result["deduplication"]["observed"] is False and "expected a model named" in result["deduplication"][
        "not_observed_reason"]
    discovery = result["data_discovery"]  # a side check without its mart counts 0 but is no evidence
    assert discovery["observed"] is True and discovery["coverage"] == round(8 / 9, 3) and discovery["level"] == 3
    assert "sellers.performance" in discovery["stopped_at"]


def test_notes_can_set_an_unobserved_criterion_with_a_reason(tmp_path):
    notes_file = tmp_path / "notes.yaml"
    notes_file.write_text("criteria:\n  idempotency: {level: 3, reason: 'reran it by hand twice: same marts'}\n")
    checks = with_changes(all_checks("pass", 1.0), **{"dbt.idempotent": {"status": "skipped", "score": 0.0}})
    idempotency = by_id(score(checks, load_notes(notes_file)))["idempotency"]
    assert idempotency["level"] == 3 and idempotency["source"] == "interviewer"
    assert any("reran it by hand" in s for s in idempotency["how"])


def test_a_level_is_not_claimed_without_the_checks_that_establish_it():
    """A careful project with no incremental model: a high mean, but no claim about incremental models."""
    checks = with_changes(all_checks("pass", 1.0), **{"lint.incremental_config": {
        "status": "fail", "score": 0.25, "message": "no incremental models: every run is a full refresh",
        "evidence": {"incremental_models": []}}})
    result = by_id(score(checks))
    incremental = result["incremental_loading"]
    assert incremental["level"] == 2, incremental["how"]
    assert "incremental models with unique_key" not in incremental["description"].lower()
    assert result["idempotency"]["level"] == 3 and result["scalability"]["level"] == 2


def test_every_shown_level_lists_the_findings_that_earned_it():
    result = score(all_checks("pass", 1.0))
    for criterion in result["criteria"]:
        if criterion["source"] != "auto":
            continue
        assert criterion["level"] == 4
        assert {e["level"] for e in criterion["earned_by"]} == {1, 2, 3, 4}, criterion["id"]
        assert all(e["finding"] and e["status"] == "pass" for e in criterion["earned_by"])


def test_testing_depth_needs_business_rule_defects_caught():
    checks = all_checks("pass", 1.0)
    for check in checks:
        if check["id"] == "tests.mutations":
            for mutation in check["evidence"]["mutations"]:
                mutation["caught"] = mutation["kind"] == "generic"
    testing = by_id(score(checks))["testing"]  # even with a perfect score: keys alone do not reach 4
    assert testing["level"] == 3 and "business defect" in testing["stopped_at"]


def test_a_pass_inherited_from_the_starter_earns_nothing():
    inherited = {"inherited": True}
    checks = with_changes(all_checks("pass", 1.0), **{i: inherited for i in (
        "dag.airbyte_triggered", "dag.secrets_outside_code", "dag.alerting", "dag.scheduled", "dag.catchup_explicit",
        "lint.source_freshness")})
    production = by_id(score(checks))["production_readiness"]
    assert production["level"] == 0 and production["earned_by"] == []
    assert any("inherited from the starter" in s for s in production["how"])


def test_a_check_erroring_on_candidate_input_counts_as_failed_and_a_grader_error_is_left_out():
    crashed = {"status": "error", "score": 0.0, "message": "check crashed: RecursionError: too deep",
               "evidence": {"fault": "candidate", "error": "RecursionError: too deep"}}
    checks = with_changes(all_checks("pass", 1.0), **{"lint.relations_via_ref": crashed})
    modularity = by_id(score(checks))["modularity"]
    assert modularity["level"] == 2 and modularity["coverage"] == 1.0
    assert any("counted as failed" in s for s in modularity["how"])
    grader = {**crashed, "evidence": {"fault": "grader", "error": "ConnectionError"}}
    modularity = by_id(score(with_changes(all_checks("pass", 1.0), **{"lint.relations_via_ref": grader})))["modularity"]
    assert modularity["coverage"] == 0.8 and any("grader error, left out" in s for s in modularity["how"])


def test_crashing_a_check_never_raises_the_total():
    clean = all_checks("pass", 1.0)
    for check in clean:
        check.update(status="fail", score=0.4) if check["id"].startswith("lint.") else None
    crashed = [{**c, "status": "error", "score": 0.0, "evidence": {"fault": "candidate"}}
               if c["id"].startswith("lint.") else c for c in clean]
    assert score(crashed)["total"] <= score(clean)["total"]


def test_nothing_delivered_lands_at_most_lean_no_hire_unless_the_notes_override_it(tmp_path):
    results = ("payments.dedup", "orders.confirmed_at_utc", "users.soft_deletes", "users.country_nulls",
               "money.usd_conversion", "products.future_updated_at", "sales.gmv", "sellers.current_tier",
               "sellers.performance")
    checks = with_changes(all_checks("pass", 1.0), **{i: {"status": "fail", "score": 0.0} for i in results})
    result = score(checks)
    assert result["delivery"]["delivered"] is False and result["band"] in ("Lean No Hire", "No Hire")
    assert result["total"] <= 2.49
    notes_file = tmp_path / "notes.yaml"
    notes_file.write_text("criteria: {}\ndelivery_override: {reason: 'one typo; we fixed it live and it all built'}\n")
    lifted = score(checks, load_notes(notes_file))
    assert lifted["delivery"]["override"].startswith("one typo") and lifted["total"] == lifted["delivery"]["uncapped_total"]
    assert lifted["total"] > result["total"]


def test_the_debrief_asks_about_every_failed_check_and_weak_criterion():
    checks = with_changes(all_checks("pass", 1.0), **{"payments.dedup": {"status": "fail", "score": 0.3,
                                                                          "message": "411 replays"}})
    result = score(checks)
    items = debrief(result, checks)
    kinds = {(d["kind"], d["id"]) for d in items}
    assert ("check", "payments.dedup") in kinds and ("criterion", "deduplication") in kinds
    assert ("interviewer", "debugging") in kinds
    assert all(1 <= len(d["questions"]) <= 3 for d in items)
    assert next(d for d in items if d["id"] == "debugging")["watch_for"]


def test_a_rubric_level_without_requirements_is_refused(tmp_path):
    import yaml

    data = yaml.safe_load((REPO / "rubric.yaml").read_text())
    del data["sections"][0]["criteria"][0]["requires"][3]
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RubricError, match="requires"):
        Rubric.load(path)


def test_interviewer_notes_score_and_override(tmp_path):
    notes_file = tmp_path / "notes.yaml"
    notes_file.write_text("criteria:\n  debugging: {level: 3, comment: 'bisected the failing join'}\n"
                          "  scalability: {level: 1, override: true, reason: 'full scans everywhere'}\n")
    result = score(all_checks("pass", 1.0), load_notes(notes_file))
    by_id = {c["id"]: c for c in result["criteria"]}
    assert by_id["debugging"]["level"] == 3 and by_id["debugging"]["source"] == "interviewer"
    assert by_id["debugging"]["comment"] == "bisected the failing join"
    assert by_id["scalability"]["level"] == 1 and by_id["scalability"]["auto_level"] == 4
    assert by_id["scalability"]["override_reason"] == "full scans everywhere"
    assert result["pending_interviewer"] == []


@pytest.mark.parametrize("text, message", [
    ("criteria:\n  nonsense: {level: 2}\n", "unknown criterion"),
    ("criteria:\n  debugging: {level: 7}\n", "level must be"),
    ("criteria:\n  scalability: {level: 1, override: true}\n", "needs a reason"),
    ("- just a list\n", "expected a mapping"),
    ("criteria: {}\ndelivery_override: {reason: '  '}\n", "delivery_override needs a reason"),
])
def test_malformed_notes_are_refused_clearly(tmp_path, text, message):
    notes_file = tmp_path / "notes.yaml"
    notes_file.write_text(text)
    with pytest.raises(RubricError, match=message):
        load_notes(notes_file)


def test_the_candidate_rubric_shows_criteria_and_weights_not_checks_or_wrong_answers():
    rubric = Rubric.load()
    doc = render_candidate_markdown(rubric)
    for section in rubric.sections:
        assert f"| {section['title']} | {section['weight']}% |" in doc
        for criterion in section["criteria"]:
            assert criterion["title"] in doc
            for informed in criterion.get("informed_by", []):
                assert informed["check"] not in doc
            for text in criterion["levels"].values():
                assert text not in doc


def test_a_crash_says_whose_fault_it_was():
    from checks.registry import CheckSpec, GraderFault, run_check

    def deep(ctx):
        raise RecursionError("maximum recursion depth exceeded")

    def lost(ctx):
        raise GraderFault("the warehouse stopped answering")

    candidate = run_check(CheckSpec("lint.deep", "static", deep, "deep"), None).to_json()
    grader = run_check(CheckSpec("lint.lost", "static", lost, "lost"), None).to_json()
    assert candidate["status"] == grader["status"] == "error"
    assert candidate["evidence"] == {"fault": "candidate", "error": "RecursionError: maximum recursion depth exceeded"}
    assert grader["evidence"]["fault"] == "grader"
