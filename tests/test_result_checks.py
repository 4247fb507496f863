"""Result checks and rebuilding checks on purpose-built solutions: right answers in other styles
pass, the classic wrong ones fail with a diagnosis, hard-coded answers fail dbt.generalises."""

from __future__ import annotations

import shutil

import pytest

from grader.dataset.generator import CANONICAL_SEED, generate
from checks.catalogue import run_order
from tests.grading import CALIBRATION, SOLUTIONS, calibration_workspace, checks_of, grade_report, workspace

pytestmark = pytest.mark.slow


def test_alternative_correct_styles_pass(tmp_path):
    """GROUP BY dedup, TIMESTAMP(DATETIME(..), zone), CASE rates, IFNULL placeholder, open SCD2 row by effective_to."""
    ws = workspace(tmp_path, "alternative", "alternative", root=SOLUTIONS)
    _, report = grade_report(ws, tmp_path / "out", "--passes", "tests.mutations")
    checks = checks_of(report)
    for check_id in ("payments.dedup", "orders.confirmed_at_utc", "users.soft_deletes", "users.country_nulls",
                     "money.usd_conversion", "products.future_updated_at", "sales.gmv", "sellers.current_tier",
                     "sellers.performance"):
        assert checks[check_id]["status"] == "pass", (check_id, checks[check_id]["message"])
    # No tests of its own: no planted defect can be caught.
    assert checks["tests.mutations"]["status"] == "fail" and checks["tests.mutations"]["score"] == 0.0


def test_classic_mistakes_fail_with_a_diagnosis(tmp_path):
    """SELECT DISTINCT *, wall time read as UTC, is_active filter, unconverted currencies (the naive solution)."""
    ws = workspace(tmp_path, "naive", "naive")
    _, report = grade_report(ws, tmp_path / "out", "--quick")
    checks = checks_of(report)
    assert "SELECT DISTINCT *" in checks["payments.dedup"]["message"]
    assert checks["payments.dedup"]["status"] == "fail"
    assert "read as UTC" in checks["orders.confirmed_at_utc"]["message"]
    assert "is_active" in checks["users.soft_deletes"]["message"]
    assert checks["users.country_nulls"]["status"] == "fail"
    assert "unconverted" in checks["money.usd_conversion"]["message"]
    assert checks["sales.gmv"]["status"] == "fail"
    assert checks["products.future_updated_at"]["status"] == "fail"
    assert checks["sellers.current_tier"]["status"] == "fail"
    sample = checks["orders.confirmed_at_utc"]["evidence"]["sample_wrong"][0]
    assert {"source_new_york_wall_time", "expected_utc", "observed"} <= set(sample)
    assert report["rubric"]["band"] in ("No Hire", "Lean No Hire")


def test_other_wrong_styles_fail(tmp_path):
    """A fixed +5 h offset, dedup on the row id, mixed currencies summed; missing marts named."""
    ws = workspace(tmp_path, "wrong", "wrong_styles", root=SOLUTIONS)
    _, report = grade_report(ws, tmp_path / "out", "--quick")
    checks = checks_of(report)
    assert "fixed +5 h" in checks["orders.confirmed_at_utc"]["message"]
    assert 0 < checks["orders.confirmed_at_utc"]["score"] < 1  # right in winter, wrong in summer
    assert checks["payments.dedup"]["status"] == "fail"
    assert checks["sales.gmv"]["status"] == "fail"
    assert "expected a model named fct_seller_performance" in checks["sellers.current_tier"]["message"]
    assert "dim_products" in checks["products.future_updated_at"]["message"]


def test_hard_coded_answers_pass_on_canonical_data_and_fail_generalisation(tmp_path):
    """dim_users excludes a literal list of the canonical dataset's deleted users instead of using deleted_at."""
    overlay = tmp_path / "overlays" / "hardcoded"
    shutil.copytree(CALIBRATION / "exemplary", overlay)
    deleted = sorted(uid for uid, u in generate(CANONICAL_SEED, "small").truth["users"].items() if u["deleted"])
    dim_users = overlay / "dbt" / "models" / "marts" / "dim_users.sql"
    literal = ", ".join(f"'{uid}'" for uid in deleted)
    dim_users.write_text(dim_users.read_text().replace("where not u.is_deleted", f"where u.user_id not in ({literal})"))
    ws = workspace(tmp_path, "hardcoded", "hardcoded", root=tmp_path / "overlays")
    _, report = grade_report(ws, tmp_path / "out", "--passes", "dbt.generalises")
    checks = checks_of(report)
    assert checks["users.soft_deletes"]["status"] == "pass"
    generalises = checks["dbt.generalises"]
    assert generalises["status"] == "fail" and "users.soft_deletes" in generalises["message"]
    assert generalises["evidence"]["checks"]["users.soft_deletes"] == {
        "canonical": "pass", "variant": "fail",
        "variant_message": generalises["evidence"]["checks"]["users.soft_deletes"]["variant_message"]}
    levels = {c["id"]: c for c in report["rubric"]["criteria"]}
    assert levels["null_handling"]["level"] <= 1


