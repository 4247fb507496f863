"""Calibration without grading: solutions.yaml's expectations, ordered chains, and agreement with a panel.

`grade calibrate --panel` is run for real (the CLI) on report.json files written here, so no
emulator or dbt is needed; the kappa values are computed by hand in the docstrings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.calibration import (
    CalibrationError, Solution, agreement, judge, load_calibration, load_panel, order_violations, overlay_files,
    panel_pairs, weighted_kappa,
)
from tests.grading import CALIBRATION, grade


def report(total: float, band: str, levels: dict[str, int | None]) -> dict:
    """The part of a report.json calibration reads."""
    return {"rubric": {"total": total, "band": band, "sections": [{"id": "data_quality", "score": total}],
                       "criteria": [{"id": c, "level": lv, "auto_level": lv, "source": "auto"}
                                    for c, lv in levels.items()]}}


def test_the_shipped_calibration_covers_the_bottom_and_the_middle():
    calibration = load_calibration()
    by_name = {s.name: s for s in calibration.solutions}
    assert by_name["starter"].max_total == 0.5
    assert set(by_name["careful_typo"].expected) <= {"Lean No Hire", "No Hire"}
    for name in ("downstream_dedup", "mart_dedup", "careful_typo", "fitted_to_canonical", "half_finished"):
        assert by_name[name].base == "exemplary" and overlay_files(by_name[name], CALIBRATION), name
    half = overlay_files(by_name["half_finished"], CALIBRATION)
    assert "dbt/models/staging/stg_payments.sql" in half
    assert not {"dbt/models/marts/fct_daily_sales.sql", "dbt/models/marts/fct_seller_performance.sql"} & set(half)
    assert ["exemplary", "solid", "naive", "starter"] in calibration.ordered


def test_judge_checks_the_band_and_the_declared_bounds():
    starter = Solution("starter", None, ("No Hire",), "", max_total=0.5)
    assert judge(starter, report(0.4, "No Hire", {}), 0)["miss"] == ""
    assert judge(starter, report(1.04, "No Hire", {}), 0)["miss"] == "total 1.04 above 0.50"
    floor = Solution("solid", "solid", ("Hire",), "", min_total=3.1)
    assert judge(floor, report(3.05, "Hire", {}), 0)["miss"] == "total 3.05 below 3.10"
    assert judge(floor, None, 3)["miss"] == "grade exited 3; band no report, expected Hire"


def test_order_violations_name_the_pair_and_skip_solutions_not_graded():
    chains = [["exemplary", "solid", "naive", "starter"]]
    assert order_violations({"exemplary": 3.7, "solid": 3.2, "naive": 1.5, "starter": 0.4}, chains) == []
    assert order_violations({"exemplary": 3.7, "naive": 1.5}, chains) == []  # --only: solid and starter left out
    assert order_violations({"exemplary": 3.7, "solid": 3.7, "starter": 0.4}, chains) == [
        "order exemplary > solid > naive > starter: exemplary (3.70) is not above solid (3.70)"]
    assert order_violations({"solid": 3.2, "naive": None}, chains) == [
        "order exemplary > solid > naive > starter: solid (3.20) is not above naive (no total)"]


def test_solutions_yaml_errors_are_named(tmp_path):
    path = tmp_path / "solutions.yaml"
    path.write_text("solutions:\n  - {name: a, overlay: null, expected: [No Hire], max_total: low}\n")
    with pytest.raises(CalibrationError, match="a.max_total must be a number"):
        load_calibration(path)
    path.write_text("solutions:\n  - {name: a, overlay: null, expected: [No Hire]}\nordered:\n  - [a, b]\n")
    with pytest.raises(CalibrationError, match="unknown: b"):
        load_calibration(path)


def test_quadratic_kappa_by_hand():
    """Pairs (panel, auto) = (1,1) (2,3) (3,3) (3,2). Observed mean squared difference 2/4 = 0.5.
    Both marginals are 1/4, 1/4, 1/2 on levels 1, 2, 3, so chance expects
    sum p_i p_j (i-j)^2 = 2 * (1/16*1 + 1/8*4 + 1/8*1) = 22/16; kappa = 1 - 0.5 / (22/16) = 7/11."""
    assert weighted_kappa([(1, 1), (2, 3), (3, 3), (3, 2)]) == pytest.approx(7 / 11)
    assert weighted_kappa([(0, 0), (4, 4), (2, 2)]) == pytest.approx(1.0)
    # Opposite ends every time: observed 16, chance expects (0.5*0.5*16)*2 = 8; kappa = 1 - 16/8 = -1.
    assert weighted_kappa([(0, 4), (4, 0)]) == pytest.approx(-1.0)
    # Everyone gave 3: nothing to agree on beyond chance, kappa undefined.
    assert weighted_kappa([(3, 3), (3, 3)]) is None


def test_agreement_rows_per_criterion_and_pooled():
    pairs = {"testing": [(1, 1), (2, 3), (3, 3), (3, 2)], "debugging": [(2, None)], "deduplication": [(4, 2)]}
    rows = {r["criterion"]: r for r in agreement(pairs)}
    assert rows["testing"]["exact"] == 0.5 and rows["testing"]["within_one"] == 1.0
    assert rows["testing"]["kappa"] == pytest.approx(7 / 11) and rows["testing"]["mean_difference"] == 0
    assert rows["debugging"]["pairs"] == 0 and rows["debugging"]["no_auto_level"] == 1
    assert rows["deduplication"]["within_one"] == 0.0 and rows["deduplication"]["mean_difference"] == -2
    assert rows["all criteria"]["pairs"] == 5 and rows["all criteria"]["no_auto_level"] == 1
    assert list(rows)[-1] == "all criteria"


def write_panel(tmp_path: Path) -> Path:
    reports = {"alice": {"testing": 1, "deduplication": 4}, "bob": {"testing": 3, "deduplication": 2},
               "carol": {"testing": 3, "deduplication": 4}, "dan": {"testing": 2, "deduplication": None}}
    for name, levels in reports.items():
        folder = tmp_path / "reports" / name
        folder.mkdir(parents=True)
        (folder / "report.json").write_text(json.dumps(report(2.0, "Lean No Hire", levels)))
    panel = tmp_path / "panel.yaml"
    panel.write_text("""\
