"""A grader installed from its wheel (`pip install .`, not editable) grades from any folder:
the rubric, the report templates and the handout it compares against are package data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUR_EDITABLE = ("__editable__.de_exercise_grader", "__editable___de_exercise_grader", "de_exercise_grader-")


def _venv_reusing_our_dependencies(venv: Path) -> Path:
    """A fresh venv whose site-packages are hard links to ours, less our own editable install,
    with dbt's launcher pointing at its interpreter: `pip install --no-deps` of our wheel then
    gives what `pip install .` gives, without downloading or copying a gigabyte of dependencies."""
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # type: ignore[attr-defined]
    ours = Path(sysconfig.get_paths()["purelib"])
    site = venv / ours.relative_to(sys.prefix)
    shutil.rmtree(site)
    shutil.copytree(ours, site, copy_function=os.link,
                    ignore=lambda folder, names: [n for n in names if n.startswith(OUR_EDITABLE)])
    python = venv / "bin" / "python"
    launcher = (Path(sys.prefix) / "bin" / "dbt").read_text(encoding="utf-8").split("\n", 1)[1]
    (venv / "bin" / "dbt").write_text(f"#!{python}\n{launcher}", encoding="utf-8")
    (venv / "bin" / "dbt").chmod(0o755)
    return python


def _tracked_tree(into: Path) -> Path:
    """The repository's tracked files as they are now, links kept: what a clone holds, so the
    build sees neither a developer's venv nor stale build/ output (nor leaves any in the repository)."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        source, target = REPO / rel, into / rel
        if not os.path.lexists(source):
            continue  # deleted, not yet committed
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    return into


@pytest.mark.slow
def test_an_installed_wheel_grades_a_workspace_from_another_folder(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(wheels), str(_tracked_tree(tmp_path / "source"))],
                   check=True, cwd=tmp_path)
    python = _venv_reusing_our_dependencies(tmp_path / "venv")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--disable-pip-version-check", *map(str, wheels.glob("*.whl"))], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(python), "-c", "import grader; print(grader.__file__)"], cwd=elsewhere,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), where  # not the source tree
    assert not (Path(where).parent / "data" / "rubric.yaml").is_symlink()

    workspace = tmp_path / "candidate"
    shutil.copytree(REPO / "environment" / "dbt", workspace / "dbt", ignore=shutil.ignore_patterns("target", "logs"))
    shutil.copytree(REPO / "environment" / "airflow", workspace / "airflow")
    run = subprocess.run([str(tmp_path / "venv" / "bin" / "grade"), str(workspace), "--out", "reports",
                          "--scale", "small", "--quick", "--quiet"], cwd=elsewhere, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((elsewhere / "reports" / "candidate" / "report.json").read_text())
    assert (elsewhere / "reports" / "candidate" / "report.html").stat().st_size > 0  # the templates
    assert report["status"] == "complete" and report["dbt"]["status"] == "success", report["errors"]
    assert {c["id"] for c in report["checks"]} >= {"dbt.build", "payments.dedup", "history.commits"}
    assert report["rubric"]["criteria"]  # the rubric
    # The handout was found: the starter's own DAG findings are marked inherited, not the candidate's.
    assert any(f["file"] == "airflow/dags/marketplace_pipeline.py" for f in report["inherited"])
