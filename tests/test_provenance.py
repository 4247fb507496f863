"""No credit for what the exercise handed out: checks and findings on unchanged starter files are `inherited`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from checks.provenance import Provenance, content_hash, mark_inherited
from checks.static import run_static_checks
from grader.rubric import score

REPO = Path(__file__).resolve().parents[1]


class PlainSnapshot:
    """What run_static_checks reads of a snapshot: its root and commits."""

    def __init__(self, root: Path):
        self.root, self.commits = root, []


def static_report(root: Path) -> tuple[list[dict], list[dict]]:
    checks = [c.to_json() for c in run_static_checks(PlainSnapshot(root), None)]
    return checks, mark_inherited(checks, Provenance.of(root))


@pytest.fixture()
def starter(tmp_path: Path) -> Path:
    workspace = tmp_path / "starter"
    shutil.copytree(REPO / "environment", workspace, ignore=shutil.ignore_patterns("postgres", "target", "logs"))
    return workspace


def test_the_untouched_starter_earns_nothing_from_its_dag_and_models(starter):
    checks, inherited = static_report(starter)
    by_id = {c["id"]: c for c in checks}
    for check_id in ("dag.catchup_explicit", "dag.scheduled", "dag.secrets_outside_code"):
        assert by_id[check_id]["status"] == "pass" and by_id[check_id].get("inherited"), check_id
    simulated = by_id["dag.airbyte_triggered"]
    assert simulated["status"] == "fail" and all(f["inherited"] for f in simulated["evidence"]["findings"])
    assert any(i["check"] == "dag.airbyte_triggered" and i["file"] == "airflow/dags/marketplace_pipeline.py"
               for i in inherited)
    production = next(c for c in score(checks)["criteria"] if c["id"] == "production_readiness")
    assert production["level"] == 0 and production["earned_by"] == []


def test_a_dag_the_candidate_changed_is_theirs(starter):
    dag = starter / "airflow" / "dags" / "marketplace_pipeline.py"
    dag.write_text(dag.read_text().replace('tags=["marketplace"],', 'tags=["marketplace"],\n    max_active_runs=1,'))
    checks, inherited = static_report(starter)
    by_id = {c["id"]: c for c in checks}
    assert not by_id["dag.catchup_explicit"].get("inherited")
    assert not any(i["check"].startswith("dag.") for i in inherited)


def passing(check_id: str) -> dict:
    return {"id": check_id, "status": "pass", "score": 1.0, "message": "no findings", "evidence": {}}


def test_model_checks_on_the_starter_project_are_inherited_until_the_candidate_writes_models(starter):
    checks = [passing("lint.source_freshness"), passing("lint.layer_naming"), passing("dbt.build")]
    mark_inherited(checks, Provenance.of(starter))
    assert all(c.get("inherited") for c in checks)
    (starter / "dbt" / "models" / "marts" / "fct_orders.sql").write_text("select 1 as order_id\n")
    checks = [passing("lint.source_freshness"), passing("lint.layer_naming"), passing("dbt.build")]
    mark_inherited(checks, Provenance.of(starter))
    by_id = {c["id"]: c for c in checks}
    assert not by_id["lint.layer_naming"].get("inherited") and not by_id["dbt.build"].get("inherited")
    assert by_id["lint.source_freshness"]["inherited"], "the sources file (with its freshness) is still the starter's"


def test_whitespace_and_line_endings_do_not_make_a_file_the_candidates(tmp_path):
    a, b = tmp_path / "a.sql", tmp_path / "b.sql"
    a.write_text("select 1\nfrom x\n")
    b.write_bytes(b"select 1  \r\nfrom x\r\n\r\n")
    assert content_hash(a) == content_hash(b)
    b.write_text("select 2\nfrom x\n")
    assert content_hash(a) != content_hash(b)
