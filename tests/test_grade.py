"""`grade WORKSPACE` end to end: real emulator, real dbt, the report contract and its guarantees."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checks.catalogue import run_order
from tests.grading import REPO, checks_of, grade, grade_report, workspace

pytestmark = pytest.mark.slow

TOP_LEVEL_KEYS = {"schema_version", "candidate", "snapshot", "environment", "dbt", "checks", "rubric", "timings"}


def test_missing_path_and_file_path_exit_2(tmp_path):
    result = grade([str(tmp_path / "nope")])
    assert result.returncode == 2 and "no such file or directory" in result.stderr
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    result = grade([str(a_file)])
    assert result.returncode == 2 and "not a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_untouched_starter_reports_precisely_what_is_missing(tmp_path):
    ws = workspace(tmp_path, "starter", None)
    result, report = grade_report(ws, tmp_path / "out", "--quick")
    assert result.returncode == 0, result.stderr
    assert TOP_LEVEL_KEYS <= set(report)
    assert report["snapshot"]["commit"] and report["snapshot"]["dirty"] is False
    assert report["environment"]["warehouse"] == "embedded"
    assert {"dbt-core", "dbt-bigquery", "emulator", "grader"} <= set(report["environment"]["versions"])
    checks = checks_of(report)
    assert checks["dbt.build"]["status"] == "pass", checks["dbt.build"]
    assert report["dbt"]["status"] == "success" and report["dbt"]["nodes"]["pass"] > 0
    assert checks["payments.dedup"]["status"] == "fail"
    assert "expected a model named fct_payments" in checks["payments.dedup"]["message"]
    assert report["rubric"]["band"] == "No Hire"
    assert "No Hire" in result.stdout and "report.html" in result.stdout
    html = (tmp_path / "out" / "starter" / "report.html").read_text()
    assert "No Hire" in html and "expected a model named fct_payments" in html


def test_correct_solution_passes_every_result_check(tmp_path):
    ws = workspace(tmp_path, "exemplary", "exemplary")
    result, report = grade_report(ws, tmp_path / "out", "--quick")
    assert result.returncode == 0, result.stderr
    checks = checks_of(report)
    for check_id in [spec.id for spec in run_order("result")] + ["dbt.build"]:
        assert checks[check_id]["status"] == "pass", (check_id, checks[check_id]["message"])
        assert checks[check_id]["evidence"], check_id


def test_compile_error_yields_a_report_that_says_so(tmp_path):
    ws = workspace(tmp_path, "broken", "broken")
    result, report = grade_report(ws, tmp_path / "out", "--quick")
    assert result.returncode == 0, result.stderr
    assert report["dbt"]["status"] == "error"
    build = checks_of(report)["dbt.build"]
    assert build["status"] == "fail" and "stg_orders_typo" in json.dumps(build)
    assert report["rubric"]["band"] == "No Hire"


def test_plain_folder_with_a_symlink_outside_is_graded_without_leaking(tmp_path):
    secret = tmp_path / "outside" / "credentials.txt"
    secret.parent.mkdir()
    secret.write_text("TOP-SECRET-7f3a9c")
    ws = tmp_path / "plain"
    shutil.copytree(REPO / "environment", ws, ignore=shutil.ignore_patterns("postgres"))
    (ws / "dbt" / "models" / "staging" / "leak.sql").symlink_to(secret)
    result, report = grade_report(ws, tmp_path / "out", "--quick")
    assert result.returncode == 0, result.stderr
    assert report["snapshot"]["commit"] is None
    assert any(f["kind"] == "symlink_outside" for f in report["snapshot"]["findings"])
    for name in ("report.json", "report.html"):
        assert "TOP-SECRET-7f3a9c" not in (tmp_path / "out" / "plain" / name).read_text()


def test_grading_twice_gives_the_same_report_apart_from_timings(tmp_path):
    ws = workspace(tmp_path, "starter", None)
    reports = []
    for out in ("a", "b"):
        _, report = grade_report(ws, tmp_path / out, "--quick")
        reports.append(_without_timings(report))
    assert reports[0] == reports[1]


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items()
                if k not in ("timings", "duration_s", "execution_time")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _processes_mentioning(text: str) -> list[str]:
    """Processes whose command line, environment or open files (the emulator's log) mention `text`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            fds = " ".join(os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
        if text in cmdline or text in environ or text in fds:
            found.append(f"{pid}: {cmdline[:120]}")
    return found


def test_interrupted_grading_leaves_no_process_and_still_writes_a_report(tmp_path):
    ws = workspace(tmp_path, "exemplary", "exemplary")
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-m", "grader.cli", str(ws), "--out", str(tmp_path / "out"),
                             "--scale", "small", "--work-dir", str(work)],
                            cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    for line in proc.stderr:
        if "dbt build" in line or time.monotonic() > deadline:
            break
    assert _processes_mentioning(str(work)), "expected dbt or the emulator to be running"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    time.sleep(1)
    assert proc.returncode != 0
    assert _processes_mentioning(str(work)) == []
    report = json.loads((tmp_path / "out" / "exemplary" / "report.json").read_text())
    assert report["status"] == "incomplete"
    assert any("interrupted" in e["message"] for e in report["errors"])


