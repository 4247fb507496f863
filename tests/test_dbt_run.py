"""grader.dbt_run against real dbt and the embedded emulator (no mocks).

Each fixture project under fixtures/dbt_projects/ is copied to a temporary folder, so
nothing dbt does can touch the repository, and built into the session's emulator.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml
from raw_layer.bigquery import load_table, query

from grader.dbt_run import (
    DbtSession,
    build,
    find_dbt_project,
    package_problems,
    relation_of,
    rerun,
    scrubbed_env,
    write_profile,
)
from grader.warehouse import prepare_datasets

PROJECTS = Path(__file__).parent / "fixtures" / "dbt_projects"
RAW_ORDERS = [
    {"id": 1, "customer_id": 10, "amount": "12.50", "currency": "usd", "created_at": "2026-01-01T10:00:00Z"},
    {"id": 2, "customer_id": 11, "amount": "20.00", "currency": "EUR", "created_at": "2026-01-02T10:00:00Z"},
    {"id": 3, "customer_id": 10, "amount": "5.00", "currency": "GBP", "created_at": "2026-01-03T10:00:00Z"},
]


def copy_project(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(PROJECTS / name, tmp_path / name))


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (our private folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


# --- no warehouse needed ---------------------------------------------------------


def test_find_dbt_project_prefers_dbt_folder_then_shallowest(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "dbt_project.yml").write_text("name: deep\n")
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "dbt_project.yml").write_text("name: z\n")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "dbt_project.yml").write_text("name: y\n")
    assert find_dbt_project(tmp_path) == tmp_path / "y"

    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: conventional\n")
    assert find_dbt_project(tmp_path) == tmp_path / "dbt"


def test_find_dbt_project_skips_tool_folders_and_symlinks(tmp_path: Path) -> None:
    for skipped in ("dbt_packages", "target", ".venv", "node_modules"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "dbt_project.yml").write_text("name: skipped\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "dbt_project.yml").write_text("name: outside\n")
    (tmp_path / "link").symlink_to(outside, target_is_directory=True)
    (tmp_path / "dbt").symlink_to(outside, target_is_directory=True)
    assert find_dbt_project(tmp_path) is None

    (tmp_path / "w" / "deep").mkdir(parents=True)
    (tmp_path / "w" / "deep" / "dbt_project.yml").write_text("name: real\n")
    assert find_dbt_project(tmp_path) == tmp_path / "w" / "deep"


def test_profile_takes_only_the_profile_name_from_the_candidate(tmp_path: Path) -> None:
    good = copy_project("good", tmp_path)
    path = write_profile(tmp_path / "profiles", good, "http://127.0.0.1:12345")
    profile = yaml.safe_load(path.read_text())
    assert list(profile) == ["marketplace"]
    assert profile["marketplace"]["target"] == "grader"
    output = profile["marketplace"]["outputs"]["grader"]
    assert output == {
        "type": "bigquery",
        "method": "oauth-secrets",
        "token": output["token"],
        "project": "marketplace-analytics",
        "dataset": "staging",
        "api_endpoint": "http://127.0.0.1:12345",
        "location": "US",
        "threads": 4,
        "job_execution_timeout_seconds": 300,
        "job_retries": 0,
    }
    text = path.read_text()
    for hostile in ("candidate-own-project", "keyfile", "127.0.0.1:9\n", "service-account"):
        assert hostile not in text

    no_profile = copy_project("compile_error", tmp_path)
    assert list(yaml.safe_load(write_profile(tmp_path / "p2", no_profile, "http://x").read_text())) == ["default"]


def test_declared_packages_are_used_only_when_installed(tmp_path: Path) -> None:
    project = copy_project("hub_packages", tmp_path)
    assert package_problems(project) == ["hub packages declared but unavailable offline: dbt_utils"]
    install_fake_dbt_utils(project)
    assert package_problems(project) == []
    assert package_problems(copy_project("good", tmp_path)) == []


def install_fake_dbt_utils(project: Path) -> None:
    """A stand-in for the hub package, as a workspace that ran `dbt deps` would hold it."""
    package = project / "dbt_packages" / "dbt_utils"
    (package / "macros").mkdir(parents=True)
    (package / "dbt_project.yml").write_text('name: dbt_utils\nversion: "1.3.0"\nconfig-version: 2\n')
    (package / "macros" / "generate_surrogate_key.sql").write_text(
        "{% macro generate_surrogate_key(field_list) -%}\n"
        "to_hex(md5(concat({% for f in field_list %}coalesce(cast({{ f }} as string), '_null_')"
        "{% if not loop.last %}, '-', {% endif %}{% endfor %})))\n"
        "{%- endmacro %}\n"
    )


def test_scrubbed_env_keeps_nothing_of_the_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "s3cr3t")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/root/key.json")
    env = scrubbed_env(tmp_path, {"BIGQUERY_EMULATOR_HOST": "http://127.0.0.1:1"})
    assert set(env) == {
        "PATH", "HOME", "LANG", "LC_ALL", "TZ", "DBT_SEND_ANONYMOUS_USAGE_STATS",
        "DO_NOT_TRACK", "DBT_PROFILES_DIR", "BIGQUERY_EMULATOR_HOST",
    }
    assert env["HOME"].startswith(str(tmp_path))
    assert "s3cr3t" not in json.dumps(env) and "key.json" not in json.dumps(env)


def test_no_project_is_skipped(tmp_path: Path) -> None:
    run = build(None, "http://127.0.0.1:1", tmp_path)
    assert run.status == "skipped" and run.invocations == []
    assert run.to_json()["status"] == "skipped"


# --- real dbt against the emulator --------------------------------------------------


@pytest.fixture(scope="module")
def endpoint(emulator) -> str:
    """The emulator with the raw table the `good` project's source reads."""
    client = emulator.client()
    prepare_datasets(client)
    load_table(
        client, "raw", "dbtrun_orders",
        [("id", "INT64"), ("customer_id", "INT64"), ("amount", "NUMERIC"), ("currency", "STRING"), ("created_at", "TIMESTAMP")],
        "\n".join(json.dumps(row) for row in RAW_ORDERS).encode(),
    )
    return emulator.endpoint


