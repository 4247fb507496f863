"""environment/interviewer.sh: the parts that run without a Docker engine (setup, collect's git side)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "environment" / "interviewer.sh"


def sh(cwd: Path, *args: str) -> str:
    result = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def test_setup_then_collect_keeps_commits_and_uncommitted_work(tmp_path):
    workspace = tmp_path / "env"
    shutil.copytree(REPO / "environment", workspace, ignore=shutil.ignore_patterns("postgres", "warehouse", "airbyte"))
    sh(workspace, "./interviewer.sh", "setup")
    assert sh(workspace, "git", "log", "--format=%s").splitlines() == ["Starter repository as handed over"]
    (workspace / "dbt" / "models" / "staging" / "stg_users.sql").write_text("select 1 as id\n")
    sh(workspace, "git", "add", "-A")
    sh(workspace, "git", "-c", "user.name=c", "-c", "user.email=c@example.com", "commit", "-qm", "stg_users")
    (workspace / "docs" / "DECISIONS.md").write_text("not committed yet\n")
    with (workspace / "dbt" / "models" / "staging" / "stg_categories.sql").open("a") as model:
        model.write("-- edited, not committed\n")
    before = sh(workspace, "git", "status", "--porcelain")

    out = sh(workspace, "./interviewer.sh", "collect", str(tmp_path / "collected"))
    assert "Airbyte is not running" in out or "airbyte-connections.json" in out
    copy = tmp_path / "collected" / "workspace"
    assert sh(copy, "git", "log", "--format=%s").splitlines() == ["stg_users", "Starter repository as handed over"]
    assert (copy / "docs" / "DECISIONS.md").read_text() == "not committed yet\n"
    assert (copy / "dbt" / "models" / "staging" / "stg_categories.sql").read_text().endswith("not committed\n")
    assert sh(copy, "git", "status", "--porcelain") == before  # uncommitted in the copy too
    assert sh(workspace, "git", "status", "--porcelain") == before  # the candidate's index untouched
    bundle = tmp_path / "collected" / "workspace.bundle"
    assert "refs/collected/uncommitted" in sh(tmp_path, "git", "bundle", "list-heads", str(bundle))


def test_reset_refuses_before_collect(tmp_path):
    workspace = tmp_path / "env"
    shutil.copytree(REPO / "environment", workspace, ignore=shutil.ignore_patterns("postgres", "warehouse", "airbyte"))
    sh(workspace, "./interviewer.sh", "setup")
    result = subprocess.run(["./interviewer.sh", "reset"], cwd=workspace, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "has not been collected" in result.stdout
