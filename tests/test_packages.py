"""grader.packages offline: local packages, git packages from a repository on this disk (real
`dbt deps`, real git), the cache, and hub packages that cannot download here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from grader.cli import main as grade_main
from grader.packages import cache_key, declared, install

MACRO = "{% macro cents(x) -%} round({{ x }}, 2) {%- endmacro %}\n"


def make_package(folder: Path, name: str) -> Path:
    (folder / "macros").mkdir(parents=True)
    (folder / "dbt_project.yml").write_text(f'name: {name}\nversion: "1.0.0"\nconfig-version: 2\n')
    (folder / "macros" / "cents.sql").write_text(MACRO.replace("cents", f"{name}_cents"))
    return folder


def make_workspace(root: Path, packages: str) -> Path:
    project = root / "dbt"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text('name: ws\nversion: "1.0.0"\nconfig-version: 2\nprofile: ws\n')
    (project / "packages.yml").write_text(packages)
    return project


def git_repository(folder: Path, name: str) -> Path:
    make_package(folder, name)
    for command in (["init", "-q", "-b", "main"], ["add", "-A"],
                    ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "package"]):
        subprocess.run(["git", "-C", str(folder), *command], check=True)
    return folder


def test_local_package_is_installed_then_served_from_the_cache(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    project = make_workspace(workspace, "packages:\n  - local: ../shared/money_macros\n")
    make_package(workspace / "shared" / "money_macros", "money_macros")
    cache = tmp_path / "cache"
    first = install(project, workspace, cache)
    assert first.ok and first.source == "dbt deps", first.problem
    installed = project / "dbt_packages" / "money_macros"
    assert (installed / "macros" / "cents.sql").is_file() and not installed.is_symlink()
    (project / "dbt_packages").rename(tmp_path / "old")
    again = install(project, workspace, cache, allow_deps=False)
    assert again.source == "cache" and (installed / "dbt_project.yml").is_file()


def test_git_package_on_local_disk(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    repo = git_repository(workspace / "vendor" / "fx_macros", "fx_macros")
    project = make_workspace(workspace, f"packages:\n  - git: \"file://{repo}\"\n    revision: main\n")
    result = install(project, workspace, tmp_path / "cache")
    assert result.ok and result.packages == ["fx_macros"], result.problem or result.log
    assert (project / "dbt_packages" / "fx_macros" / "macros" / "cents.sql").is_file()


def test_hub_package_without_network_is_incomplete_with_the_fix(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    project = make_workspace(workspace, "packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n")
    result = install(project, workspace, tmp_path / "cache")
    assert not result.ok and result.source == "unavailable"
    assert "dbt_utils" in result.problem and f"grade packages fetch {workspace}" in result.problem


def test_packages_already_in_the_workspace_are_used_as_they_are(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    project = make_workspace(workspace, "packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n")
    make_package(project / "dbt_packages" / "dbt_utils", "dbt_utils")
    assert install(project, workspace, tmp_path / "cache", allow_deps=False).source == "workspace"


def test_local_package_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    make_package(tmp_path / "elsewhere", "elsewhere")
    workspace = tmp_path / "ws"
    project = make_workspace(workspace, f"packages:\n  - local: {tmp_path / 'elsewhere'}\n")
    result = install(project, workspace, tmp_path / "cache")
    assert not result.ok and "outside the workspace" in result.problem


def test_git_repository_on_disk_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    repo = git_repository(tmp_path / "elsewhere" / "fx_macros", "fx_macros")
    workspace = tmp_path / "ws"
    project = make_workspace(workspace, f"packages:\n  - git: \"file://{repo}\"\n")
    result = install(project, workspace, tmp_path / "cache")
    assert not result.ok and "outside the workspace" in result.problem


def test_bad_packages_file_is_a_clear_problem(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    project = make_workspace(workspace, "packages: {not: a list}\n")
    result = install(project, workspace, tmp_path / "cache")
    assert not result.ok and "must be a list" in result.problem
    assert install(make_workspace(tmp_path / "none", "packages: []\n"), tmp_path / "none").source == "none"


def test_cache_key_follows_local_package_content(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    project = make_workspace(workspace, "packages:\n  - local: pkg\n")
    make_package(project / "pkg", "pkg")
    entries = declared(project)
    before = cache_key(entries, project, workspace)
    (project / "pkg" / "macros" / "cents.sql").write_text("{% macro pkg_cents(x) %}{{ x }}{% endmacro %}\n")
    assert cache_key(entries, project, workspace) != before


def test_grade_packages_fetch_fills_the_cache_for_offline_grading(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    workspace = tmp_path / "ws"
    repo = git_repository(workspace / "vendor" / "fx_macros", "fx_macros")
    project = make_workspace(workspace, f"packages:\n  - git: \"file://{repo}\"\n    revision: main\n")
    cache = tmp_path / "cache"
    assert grade_main(["packages", "fetch", str(workspace), "--cache", str(cache)]) == 0
    assert "cached fx_macros" in capsys.readouterr().out
    assert install(project, workspace, cache, allow_deps=False).source == "cache"
    assert grade_main(["packages", "fetch", str(tmp_path / "missing")]) == 2


@pytest.mark.slow
def test_a_project_using_a_git_package_macro_builds(emulator, tmp_path: Path) -> None:
    from grader.dbt_run import build

    workspace = tmp_path / "ws"
    repo = git_repository(workspace / "vendor" / "fx_macros", "fx_macros")
    project = make_workspace(workspace, f"packages:\n  - git: \"file://{repo}\"\n    revision: main\n")
    (project / "models" / "priced.sql").write_text("select {{ fx_macros.fx_macros_cents('2.675') }} as usd\n")
    assert install(project, workspace, tmp_path / "cache").ok
    run = build(project, emulator.endpoint, tmp_path / "dbt", timeout_s=300)
    assert run.status == "success", run.error or [r.message for r in run.results]
    assert run.problems == []


@pytest.mark.slow
def test_grading_with_uninstallable_packages_is_incomplete_never_a_verdict(tmp_path: Path) -> None:
    from tests.grading import checks_of, grade_report, workspace

    ws = workspace(tmp_path, "hub-packages", None)
    (ws / "dbt" / "packages.yml").write_text("packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n")
    result, report = grade_report(ws, tmp_path / "out", "--quick")
    assert result.returncode == 3, result.stderr
    assert report["status"] == "incomplete" and report["rubric"]["provisional"] is True
    problem = next(e for e in report["errors"] if e["stage"] == "packages")["message"]
    assert "dbt_utils" in problem and "grade packages fetch" in problem
    assert report["dbt"]["status"] == "skipped" and "dbt.build" not in checks_of(report)
    assert "grade packages fetch" in result.stdout