@pytest.mark.slow
def test_good_project_builds_with_our_profile_and_a_clean_env(
    endpoint: str, emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "s3cr3t")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/root/key.json")
    project = copy_project("good", tmp_path)
    steps: list[str] = []
    started = time.monotonic()
    run = build(project, endpoint, tmp_path / "work", timeout_s=300, progress=steps.append)
    print(f"good: seed+build {time.monotonic() - started:.1f} s; {[i.to_json() for i in run.invocations]}")

    assert run.status == "success", run.error or [r.message for r in run.results]
    assert run.nodes == {"pass": 10, "fail": 0, "error": 0, "skip": 0, "warn": 0}
    assert run.problems == [] and run.error is None and not run.timed_out
    assert steps[0] == "dbt seed" and "dbt build" in steps and steps[-1] == "dbt build (10/10 nodes)"
    by_name = {r.name: r for r in run.results}
    assert by_name["fct_orders"].status == "success"
    assert by_name["fct_orders"].original_file_path == "models/marts/fct_orders.sql"
    assert by_name["unique_fct_orders_order_id"].status == "pass"
    assert by_name["currency_rates"].resource_type == "seed"

    manifest = run.manifest()
    assert relation_of(manifest, "fct_orders") == "marketplace-analytics.marts.fct_orders"
    assert relation_of(manifest, "env_probe") == "marketplace-analytics.marts.probe_env"
    assert relation_of(manifest, "stg_orders") == "marketplace-analytics.staging.stg_orders"
    assert relation_of(manifest, "no_such_model") is None
    assert (run.compiled_dir / "models" / "marts" / "fct_orders.sql").is_file()
    assert Path(by_name["fct_orders"].compiled_path).is_relative_to(tmp_path / "work")

    client = emulator.client()
    probe = query(client, f"select * from `{relation_of(manifest, 'env_probe')}`")
    assert probe == [{"secret_token": "absent", "google_application_credentials": "absent"}]
    total = query(client, f"select sum(amount_usd) as t from `{relation_of(manifest, 'fct_orders')}`")
    assert float(total[0]["t"]) == pytest.approx(12.50 + 20.00 * 1.09 + 5.00 * 1.27)

    # A rerun (what the rebuilding checks do) leaves the first build's artifacts alone.
    manifest_bytes = run.manifest_path.read_bytes()
    again = rerun(project, endpoint, tmp_path / "work", ["build", "--select", "fct_orders+"], 300, "again")
    assert again.status == "success", again.error
    assert again.nodes == {"pass": 4, "fail": 0, "error": 0, "skip": 0, "warn": 0}
    assert again.manifest_path != run.manifest_path and run.manifest_path.read_bytes() == manifest_bytes

    # Nothing written into the candidate's tree; the report form is small and JSON.
    assert sorted(p.name for p in project.iterdir()) == sorted(p.name for p in (PROJECTS / "good").iterdir())
    report = json.loads(json.dumps(run.to_json()))
    assert set(report) >= {"status", "nodes", "results", "problems", "timed_out", "duration_s"}
    assert len(json.dumps(report)) < 20_000


