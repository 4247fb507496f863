"""The static stage within bounds: SQL too large, too slow or too deep is not analysed (and
said so), folders nested deeper than any walk goes crash nothing, a check that hangs costs
that check only, the worker has a memory limit, and evidence stays small."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import checks.static_context as static_context
from checks.registry import REGISTRY, CheckResult, run_check, specs
from checks.static import StaticLimits, bounded, run_static_checks, static_specs
from checks.static_context import StaticContext
from grader.snapshot import Snapshot, take_snapshot


def project(ws: Path, models: dict[str, str]) -> Path:
    dbt = ws / "dbt"
    (dbt / "models").mkdir(parents=True)
    (dbt / "dbt_project.yml").write_text("name: analytics\nversion: '1.0'\nprofile: analytics\n")
    for rel, sql in models.items():
        (dbt / "models" / rel).parent.mkdir(parents=True, exist_ok=True)
        (dbt / "models" / rel).write_text(sql)
    return dbt


def manifest_for(models: dict[str, tuple[str, str]]) -> dict:
    """A manifest as dbt writes it: {name: (original_file_path, compiled SQL)}."""
    nodes = {
        f"model.analytics.{name}": {
            "resource_type": "model", "package_name": "analytics", "name": name, "original_file_path": path,
            "raw_code": "select 1", "compiled_code": compiled, "config": {"materialized": "table"}, "refs": [],
            "sources": [], "depends_on": {"nodes": []}, "columns": {}, "description": "",
        }
        for name, (path, compiled) in models.items()
    }
    return {"metadata": {"project_name": "analytics"}, "nodes": nodes, "sources": {}}


def lint_results(ctx: StaticContext) -> dict[str, object]:
    return {spec.id: run_check(spec, ctx) for spec in specs("lint")}


def union_all(branches: int) -> str:
    return "".join(f"select {i} as order_id, 'padding' as v union all\n" for i in range(branches)) + "select 0, 'x'\n"


def test_a_model_over_the_size_limit_is_named_and_nothing_crashes(tmp_path: Path) -> None:
    huge = union_all(15_000)  # about 650 KB
    assert len(huge) > static_context.MAX_SQL_BYTES
    dbt = project(tmp_path / "ws", {"marts/fct_orders.sql": "select 1", "marts/fct_small.sql": "select 1"})
    manifest = manifest_for({"fct_orders": ("models/marts/fct_orders.sql", huge),
                             "fct_small": ("models/marts/fct_small.sql", "select * from x")})
    ctx = StaticContext.build(tmp_path / "ws", dbt, manifest, None, commits=[], starter_root=None)

    results = lint_results(ctx)

    assert not [cid for cid, r in results.items() if r.status == "error"]
    flagged = results["lint.models_analysed"]
    assert flagged.status == "fail"
    assert flagged.evidence["not_analysed"] == [
        {"file": "models/marts/fct_orders.sql", "why": f"{len(huge.strip())} bytes of SQL > limit {static_context.MAX_SQL_BYTES}"}
    ]
    assert results["lint.mart_columns_explicit"].status == "fail"  # the small mart is still analysed


def test_parsing_past_the_time_limit_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static_context, "PARSE_TIME_LIMIT_S", 0.05)
    dbt = project(tmp_path / "ws", {"marts/fct_orders.sql": "select 1"})
    manifest = manifest_for({"fct_orders": ("models/marts/fct_orders.sql", union_all(8_000))})
    ctx = StaticContext.build(tmp_path / "ws", dbt, manifest, None, commits=[], starter_root=None)

    result = run_check(REGISTRY["lint.models_analysed"], ctx)

    assert result.status == "fail"
    assert result.evidence["not_analysed"][0]["why"] == "parsing took more than 0.05 s"


def test_sql_nested_too_deep_is_not_analysed(tmp_path: Path) -> None:
    deep = "select " + "(" * 400 + "1" + ")" * 400 + " as x"
    wide_case = "select " + "case when a then " * 300 + "1" + " end" * 300 + " as x"
    dbt = project(tmp_path / "ws", {"marts/fct_a.sql": "select 1", "marts/fct_b.sql": "select 1"})
    manifest = manifest_for({"fct_a": ("models/marts/fct_a.sql", deep), "fct_b": ("models/marts/fct_b.sql", wide_case)})
    ctx = StaticContext.build(tmp_path / "ws", dbt, manifest, None, commits=[], starter_root=None)

    results = lint_results(ctx)

    assert not [cid for cid, r in results.items() if r.status == "error"], results
    reasons = {row["file"]: row["why"] for row in results["lint.models_analysed"].evidence["not_analysed"]}
    assert set(reasons) == {"models/marts/fct_a.sql", "models/marts/fct_b.sql"}


def test_folders_nested_deeper_than_any_walk_crash_no_check(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    project(ws, {"staging/stg_orders.sql": "select * from {{ source('shop', 'orders') }}"})
    path = str(ws / "dbt" / "models")
    for _ in range(1200):
        path += "/d"
        os.mkdir(path)
    for name, text in (("deep.sql", "select 1 as id"), ("NOTES.md", "duplicates"), ("x.py", "import airflow")):
        with open(f"{path}/{name}", "w") as handle:
            handle.write(text)
    try:
        ctx = StaticContext.build(ws, commits=[], starter_root=None)
        results = [run_check(spec, ctx) for spec in static_specs()]
    finally:
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        for _ in range(1200):
            os.rmdir(path)
            path = os.path.dirname(path)

    assert [r.id for r in results if r.status == "error"] == []
    assert run_check(REGISTRY["lint.layer_naming"], ctx).evidence["models_checked"] == 1  # deep.sql is too deep


def hanging_workspace(tmp_path: Path) -> Snapshot:
    """A model whose `{{ config(` never closes, 100,000 times: the config regex backtracks
    for hours (in C, where no signal reaches it). Only stopping the process ends it."""
    ws = tmp_path / "ws"
    project(ws, {"marts/fct_orders.sql": "{{ config(materialized='table' " * 60_000})
    (ws / "docs").mkdir()
    (ws / "docs" / "DECISIONS.md").write_text("We de-duplicate the payment replays.\n")
    return take_snapshot(ws, tmp_path / "work")


def test_a_hanging_check_is_stopped_and_the_others_still_run(tmp_path: Path) -> None:
    snapshot = hanging_workspace(tmp_path)

    results = {r.id: r for r in run_static_checks(snapshot, None, limits=StaticLimits(stage_s=120, check_s=5))}

    assert list(results) == [spec.id for spec in static_specs()]
    stopped = [r for r in results.values() if r.message == "did not finish within its time limit (5 s)"]
    assert len(stopped) == 3 and all(r.status == "error" and r.id.startswith("lint.") for r in stopped)
    not_run = [r for r in results.values() if r.message == "not run: the static analysis process was stopped 3 times"]
    assert not_run and all(r.status == "error" and r.id.startswith("lint.") for r in not_run)
    assert results["history.decisions_doc"].evidence["covered"] == ["duplicates"]  # other families ran first
    assert all(r.status != "error" for r in results.values() if not r.id.startswith("lint."))


def test_the_whole_stage_has_one_time_limit(tmp_path: Path) -> None:
    snapshot = hanging_workspace(tmp_path)

    results = run_static_checks(snapshot, None, limits=StaticLimits(stage_s=3, check_s=60))

    messages = {r.message for r in results if r.status == "error"}
    assert messages == {"did not finish within the static analysis stage's time limit (3 s)",
                        "not run: the static analysis stage's time limit (3 s) was spent on earlier checks"}


def test_the_worker_runs_with_a_memory_limit(tmp_path: Path) -> None:
    """Under a cap too small for any analysis (32 MB of address space) every check says it ran out
    of memory and none passes: the cap is in force, and each check reports it. Under a tight cap
    (64 MB) a 490 KB model may or may not fit, depending on the allocator and on whether sqlglot
    is compiled (the compiled one parses it in less; measured in CI): when it does not, it is
    named, or the check the shortage killed says so, and at most that check is lost."""
    ws = tmp_path / "ws"
    wide = "select " + ", ".join(f"{i} + {i} as c{i}" for i in range(21_500))
    assert 480_000 < len(wide) < 512 * 1024
    project(ws, {"marts/fct_orders.sql": wide, "marts/fct_small.sql": "select * from x"})
    snapshot = take_snapshot(ws, tmp_path / "work")

    starved = run_static_checks(snapshot, None, limits=StaticLimits(memory_bytes=32 * 1024**2))
    assert all(r.status in ("error", "skipped") for r in starved), [(r.id, r.status) for r in starved]
    assert all("MemoryError" in r.message or "ran out of memory" in r.message
               for r in starved if r.status == "error"), [r.message for r in starved]

    results = {r.id: r for r in run_static_checks(snapshot, None, limits=StaticLimits(memory_bytes=64 * 1024**2))}
    errors = [r for r in results.values() if r.status == "error"]
    assert all("MemoryError" in r.message or "static analysis process stopped" in r.message for r in errors), \
        [r.message for r in errors]
    coverage = results["lint.models_analysed"]
    if coverage.status == "error":  # the shortage killed the worker in this check: named all the same
        assert "ran out of memory" in coverage.message
    elif coverage.evidence["not_analysed"]:  # caught while parsing: the model is named
        assert coverage.evidence["not_analysed"] == [
            {"file": "models/marts/fct_orders.sql", "why": "ran out of memory while parsing"}]
        assert len(errors) <= 1, errors
    else:  # it fitted: at most the check the shortage struck later is lost
        assert len(errors) <= 1, errors
    assert results["lint.mart_columns_explicit"].status in ("fail", "error")  # fct_small, unless it was the one lost


def test_evidence_is_bounded() -> None:
    capped = bounded(CheckResult("lint.x", "fail", 0.0, "m" * 5000,
                                 {"findings": list(range(250)), "nested": {"rows": [{"sql": "s" * 9000}] * 3},
                                  "many": {f"k{i}": i for i in range(150)}}))
    assert capped.message.endswith("…(cut)") and len(capped.message) < 2100
    assert len(capped.evidence["findings"]) == 100 and capped.evidence["findings_omitted"] == 150
    assert len(capped.evidence["nested"]["rows"][0]["sql"]) < 2100
    assert len(capped.evidence["many"]) == 101 and capped.evidence["many"]["keys_omitted"] == 50
