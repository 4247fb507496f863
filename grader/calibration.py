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
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import git
import yaml

REPO = Path(__file__).resolve().parents[1]
CALIBRATION_DIR = REPO / "calibration"
STARTER_DIR = REPO / "environment"
SESSION_START = datetime(2025, 11, 20, 9, 0, tzinfo=timezone.utc)
COMMIT_GAP = timedelta(minutes=20)
# Folders of the starter that a candidate never needs and that make copies slow.
STARTER_EXCLUDES = ("postgres",)


@dataclass(frozen=True)
class Solution:
    name: str
    overlay: str | None
    expected: tuple[str, ...]
    why: str
    base: str | None = None
    remove: tuple[str, ...] = ()


def load_solutions(path: Path = CALIBRATION_DIR / "solutions.yaml") -> list[Solution]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Solution(s["name"], s.get("overlay"), tuple(s["expected"]), s.get("why", ""), s.get("base"),
                     tuple(s.get("remove", ()))) for s in data["solutions"]]


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
    shutil.copytree(STARTER_DIR, workspace, ignore=shutil.ignore_patterns(*STARTER_EXCLUDES, "target", "logs"))
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
    from grader.cli import grade_parser
    from grader.pipeline import run_grade

    solutions = [s for s in load_solutions() if not args.only or s.name in args.only]
    if not solutions:
        print(f"grade calibrate: no solution named {', '.join(args.only)}")
        return 2
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="grade-calibrate-") as tmp:
        for solution in solutions:
            progress(f"calibration: {solution.name} (expected {' or '.join(solution.expected)})")
            workspace = materialise(solution, Path(tmp))
            grade_args = grade_parser().parse_args(
                [str(workspace), "--out", str(args.out), "--scale", args.scale, "--quiet"]
                + (["--dbt-timeout", str(args.dbt_timeout)] if args.dbt_timeout else []))
            code = run_grade(grade_args, progress if args.verbose else (lambda message: None))
            report_path = args.out / solution.name / "report.json"
            report = json.loads(report_path.read_text()) if report_path.exists() else None
            band = report["rubric"]["band"] if report else "no report"
            rows.append({"name": solution.name, "expected": solution.expected, "band": band, "exit": code,
                         "total": report["rubric"]["total"] if report else None,
                         "sections": {s["id"]: s["score"] for s in report["rubric"]["sections"]} if report else {},
                         "ok": band in solution.expected and code == 0})
    _print_table(rows)
    totals = {r["name"]: r["total"] for r in rows}
    order_ok = _strictly_ordered(totals, ["exemplary", "solid", "naive"])
    if not order_ok:
        print("ordering violated: exemplary > solid > naive expected")
    misses = [r["name"] for r in rows if not r["ok"]]
    if misses:
        print(f"calibration FAILED: {', '.join(misses)} outside the expected band")
    return 1 if misses or not order_ok else 0


def _strictly_ordered(totals: dict[str, float | None], names: list[str]) -> bool:
    present = [totals[n] for n in names if n in totals]
    if any(t is None for t in present):
        return False
    return all(a > b for a, b in zip(present, present[1:]))


def _print_table(rows: list[dict[str, Any]]) -> None:
    sections = sorted({k for r in rows for k in r["sections"]})
    header = ["solution", "expected", "got", "total"] + sections + ["ok"]
    table = [header]
    for r in rows:
        table.append([r["name"], " / ".join(r["expected"]), r["band"],
                      f"{r['total']:.2f}" if r["total"] is not None else "-"]
                     + [f"{r['sections'].get(s):.2f}" if r["sections"].get(s) is not None else "-" for s in sections]
                     + ["yes" if r["ok"] else "NO"])
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
