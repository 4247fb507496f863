"""The catalogue of checks: every check documents itself, the runner stamps ids and skips
unmet needs, the rubric is validated against it, `grade checks` prints it, and the panel's
generated documents stay equal to what it generates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from checks.catalogue import panel_docs, run_order, specs
from checks.registry import LEGACY_IDS, RENAMED_IDS, STAGES, CheckResult, CheckSpec, Finding, result, run_check
from grader import cli
from grader import rubric as rubric_module
from grader.rubric import Rubric, RubricError, score

REPO = Path(__file__).resolve().parents[1]
def test_every_check_declares_its_stage_title_why_and_fix():
    assert {spec.family for spec in specs()} >= {"dbt", "tests", "lint", "dag", "history", "payments"}
    for spec in specs():
        assert spec.stage in STAGES, spec.id
        assert spec.title and spec.why and spec.fix, f"{spec.id}: title, why and fix are required"


def test_checks_of_the_outcome_and_static_stages_carry_a_failing_and_a_passing_example():
    with_examples = [s for s in specs() if s.stage != "history"]
    assert {s.stage for s in with_examples} == {"build", "result", "rebuild", "static"}
    assert {s.family for s in with_examples if s.stage == "static"} == {"lint", "dag"}
    for spec in with_examples:
        assert spec.examples is not None and spec.examples.bad and spec.examples.good, spec.id
        assert spec.examples.bad != spec.examples.good, spec.id


def test_the_stages_run_in_the_order_the_pipeline_needs():
    assert [s.id for s in run_order("build")] == ["dbt.build"]
    assert len(run_order("result")) == 9
    # dbt.generalises loads another dataset into the raw layer: it must come last.
    assert [s.id for s in run_order("rebuild")] == ["dbt.idempotent", "tests.mutations", "dbt.generalises"]
    traps = [s.id for s in run_order("result") if s.trap]
    assert traps == ["payments.dedup", "orders.confirmed_at_utc", "users.soft_deletes", "users.country_nulls",
                     "money.usd_conversion", "products.future_updated_at"]


def test_the_runner_stamps_the_id_and_builds_one_kind_of_result():
    spec = CheckSpec("example.result", "static", lambda ctx: result("fail", "half", score=1.7), "An example")
    outcome = run_check(spec, None)
    assert (outcome.id, outcome.status, outcome.score, outcome.purpose) == ("example.result", "fail", 1.0, "An example")
    findings = CheckSpec("example.findings", "static", lambda ctx: [Finding("x", "a.sql", 3)], "Findings")
    assert run_check(findings, None).evidence["findings"] == [{"message": "x", "file": "a.sql", "line": 3,
                                                                "snippet": None}]


class Observed:
    """A context that could not observe a git history."""

    def __init__(self) -> None:
        self.calls = 0

    def unmet_needs(self) -> dict[str, str]:
        return {"history": "the workspace has no git history"}


def test_an_unmet_need_is_a_skip_with_the_reason_and_the_check_does_not_run():
    ctx = Observed()

    def body(context: Observed) -> list[Finding]:
        context.calls += 1
        return []

    needing = CheckSpec("example.needs_history", "history", body, "Needs history", needs=("history",))
    skipped = run_check(needing, ctx)
    assert (skipped.status, skipped.message, ctx.calls) == ("skipped", "the workspace has no git history", 0)
    other = CheckSpec("example.needs_project", "static", body, "Needs a project", needs=("project",))
    assert run_check(other, ctx).status == "pass" and ctx.calls == 1


def test_the_rebuild_passes_need_a_manifest():
    from checks.marts import ResultContext
    from checks.passes import PassContext

    for spec in run_order("rebuild"):
        assert "manifest" in spec.needs, spec.id
    def never(*args: object) -> None:
        raise AssertionError("a pass without a manifest must not rebuild or load anything")

    context = PassContext(results=ResultContext(client=None, manifest=None, truth={}), dataset=None, baseline=None,
                          rebuild=never, mutated_table=never, variant_build=never)
    assert {run_check(spec, context).message for spec in run_order("rebuild")} == {"dbt produced no manifest"}


def test_renamed_ids_name_checks_of_the_catalogue_and_results_keep_the_old_one_beside():
    assert set(RENAMED_IDS.values()) <= {s.id for s in specs()}
    assert not set(RENAMED_IDS) & {s.id for s in specs()}, "an old id must not be registered as well"
    spec = next(s for s in specs() if s.id == "dag.retries")
    assert run_check(spec, None).to_json()["legacy_id"] == "dag.no_retries" == LEGACY_IDS["dag.retries"]
    assert "legacy_id" not in CheckResult("dbt.build", "pass", 1.0, "built").to_json()


def test_a_report_written_with_the_old_ids_scores_the_same():
    ids = sorted({i["check"] for _, c in Rubric.load().criteria() for i in c.get("informed_by", [])})
    new = [{"id": i, "status": "fail" if i.startswith("dag.") else "pass", "score": 0.3 if i.startswith("dag.") else 1.0,
            "message": "", "evidence": {}} for i in ids]
    old = [{**c, "id": LEGACY_IDS.get(c["id"], c["id"])} for c in new]
    assert any(c["id"] in RENAMED_IDS for c in old)
    assert score(old) == score(new)


# --- the rubric against the catalogue ------------------------------------------------------

def rubric_with(tmp_path: Path, change) -> Path:
    data = yaml.safe_load((REPO / "rubric.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def informed_by(data: dict, criterion_id: str) -> list[dict]:
    return next(c for s in data["sections"] for c in s["criteria"] if c["id"] == criterion_id)["informed_by"]


def test_the_rubric_uses_every_check_of_the_catalogue_and_names_no_other():
    rubric = Rubric.load()
    assert set(rubric.used_checks()) | set(rubric.report_only) == {s.id for s in specs()}
    assert set(rubric.report_only) == {"dag.airflow_loads", "lint.confirmed_at_timezone", "lint.models_analysed"}


def test_a_rubric_naming_an_unknown_check_is_an_error(tmp_path):
    path = rubric_with(tmp_path, lambda d: informed_by(d, "testing").append({"check": "lint.no_such_rule", "weight": 1}))
    with pytest.raises(RubricError, match=r"does not have: lint\.no_such_rule"):
        Rubric.load(path)


def test_a_rubric_naming_an_old_id_says_what_it_was_renamed_to(tmp_path):
    path = rubric_with(tmp_path, lambda d: informed_by(d, "production_readiness").append(
        {"check": "dag.no_retries", "weight": 1}))
    with pytest.raises(RubricError, match=r"dag\.no_retries \(renamed dag\.retries\)"):
        Rubric.load(path)


def test_a_check_no_criterion_uses_is_an_error_unless_listed_as_report_only(tmp_path):
    path = rubric_with(tmp_path, lambda d: d["report_only"].pop("lint.confirmed_at_timezone"))
    with pytest.raises(RubricError, match=r"uses lint\.confirmed_at_timezone: score each, or list it under report_only"):
        Rubric.load(path)
    path = rubric_with(tmp_path, lambda d: d["report_only"].update({"dbt.build": "shown only"}))
    with pytest.raises(RubricError, match=r"dbt\.build under report_only, but a criterion or gate uses it"):
        Rubric.load(path)


def test_grade_refuses_to_start_on_a_rubric_that_does_not_match_the_catalogue(tmp_path, monkeypatch, capsys):
    path = rubric_with(tmp_path, lambda d: informed_by(d, "testing").append({"check": "lint.no_such_rule", "weight": 1}))
    monkeypatch.setattr(rubric_module, "RUBRIC_PATH", path)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    assert cli.main([str(workspace), "--out", str(tmp_path / "reports")]) == 3
    assert "lint.no_such_rule" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


# --- grade checks ----------------------------------------------------------------------------

def test_grade_checks_prints_the_catalogue_as_a_table(capsys):
    assert cli.main(["checks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "stage", "severity", "title"]
    assert [line.split()[0] for line in lines[1:]] == [s.id for s in sorted(specs(), key=lambda s: (
        STAGES.index(s.stage), s.id))]
    assert cli.main(["checks", "--family", "history"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [
        "history.commits", "history.decisions_doc", "history.tests_early"]


def test_grade_checks_id_prints_what_why_how_to_fix_needs_and_examples(capsys):
    assert cli.main(["checks", "payments.dedup"]) == 0
    out = capsys.readouterr().out
    spec = next(s for s in specs() if s.id == "payments.dedup")
    assert spec.title in out and "Why it matters:" in out and "How to fix:" in out
    assert "needs: build" in out and "trap: Duplicate payment events" in out
    assert "Example that fails: models/staging/stg_payments.sql" in out and "select distinct *" in out
    assert cli.main(["checks", "dag.no_retries"]) == 0  # an old id finds the renamed check
    assert capsys.readouterr().out.startswith("dag.retries\n")


def test_grade_checks_with_an_unknown_id_or_family_says_so_and_exits_2(capsys):
    assert cli.main(["checks", "payments.dedupe"]) == 2
    err = capsys.readouterr().err
    assert "no check 'payments.dedupe'" in err and "`grade checks` lists them all" in err
    assert cli.main(["checks", "--family", "nope"]) == 2
    assert "no check in family 'nope'" in capsys.readouterr().err


def test_the_panels_generated_documents_are_up_to_date():
    for path, text in panel_docs().items():
        assert path.read_text(encoding="utf-8") == text, f"run `grade checks --doc` ({path.name} differs)"
    checks_doc = (REPO / "docs" / "checks.md").read_text(encoding="utf-8")
    assert all(f"### {s.id}\n" in checks_doc for s in specs())
    assert "[docs/checks.md](checks.md)" in (REPO / "docs" / "rubric.md").read_text(encoding="utf-8")
    assert not (REPO / "environment" / "docs" / "checks.md").exists(), "candidates never receive check ids"


def test_grade_checks_doc_check_exits_1_when_a_document_drifts(tmp_path, monkeypatch, capsys):
    from checks import catalogue

    monkeypatch.setattr(catalogue, "DOCS_DIR", tmp_path)
    assert cli.main(["checks", "--doc", "--check"]) == 1
    assert "checks.md is out of date" in capsys.readouterr().err
    assert cli.main(["checks", "--doc"]) == 0
    assert cli.main(["checks", "--doc", "--check"]) == 0