@pytest.mark.slow
def test_compile_error_names_the_missing_ref(endpoint: str, tmp_path: Path) -> None:
    run = build(copy_project("compile_error", tmp_path), endpoint, tmp_path / "work", timeout_s=300)
    assert run.status == "error"
    assert "does_not_exist" in run.error and "broken_ref" in run.error
    assert run.results == [] and sum(run.nodes.values()) == 0
    assert [i.command for i in run.invocations] == [["dbt", "seed"]]  # build would fail the same way


@pytest.mark.slow
def test_failing_model_errors_and_skips_downstream(endpoint: str, tmp_path: Path) -> None:
    run = build(copy_project("failing_model", tmp_path), endpoint, tmp_path / "work", timeout_s=300)
    assert run.status == "error"
    assert run.nodes == {"pass": 1, "fail": 0, "error": 1, "skip": 1, "warn": 0}
    by_name = {r.name: r for r in run.results}
    assert by_name["broken_model"].status == "error"
    assert "missing_column" in by_name["broken_model"].message
    assert by_name["downstream_model"].status == "skipped"


@pytest.mark.slow
def test_failing_test_counts_as_fail_and_warn_as_warn(endpoint: str, tmp_path: Path) -> None:
    run = build(copy_project("failing_test", tmp_path), endpoint, tmp_path / "work", timeout_s=300)
    assert run.status == "error"
    assert run.nodes == {"pass": 2, "fail": 1, "error": 0, "skip": 0, "warn": 1}
    by_name = {r.name: r for r in run.results}
    assert by_name["unique_dup_ids_id"].status == "fail" and by_name["unique_dup_ids_id"].failures == 1
    assert by_name["accepted_values_dup_ids_label__a"].status == "warn"


@pytest.mark.slow
def test_hub_packages_unavailable_offline_are_reported(endpoint: str, tmp_path: Path) -> None:
    run = build(copy_project("hub_packages", tmp_path), endpoint, tmp_path / "work", timeout_s=300)
    assert run.status == "error"
    assert "hub packages declared but unavailable offline: dbt_utils" in run.problems
    assert "dbt deps" in run.error


@pytest.mark.slow
def test_hub_packages_already_in_the_workspace_are_used(endpoint: str, tmp_path: Path) -> None:
    project = copy_project("hub_packages", tmp_path)
    install_fake_dbt_utils(project)
    run = build(project, endpoint, tmp_path / "work", timeout_s=300)
    assert run.status == "success", run.error or [r.message for r in run.results]
    assert run.problems == [] and run.nodes["pass"] == 1


