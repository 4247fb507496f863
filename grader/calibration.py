"""Calibration: grade the reference solutions and prove each lands in its expected band.

A solution is the starter repository (environment/) with the solution's overlay folder laid
over it, committed with fixed author dates, so the workspace and its history are the same
on every run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import Any
from collections.abc import Callable

import git
import yaml

from grader.options import GradeOptions
from grader.pipeline import run_grade
from grader.resources import CALIBRATION_DIR, HANDOUT_DATA_DIRS, HANDOUT_DIR
from grader.snapshot import DBT_OUTPUT_DIRS, TOOLING_DIRS

STARTER_DIR = HANDOUT_DIR
# Not copied from the starter into a reference workspace.
STARTER_EXCLUDES = (*sorted(HANDOUT_DATA_DIRS), *sorted(TOOLING_DIRS), *sorted(DBT_OUTPUT_DIRS))
SESSION_START = datetime(2025, 11, 20, 9, 0, tzinfo=UTC)
COMMIT_GAP = timedelta(minutes=20)


class CalibrationError(ValueError):
    """solutions.yaml or a panel file is malformed; the message says where."""


@dataclass(frozen=True)
class Solution:
    name: str
    overlay: str | None
    expected: tuple[str, ...]
    why: str
    base: str | None = None
    remove: tuple[str, ...] = ()
    max_total: float | None = None
    min_total: float | None = None


@dataclass(frozen=True)
class Calibration:
    """The reference solutions and the chains of them whose totals must strictly decrease."""

    solutions: list[Solution]
    ordered: list[list[str]]


def load_calibration(path: Path = CALIBRATION_DIR / "solutions.yaml") -> Calibration:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    solutions = []
    for s in data["solutions"]:
        bounds = {k: s.get(k) for k in ("max_total", "min_total")}
        for key, value in bounds.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise CalibrationError(f"{path.name}: {s['name']}.{key} must be a number, not {value!r}")
        solutions.append(Solution(s["name"], s.get("overlay"), tuple(s["expected"]), s.get("why", ""), s.get("base"),
                                  tuple(s.get("remove", ())), bounds["max_total"], bounds["min_total"]))
    names = {s.name for s in solutions}
    ordered = [list(chain) for chain in data.get("ordered", [])]
    for chain in ordered:
        unknown = [n for n in chain if n not in names]
        if unknown or len(chain) < 2:
            raise CalibrationError(f"{path.name}: ordered chain {chain} needs two or more known solutions"
                                   + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    return Calibration(solutions, ordered)


def load_solutions(path: Path = CALIBRATION_DIR / "solutions.yaml") -> list[Solution]:
    return load_calibration(path).solutions


def overlay_files(solution: Solution, overlay_root: Path) -> dict[str, Path]:
    """Relative path -> file for a solution: its base's files less `remove`, then its own on top."""
    files: dict[str, Path] = {}
    for folder in ([solution.base] if solution.base else []) + ([solution.overlay] if solution.overlay else []):
        root = overlay_root / folder
        if folder == solution.overlay:
            files = {rel: path for rel, path in files.items()
                     if not any(rel == r or rel.startswith(r.rstrip("/") + "/") for r in solution.remove)}
        files.update({p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()})
    return files


def _commit(repo: git.Repo, message: str, when: datetime) -> None:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S+0000")
    actor = git.Actor("Reference Candidate", "candidate@example.com")
    repo.git.add(A=True)
    repo.index.commit(message, author=actor, committer=actor, author_date=stamp, commit_date=stamp)