def test_a_warehouse_that_cannot_start_exits_3_with_a_report(tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(REPO / "environment", ws, ignore=shutil.ignore_patterns("postgres"))
    result = grade([str(ws), "--out", str(tmp_path / "out"), "--warehouse", "docker", "--quick", "--quiet"])
    assert result.returncode == 3, result.stderr
    report = json.loads((tmp_path / "out" / "ws" / "report.json").read_text())
    assert report["status"] == "incomplete" and report["rubric"]["provisional"] is True
    assert "no Docker engine reachable" in report["errors"][0]["message"]
    assert any(c["id"].startswith("lint.") for c in report["checks"])  # the static analysis still ran
    bad = grade([str(ws), "--warehouse", "nonsense"])
    assert bad.returncode == 2 and "use 'embedded', 'docker' or an emulator URL" in bad.stderr


def test_without_a_sandbox_candidate_code_runs_only_when_allowed_and_the_report_says_so(tmp_path):
    ws = workspace(tmp_path, "starter", None)
    env = {**os.environ, "GRADE_SANDBOX": "off"}  # as on a machine without bubblewrap
    refused = subprocess.run([sys.executable, "-m", "grader.cli", str(ws), "--out", str(tmp_path / "out"),
                              "--scale", "small", "--quick", "--quiet"], capture_output=True, text=True, cwd=REPO,
                             env=env, timeout=300)
    assert refused.returncode == 3 and "--allow-unisolated" in refused.stderr, refused.stderr
    report = json.loads((tmp_path / "out" / "starter" / "report.json").read_text())
    assert report["status"] == "incomplete" and [e["stage"] for e in report["errors"]] == ["sandbox"]
    assert report["environment"]["isolation"]["refused"] is True
    allowed = subprocess.run([sys.executable, "-m", "grader.cli", str(ws), "--out", str(tmp_path / "out2"),
                              "--scale", "small", "--quick", "--quiet", "--allow-unisolated"], capture_output=True,
                             text=True, cwd=REPO, env=env, timeout=600)
    assert allowed.returncode == 0, allowed.stderr
    report = json.loads((tmp_path / "out2" / "starter" / "report.json").read_text())
    assert report["environment"]["isolation"]["isolated"] is False
    html = (tmp_path / "out2" / "starter" / "report.html").read_text()
    assert 'id="not-isolated"' in html and "NOT ISOLATED" in html


def test_grade_options_defaults_are_the_command_lines(tmp_path):
    """Calibration and batch build GradeOptions directly: its defaults must be `grade`'s."""
    from grader.cli import grade_parser
    from grader.options import GradeOptions

    assert GradeOptions.from_namespace(grade_parser().parse_args([str(tmp_path)])) == GradeOptions()
    given = GradeOptions.from_namespace(grade_parser().parse_args(
        [str(tmp_path), "--out", "r", "--notes", "n.yml", "--passes", "dbt.idempotent", "--seed", "7", "--quick"]))
    assert GradeOptions.from_payload(json.loads(json.dumps(given.to_payload()))) == given.absolute()