def test_exemplary_is_idempotent_generalises_and_its_tests_catch_the_planted_defects(tmp_path):
    ws = workspace(tmp_path, "exemplary", "exemplary")
    _, report = grade_report(ws, tmp_path / "out")
    checks = checks_of(report)
    assert checks["dbt.idempotent"]["status"] == "pass", checks["dbt.idempotent"]["message"]
    assert checks["dbt.generalises"]["status"] == "pass", checks["dbt.generalises"]["message"]
    mutations = checks["tests.mutations"]
    assert mutations["score"] >= 6 / 7, mutations["message"]
    assert all(m["caught_by"] for m in mutations["evidence"]["mutations"] if m["caught"])
    assert report["rubric"]["band"] == "Strong Hire"


def test_a_mart_stamped_with_the_build_time_is_not_idempotent(tmp_path):
    overlay = tmp_path / "overlays" / "stamped"
    shutil.copytree(SOLUTIONS / "alternative", overlay)
    fct_orders = overlay / "dbt" / "models" / "marts" / "fct_orders.sql"
    fct_orders.write_text(fct_orders.read_text().replace("    buyer_id,", "    buyer_id,\n    current_timestamp() as built_at,"))
    ws = workspace(tmp_path, "stamped", "stamped", root=tmp_path / "overlays")
    _, report = grade_report(ws, tmp_path / "out", "--passes", "dbt.idempotent")
    idempotent = checks_of(report)["dbt.idempotent"]
    assert idempotent["status"] == "fail" and "fct_orders" in idempotent["message"]
    assert idempotent["evidence"]["before"]["fct_orders"]["sha256"] != idempotent["evidence"]["after"]["fct_orders"]["sha256"]


@pytest.mark.parametrize("name, dedup_model", [("downstream_dedup", "int_payments_deduplicated (intermediate)"),
                                               ("mart_dedup", "fct_payments (mart)")])
def test_dedup_downstream_of_staging_passes_every_trap(tmp_path, name, dedup_model):
    """stg_payments stays one-to-one with its source (replays kept there); an intermediate model or the
    mart deduplicates. Every trap is handled, the layout is a light lint finding, no "missed" headline."""
    ws = calibration_workspace(tmp_path, name)
    _, report = grade_report(ws, tmp_path / "out", "--quick")
    checks = checks_of(report)
    for check_id in [spec.id for spec in run_order("result")]:
        assert checks[check_id]["status"] == "pass", (check_id, checks[check_id]["message"])
    staging = checks["payments.dedup"]["evidence"]["stg_payments"]
    assert staging["event_ids_more_than_once"] > 0 and staging["rows"] > staging["distinct_event_ids"]
    layer = checks["lint.payments_dedup_layer"]
    assert layer["status"] == "fail" and layer["score"] == 0.5 and dedup_model in layer["message"]
    assert checks["lint.payments_dedup_pattern"]["status"] == "pass"
    levels = {c["id"]: c["level"] for c in report["rubric"]["criteria"]}
    assert levels["deduplication"] >= 3
    html = (tmp_path / "out" / name / "report.html").read_text()
    assert ">missed<" not in html


def test_audit_column_beside_the_capped_one_and_a_warn_test(tmp_path):
    """dim_products.updated_at_reported keeps the seller's future value beside the capped updated_at: listed,
    not judged. A test declared severity: warn fires (dbt exits 0): a warning, not a failed build."""
    ws = calibration_workspace(tmp_path, "downstream_dedup")
    _, report = grade_report(ws, tmp_path / "out", "--quick")
    checks = checks_of(report)
    future = checks["products.future_updated_at"]
    assert future["status"] == "pass" and "dim_products.updated_at_reported" in future["message"]
    own = {(c["mart"], c["column"]): c for c in future["evidence"]["candidate_columns_not_judged"]}
    assert own[("dim_products", "updated_at_reported")]["after_extraction"] is True
    judged = {(c["mart"], c["column"]) for c in future["evidence"]["columns_after_extraction"]}
    assert not judged
    build = checks["dbt.build"]
    assert report["dbt"]["status"] == "success" and report["dbt"]["nodes"]["warn"] >= 1
    assert build["status"] == "pass" and build["score"] == 1.0, build["message"]
    assert "severity: warn" in build["message"]
    assert any("assert_clock_skewed_products_are_flagged" in w["node"] for w in build["evidence"]["warnings"])