# levels the hiring panel agreed after each debrief
workspaces:
  - {report: reports/alice/report.json, levels: {testing: 1, deduplication: 4}}
  - {report: reports/bob/report.json, levels: {testing: 3, deduplication: 3}}
  - {report: reports/carol/report.json, levels: {testing: 2, deduplication: 4}}
  - {name: dan, report: reports/dan/report.json, levels: {testing: 3, deduplication: 1}}
""")
    return panel


def test_panel_pairs_read_the_automatic_levels_of_each_report(tmp_path):
    pairs = panel_pairs(load_panel(write_panel(tmp_path)), {})
    assert pairs["testing"] == [(1, 1), (3, 3), (2, 3), (3, 2)]
    assert pairs["deduplication"] == [(4, 4), (3, 2), (4, 4), (1, None)]


def test_grade_calibrate_panel_prints_agreement(tmp_path):
    """testing: the pairs of the hand-computed example (kappa 7/11 = 0.64); deduplication: (4,4) (3,2) (4,4),
    exact 2/3, within one 3/3; marginals panel 3:1/3, 4:2/3 and auto 2:1/3, 4:2/3, so chance expects
    (3,2) 1/9*1 + (3,4) 2/9*1 + (4,2) 2/9*4 + (4,4) 0 = 11/9, observed 1/3, kappa 1 - 3/11 = 8/11 = 0.73;
    dan has no automatic level for it."""
    result = grade(["calibrate", "--panel", str(write_panel(tmp_path))], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert lines["testing"][1:] == ["4", "50%", "100%", "0.64", "+0.00", "0"]
    assert lines["deduplication"][1:] == ["3", "67%", "100%", "0.73", "-0.33", "1"]
    assert lines["all"][2:] == ["7", "57%", "100%"] + lines["all"][5:]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("text, message", [
    ("workspaces: []\n", "expected a list under `workspaces:`"),
    ("workspaces:\n  - {levels: {testing: 2}}\n", "exactly one of `report:`"),
    ("workspaces:\n  - {report: r.json, levels: {testing: 5}}\n", "levels must be whole numbers 0..4"),
    ("workspaces:\n  - {report: missing.json, levels: {testing: 2}}\n", "cannot read"),
    ("workspaces:\n  - {solution: nobody, levels: {testing: 2}}\n", "no solution named nobody"),
])
def test_unusable_panel_files_exit_2_with_a_message(tmp_path, text, message):
    panel = tmp_path / "panel.yaml"
    panel.write_text(text)
    result = grade(["calibrate", "--panel", str(panel)], timeout=120)
    assert result.returncode == 2 and message in result.stdout, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_criterion_the_report_lacks_is_named(tmp_path):
    panel = write_panel(tmp_path)
    panel.write_text(panel.read_text().replace("testing: 1", "tesitng: 1"))
    result = grade(["calibrate", "--panel", str(panel)], timeout=120)
    assert result.returncode == 2 and "no criterion tesitng" in result.stdout
