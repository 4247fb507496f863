"""grade batch: every workspace graded, a failure in one does not stop the others, a ranking with links."""

from __future__ import annotations

import csv
import json

import pytest

from grader.batch import report_folders
from tests.grading import grade, workspace


@pytest.mark.slow
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


def test_report_folders_are_distinct_and_deterministic(tmp_path):
    names = ["a b", "a_b", "A_B", "a-b", "é", "ü", "bob"]
    for name in names:
        (tmp_path / name).mkdir()
    folders = report_folders(sorted(tmp_path / n for n in names))
    by_name = {ws.name: folder for ws, folder in folders.items()}
    assert len(set(v.lower() for v in by_name.values())) == len(names)  # distinct, even on a case-blind disk
    assert by_name["A_B"] == "A_B" and by_name["a-b"] == "a-b" and by_name["bob"] == "bob"
    assert by_name["a b"].startswith("a_b-") and by_name["a_b"].startswith("a_b-")
    assert by_name["é"].startswith("candidate-") and by_name["ü"].startswith("candidate-")
    alone = report_folders([tmp_path / "a b", tmp_path / "a_b"])
    assert alone[tmp_path / "a_b"] == "a_b"  # the folder already so named keeps it
    assert alone[tmp_path / "a b"] == by_name["a b"]  # the suffix depends on the folder's own name only


def test_folders_that_sanitise_alike_get_their_own_reports(tmp_path):
    """`a b` and `a_b` used to share one report folder; each summary row must link its own."""
    folder = tmp_path / "candidates"
    for name in ("a b", "a_b"):
        (folder / name).mkdir(parents=True)
        (folder / name / "README.md").write_text(f"# {name}\n")
    out = tmp_path / "reports"
    # an unreachable warehouse: each grading fails fast but still writes its report (exit 3)
    result = grade(["batch", str(folder), "--out", str(out), "--", "--warehouse", "http://127.0.0.1:9",
                    "--scale", "small", "--quick"])
    assert result.returncode == 0, result.stderr
    rows = {r["workspace"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert set(rows) == {"a b", "a_b"}
    assert rows["a_b"]["report"] == "a_b/report.html"
    assert rows["a b"]["report"] != rows["a_b"]["report"]
    for name, row in rows.items():
        report = json.loads((out / row["report"]).with_suffix(".json").read_text())
        assert report["workspace"] == str((folder / name).resolve())
        assert report["candidate"] == row["candidate"]
    summary = (out / "summary.html").read_text()
    assert f'href="{rows["a b"]["report"]}"' in summary and "(folder “a b”)" in summary


def test_batch_refuses_a_name_or_out_for_every_workspace(tmp_path):
    (tmp_path / "c" / "x").mkdir(parents=True)
    result = grade(["batch", str(tmp_path / "c"), "--", "--name", "same"])
    assert result.returncode == 2 and "--name and --out are set per workspace" in result.stderr


def test_default_jobs_follow_the_cores_and_the_free_memory():
    from grader.batch import GIB, default_jobs

    assert default_jobs(cores=2, available_bytes=24 * GIB) == 2
    assert default_jobs(cores=8, available_bytes=7 * GIB) == 2  # 3 GiB a grading
    assert default_jobs(cores=4, available_bytes=1 * GIB) == 1  # never fewer than one
    assert default_jobs() >= 1
