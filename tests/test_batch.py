"""grade batch: every workspace graded, a failure in one does not stop the others, a ranking with links."""

from __future__ import annotations

import csv

import pytest

from tests.grading import grade, workspace

pytestmark = pytest.mark.slow


def test_batch_ranks_workspaces_and_survives_a_failing_one(tmp_path):
    folder = tmp_path / "candidates"
    folder.mkdir()
    workspace(folder, "alice", "exemplary")
    (folder / "bob").mkdir()  # handed in nothing: no dbt project at all
    (folder / "carol").mkdir()
    (folder / "carol" / "dbt").mkdir()
    (folder / "carol" / "dbt" / "dbt_project.yml").write_text("name: [unclosed\n")  # dbt cannot even parse it
    out = tmp_path / "reports"
    result = grade(["batch", str(folder), "--out", str(out), "--jobs", "2", "--", "--scale", "small", "--quick"])
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["candidate"] for r in rows][0] == "alice"
    assert {r["candidate"] for r in rows} == {"alice", "bob", "carol"}
    assert all(r["report"] and (out / r["report"]).exists() for r in rows)
    summary = (out / "summary.html").read_text()
    assert 'href="alice/report.html"' in summary and "bob" in summary and "carol" in summary