def materialise(solution: Solution, into: Path, overlay_root: Path = CALIBRATION_DIR) -> Path:
    """The solution as a git workspace under `into`/<name>: starter commit, then one commit per overlay folder."""
    workspace = into / solution.name
    shutil.copytree(STARTER_DIR, workspace, ignore=shutil.ignore_patterns(*STARTER_EXCLUDES))
    repo = git.Repo.init(workspace, initial_branch="main")
    _commit(repo, "Starter repository as handed over", SESSION_START)
    groups: dict[str, list[tuple[str, Path]]] = {}
    for rel, path in overlay_files(solution, overlay_root).items():
        parts = rel.split("/")
        key = "/".join(parts[:3]) if parts[0] == "dbt" else parts[0]
        groups.setdefault(key, []).append((rel, path))
    for number, (group, files) in enumerate(sorted(groups.items(), key=_session_order), start=1):
        for rel, path in files:
            target = workspace / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        _commit(repo, f"Add {group}: {', '.join(sorted(Path(rel).name for rel, _ in files))[:120]}",
                SESSION_START + number * COMMIT_GAP)
    repo.close()
    return workspace


def _session_order(item: tuple[str, list[tuple[str, Path]]]) -> tuple[int, str]:
    """A plausible order of work: docs of discovery first, then staging, tests, marts, DAG, docs."""
    group = item[0]
    order = ["docs", "dbt/models/staging", "dbt/tests", "dbt/macros", "dbt/models/intermediate",
             "dbt/models/marts", "airflow", "dbt"]
    for rank, prefix in enumerate(order):
        if group.startswith(prefix):
            return rank, group
    return len(order), group


def calibrate(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    """Grade the reference solutions; 1 when one misses its band or bounds or an ordered chain breaks.

    With `--panel`, only the solutions the panel names (and `--only`) are graded, and the
    agreement between the panel's levels and the automatic ones is printed after the table.
    """
    try:
        calibration = load_calibration()
        panel = load_panel(args.panel) if getattr(args, "panel", None) else None
    except (CalibrationError, OSError, yaml.YAMLError) as problem:
        print(f"grade calibrate: {problem}")
        return 2
    wanted = set(args.only or ())
    if panel is not None:
        wanted |= {e.solution for e in panel if e.solution}
    unknown = sorted(wanted - {s.name for s in calibration.solutions})
    if unknown:
        print(f"grade calibrate: no solution named {', '.join(unknown)}")
        return 2
    solutions = [s for s in calibration.solutions if (not wanted and panel is None) or s.name in wanted]
    reports: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="grade-calibrate-") as tmp:
        for solution in solutions:
            progress(f"calibration: {solution.name} (expected {expectation(solution)})")
            workspace = materialise(solution, Path(tmp))
            options = GradeOptions(out=args.out, scale=args.scale, quiet=True,
                                   **({"dbt_timeout": args.dbt_timeout} if args.dbt_timeout else {}))
            code = run_grade(workspace, options, progress if args.verbose else (lambda message: None))
            report_path = args.out / solution.name / "report.json"
            report = json.loads(report_path.read_text()) if report_path.exists() else None
            if report:
                reports[solution.name] = report
            rows.append(judge(solution, report, code))
    failures = [f"{r['name']}: {r['miss']}" for r in rows if r["miss"]]
    failures += order_violations({r["name"]: r["total"] for r in rows}, calibration.ordered)
    if rows:
        print_table(rows)
    for failure in failures:
        print(f"calibration FAILED: {failure}")
    if panel is not None:
        try:
            pairs = panel_pairs(panel, reports)
        except CalibrationError as problem:
            print(f"grade calibrate: {problem}")
            return 2
        if rows:
            print()
        print_agreement(agreement(pairs))
    return 1 if failures else 0


def expectation(solution: Solution) -> str:
    """The expectation as one phrase: the bands, then any bounds on the total."""
    parts = [" or ".join(solution.expected)]
    if solution.max_total is not None:
        parts.append(f"total <= {solution.max_total:.2f}")
    if solution.min_total is not None:
        parts.append(f"total >= {solution.min_total:.2f}")
    return ", ".join(parts)