@pytest.mark.slow
def test_timeout_kills_the_whole_dbt_process_group(endpoint: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    started = time.monotonic()
    run = build(copy_project("slow", tmp_path), endpoint, work, timeout_s=1.5)
    assert time.monotonic() - started < 1.5 + 5 + 2  # budget + SIGTERM grace + slack
    assert run.timed_out and run.status == "error"
    assert run.invocations[-1].timed_out and run.invocations[-1].exit_code != 0
    assert any("killed" in p for p in run.problems)
    assert processes_mentioning(str(work)) == []
    assert "killed after the 1.5 s timeout" in run.invocations[-1].log_path.read_text()


@pytest.mark.slow
def test_ctrl_c_in_the_grader_kills_dbt_and_propagates(endpoint: str, tmp_path: Path) -> None:
    project = copy_project("slow", tmp_path)
    work = tmp_path / "work"
    write_profile(work, project, endpoint)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            with DbtSession(project, work, endpoint) as session:
                session.invoke(["build"], work, work / "dbt.log", 120)
    finally:
        timer.cancel()
    assert processes_mentioning(str(work)) == []


# --- the dbt worker: one process for every command of a grading ------------------------------------

@pytest.mark.slow
def test_one_worker_serves_the_build_and_every_rerun(endpoint: str, tmp_path: Path) -> None:
    project = copy_project("good", tmp_path)
    work = tmp_path / "work"
    with DbtSession(project, work, endpoint) as session:
        run = build(project, endpoint, work, timeout_s=300, session=session)
        again = rerun(project, endpoint, work, ["build", "--select", "fct_orders+"], 300, "again", session=session)
        tests_only = rerun(project, endpoint, work, ["test"], 300, "tests", session=session)
        assert session.starts == 1
    assert run.status == again.status == tests_only.status == "success"
    assert [i.command for i in run.invocations] == [["dbt", "seed"], ["dbt", "build"]]
    assert again.nodes["pass"] == 4 and tests_only.nodes["pass"] > 0
    assert "Completed successfully" in again.invocations[0].log_tail
    assert processes_mentioning(str(work)) == []  # closed with the session


@pytest.mark.slow
def test_a_command_out_of_time_ends_its_worker_and_the_next_command_gets_a_new_one(endpoint: str, tmp_path: Path) -> None:
    project = copy_project("slow", tmp_path)
    work = tmp_path / "work"
    write_profile(work, project, endpoint)
    with DbtSession(project, work, endpoint) as session:
        slow = session.invoke(["build"], work, work / "slow.log", 1.5)
        assert slow.timed_out and slow.exit_code is None
        assert processes_mentioning(str(work)) == []
        quick = session.invoke(["parse"], work, work / "parse.log", 120)
        assert not quick.timed_out and quick.exit_code == 0, quick.log_tail
        assert session.starts == 2
    assert "killed after the 1.5 s timeout" in (work / "slow.log").read_text()


@pytest.mark.slow
def test_a_worker_that_dies_mid_command_is_reported_and_replaced(endpoint: str, tmp_path: Path) -> None:
    project = copy_project("slow", tmp_path)
    work = tmp_path / "work"
    write_profile(work, project, endpoint)
    with DbtSession(project, work, endpoint) as session:
        session.start()
        assert session._proc is not None
        killer = threading.Timer(2.0, os.killpg, (session._proc.pid, signal.SIGKILL))  # as the OOM killer would
        killer.start()
        try:
            died = session.invoke(["build"], work, work / "died.log", 120)
        finally:
            killer.cancel()
        assert not died.timed_out and died.exit_code == -signal.SIGKILL
        assert "ended unexpectedly" in (work / "died.log").read_text()
        again = session.invoke(["parse"], work, work / "parse.log", 120)
        assert again.exit_code == 0 and session.starts == 2


@pytest.mark.slow
def test_a_project_parsed_ahead_builds_as_one_parsed_by_its_first_command(endpoint: str, tmp_path: Path) -> None:
    """parse_ahead runs before the warehouse is known; the seed then starts from that parse."""
    project = copy_project("good", tmp_path)
    work = tmp_path / "work"
    with DbtSession(project, work) as session:
        session.parse_ahead()
        run = build(project, endpoint, work, timeout_s=300, session=session)
        assert session.starts == 1
    plain = build(project, endpoint, tmp_path / "plain", timeout_s=300)
    assert run.status == plain.status == "success"
    assert [(r.unique_id, r.status) for r in run.results] == [(r.unique_id, r.status) for r in plain.results]
    seed_log = (work / "dbt-seed.log").read_text()
    assert "Unable to do partial parsing" not in seed_log and "Found" in seed_log
    assert json.loads(run.manifest_path.read_text())["nodes"].keys() == json.loads(plain.manifest_path.read_text())["nodes"].keys()


@pytest.mark.slow
def test_a_project_that_fails_to_parse_ahead_reports_the_same_error(endpoint: str, tmp_path: Path) -> None:
    project = copy_project("compile_error", tmp_path)
    with DbtSession(project, tmp_path / "work") as session:
        session.parse_ahead()
        run = build(project, endpoint, tmp_path / "work", timeout_s=300, session=session)
    plain = build(project, endpoint, tmp_path / "plain", timeout_s=300)
    assert run.status == plain.status == "error"
    assert run.error == plain.error and "does_not_exist" in run.error