def test_an_uncapped_contract_column_still_fails(tmp_path):
    """The audit-column allowance covers added columns only: dim_products.updated_at itself must be capped."""
    overlay = tmp_path / "overlays" / "uncapped"
    shutil.copytree(CALIBRATION / "exemplary", overlay)
    dim = overlay / "dbt" / "models" / "marts" / "dim_products.sql"
    dim.write_text(dim.read_text().replace("    p.updated_at,", "    p.reported_updated_at as updated_at,"))
    ws = workspace(tmp_path, "uncapped", "uncapped", root=tmp_path / "overlays")
    _, report = grade_report(ws, tmp_path / "out", "--quick")
    future = checks_of(report)["products.future_updated_at"]
    assert future["status"] == "fail" and "dim_products.updated_at" in future["message"], future["message"]


def test_a_solution_fitted_to_the_canonical_data_does_not_generalise(tmp_path):
    """fct_payments drops a seeded list of the canonical replayed rows: right on canonical data, wrong on
    the variant; the data criteria are capped."""
    ws = calibration_workspace(tmp_path, "fitted_to_canonical")
    _, report = grade_report(ws, tmp_path / "out", "--passes", "dbt.generalises")
    checks = checks_of(report)
    assert checks["payments.dedup"]["status"] == "pass", checks["payments.dedup"]["message"]
    generalises = checks["dbt.generalises"]
    assert generalises["status"] == "fail" and "payments.dedup" in generalises["message"]
    levels = {c["id"]: c["level"] for c in report["rubric"]["criteria"]}
    assert levels["deduplication"] <= 1 and levels["null_handling"] <= 1


def test_half_finished_and_careful_but_broken_solutions(tmp_path):
    """Two marts missing: their checks name them, the others pass. One Jinja typo: nothing builds."""
    half = calibration_workspace(tmp_path, "half_finished")
    _, report = grade_report(half, tmp_path / "out", "--quick")
    checks = checks_of(report)
    for check_id in ("payments.dedup", "orders.confirmed_at_utc", "users.soft_deletes", "users.country_nulls",
                     "money.usd_conversion", "products.future_updated_at"):
        assert checks[check_id]["status"] == "pass", (check_id, checks[check_id]["message"])
    assert "expected a model named fct_daily_sales" in checks["sales.gmv"]["message"]
    assert "expected a model named fct_seller_performance" in checks["sellers.performance"]["message"]
    typo = calibration_workspace(tmp_path, "careful_typo")
    _, report = grade_report(typo, tmp_path / "out", "--quick")
    assert report["dbt"]["status"] == "error" and checks_of(report)["dbt.build"]["status"] == "fail"
    assert report["rubric"]["band"] in ("Lean No Hire", "No Hire")


def test_the_variant_on_a_second_engine_and_in_place_give_the_same_verdict(tmp_path, emulator):
    """The embedded warehouse builds the variant on a second engine beside the other passes; a
    warehouse given by URL builds it in place, after them. Same solution, same verdict."""
    ws = calibration_workspace(tmp_path, "fitted_to_canonical")
    _, side = grade_report(ws, tmp_path / "side", "--passes", "dbt.generalises")
    _, in_place = grade_report(ws, tmp_path / "in-place", "--passes", "dbt.generalises",
                               "--warehouse", emulator.endpoint, "--replace-datasets")
    assert in_place["environment"]["warehouse"] == "url" and side["environment"]["warehouse"] == "embedded"
    side_check, in_place_check = checks_of(side)["dbt.generalises"], checks_of(in_place)["dbt.generalises"]
    assert side_check["status"] == "fail"
    assert {k: side_check[k] for k in ("status", "score", "message")} == \
        {k: in_place_check[k] for k in ("status", "score", "message")}
    assert side_check["evidence"]["checks"] == in_place_check["evidence"]["checks"]