def judge(solution: Solution, report: dict[str, Any] | None, exit_code: int) -> dict[str, Any]:
    """One table row: what was expected, what the report says, and why it misses (empty when it does not)."""
    band = report["rubric"]["band"] if report else "no report"
    total = report["rubric"]["total"] if report else None
    misses = []
    if exit_code != 0:
        misses.append(f"grade exited {exit_code}")
    if band not in solution.expected:
        misses.append(f"band {band}, expected {' or '.join(solution.expected)}")
    if total is not None and solution.max_total is not None and total > solution.max_total:
        misses.append(f"total {total:.2f} above {solution.max_total:.2f}")
    if total is not None and solution.min_total is not None and total < solution.min_total:
        misses.append(f"total {total:.2f} below {solution.min_total:.2f}")
    if report and "checks" in report:  # a whole report (tests pass bare summaries)
        from grader.rubric import unsupported_claims

        misses.extend(f"claim without evidence: {claim}" for claim in unsupported_claims(report))
    return {"name": solution.name, "expected": expectation(solution), "band": band, "total": total,
            "sections": {s["id"]: s["score"] for s in report["rubric"]["sections"]} if report else {},
            "miss": "; ".join(misses)}


def order_violations(totals: dict[str, float | None], chains: list[list[str]]) -> list[str]:
    """Each chain's graded members must have strictly decreasing totals; solutions not graded are left out."""
    violations = []
    for chain in chains:
        present = [n for n in chain if n in totals]
        for higher, lower in zip(present, present[1:]):
            a, b = totals[higher], totals[lower]
            if a is None or b is None or not a > b:
                violations.append(f"order {' > '.join(chain)}: {higher} ({_shown(a)}) is not above "
                                  f"{lower} ({_shown(b)})")
    return violations


def _shown(total: float | None) -> str:
    return "no total" if total is None else f"{total:.2f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    sections = sorted({k for r in rows for k in r["sections"]})
    header = ["solution", "expected", "got", "total"] + sections + ["ok"]
    table = [header]
    for r in rows:
        table.append([r["name"], r["expected"], r["band"], _shown(r["total"]).replace("no total", "-")]
                     + [f"{r['sections'].get(s):.2f}" if r["sections"].get(s) is not None else "-" for s in sections]
                     + ["NO" if r["miss"] else "yes"])
    print_columns(table)


