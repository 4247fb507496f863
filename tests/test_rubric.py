"""rubric.yaml: shape, the level arithmetic, caps, gates, interviewer notes, the generated doc."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.rubric import Rubric, RubricError, load_notes, render_candidate_markdown, score

REPO = Path(__file__).resolve().parents[1]


def all_checks(status: str, value: float) -> list[dict]:
    ids = {i["check"] for _, c in Rubric.load().criteria() for i in c.get("informed_by", [])}
    return [{"id": i, "status": status, "score": value} for i in sorted(ids)]


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


def test_checks_that_did_not_run_are_left_out_not_counted_as_zero():
    checks = [c for c in all_checks("pass", 1.0) if c["id"] != "tests.mutations"]
    checks.append({"id": "lint.relationship_coverage", "status": "skipped", "score": 0.0})
    testing = next(c for c in score(checks)["criteria"] if c["id"] == "testing")
    assert testing["level"] == 4
    assert any("tests.mutations: not run" in s for s in testing["how"])


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