def print_columns(table: list[list[str]]) -> None:
    widths = [max(len(str(row[i])) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


# -- agreement with a human panel ------------------------------------------------------------

LEVELS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class PanelEntry:
    """The levels a panel gave one graded workspace: its report.json, or a reference solution graded now."""

    label: str
    levels: dict[str, int]
    report: Path | None = None
    solution: str | None = None


def load_panel(path: Path) -> list[PanelEntry]:
    """Read and validate a panel file (format in README, "Agreement with a panel")."""
    if not path.is_file():
        raise CalibrationError(f"panel file {path} is not a readable file")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = data.get("workspaces") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise CalibrationError(f"{path}: expected a list under `workspaces:`")
    entries = []
    for number, item in enumerate(items, start=1):
        where = f"{path}: workspace {number}"
        if not isinstance(item, dict) or (("report" in item) == ("solution" in item)):
            raise CalibrationError(f"{where}: give exactly one of `report:` (a report.json) or `solution:` "
                                   "(a reference solution)")
        levels = item.get("levels")
        if not isinstance(levels, dict) or not levels:
            raise CalibrationError(f"{where}: `levels:` must map criterion ids to levels 0..4")
        bad = {k: v for k, v in levels.items() if isinstance(v, bool) or v not in LEVELS}
        if bad:
            raise CalibrationError(f"{where}: levels must be whole numbers 0..4, got {bad}")
        report = (path.parent / str(item["report"])).resolve() if "report" in item else None
        solution = str(item["solution"]) if "solution" in item else None
        label = str(item.get("name") or solution or item["report"])
        entries.append(PanelEntry(label, {str(k): int(v) for k, v in levels.items()}, report, solution))
    return entries


def panel_pairs(panel: list[PanelEntry], graded: dict[str, dict[str, Any]]) -> dict[str, list[tuple[int, int | None]]]:
    """criterion id -> [(panel level, automatic level or None when the grader set none)], in panel order."""
    pairs: dict[str, list[tuple[int, int | None]]] = {}
    for entry in panel:
        if entry.report is not None:
            try:
                report = json.loads(entry.report.read_text(encoding="utf-8"))
            except (OSError, ValueError) as problem:
                raise CalibrationError(f"panel workspace {entry.label}: cannot read {entry.report}: {problem}") from None
        else:
            report = graded.get(entry.solution or "")
            if report is None:
                raise CalibrationError(f"panel workspace {entry.label}: solution {entry.solution} produced no report")
        automatic = {c["id"]: c.get("auto_level") for c in report.get("rubric", {}).get("criteria", [])}
        unknown = sorted(set(entry.levels) - set(automatic))
        if unknown:
            raise CalibrationError(f"panel workspace {entry.label}: no criterion {', '.join(unknown)} in its report "
                                   f"(criteria: {', '.join(sorted(automatic))})")
        for criterion, level in entry.levels.items():
            pairs.setdefault(criterion, []).append((level, automatic[criterion]))
    return pairs


def weighted_kappa(pairs: list[tuple[int, int]]) -> float | None:
    """Cohen's kappa with quadratic weights over levels 0..4; None when undefined (no spread to agree on)."""
    n = len(pairs)
    if not n:
        return None
    panel_share = {k: sum(1 for p, _ in pairs if p == k) / n for k in LEVELS}
    auto_share = {k: sum(1 for _, a in pairs if a == k) / n for k in LEVELS}
    observed = sum((p - a) ** 2 for p, a in pairs) / n
    expected = sum(panel_share[i] * auto_share[j] * (i - j) ** 2 for i in LEVELS for j in LEVELS)
    return None if expected == 0 else 1 - observed / expected


def agreement(pairs: dict[str, list[tuple[int, int | None]]]) -> list[dict[str, Any]]:
    """Per criterion (sorted), then all criteria pooled: pairs compared, exact and within-one shares, kappa."""
    rows = []
    pooled: list[tuple[int, int]] = []
    unset_total = 0
    for criterion in sorted(pairs):
        compared = [(p, a) for p, a in pairs[criterion] if a is not None]
        unset = len(pairs[criterion]) - len(compared)
        pooled += compared
        unset_total += unset
        rows.append(_agreement_row(criterion, compared, unset))
    rows.append(_agreement_row("all criteria", pooled, unset_total))
    return rows


def _agreement_row(label: str, compared: list[tuple[int, int]], unset: int) -> dict[str, Any]:
    n = len(compared)
    return {"criterion": label, "pairs": n, "no_auto_level": unset,
            "exact": sum(p == a for p, a in compared) / n if n else None,
            "within_one": sum(abs(p - a) <= 1 for p, a in compared) / n if n else None,
            "kappa": weighted_kappa(compared),
            "mean_difference": sum(a - p for p, a in compared) / n if n else None}


def print_agreement(rows: list[dict[str, Any]]) -> None:
    share = lambda v: "-" if v is None else f"{v:.0%}"  # noqa: E731
    number = lambda v: "n/a" if v is None else f"{v:+.2f}"  # noqa: E731
    print("agreement with the panel (automatic level vs the panel's; kappa: quadratic weights, "
          "1 = perfect, 0 = chance; bias: mean automatic minus panel)")
    table = [["criterion", "pairs", "exact", "within 1", "kappa", "bias", "no auto level"]]
    for r in rows:
        table.append([r["criterion"], str(r["pairs"]), share(r["exact"]), share(r["within_one"]),
                      "n/a" if r["kappa"] is None else f"{r['kappa']:.2f}", number(r["mean_difference"]),
                      str(r["no_auto_level"])])
    print_columns(table)
