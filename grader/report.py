"""report.json (the stable contract scripts read) and report.html (the hiring panel's page).

The HTML is one self-contained file (inline CSS and SVG, no scripts, no network) rendered
with Jinja2 autoescaping, so anything the candidate wrote (file names, SQL, commit
messages, descriptions) appears as inert text.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from checks.catalogue import REGISTRY, run_order
from checks.provenance import Provenance, mark_inherited
from checks.registry import current_id
from grader.rubric import debrief, grader_fault, score
from grader.engine_faults import mark as mark_engine_faults
from grader.engine_faults import summary_line as engine_fault_line
from grader.grading import Grading, versions

SCHEMA_VERSION = 1
NODE_KEYS = ("pass", "fail", "error", "skip", "warn")
# Stages whose failures the report shows unfolded: what the candidate's build delivered.
OUTCOME_STAGES = ("build", "result", "rebuild")


def trap_checks() -> list[tuple[str, str]]:
    """(check id, trap) of the checks that judge the exercise's planted traps, as the catalogue declares them."""
    return [(spec.id, spec.trap) for spec in run_order("result") if spec.trap]


def _scrub(value: Any, private: str | None) -> Any:
    """Replace the private work folder in strings, so two gradings give the same report."""
    if not private:
        return value
    if isinstance(value, str):
        return value.replace(private, "<work>")
    if isinstance(value, list):
        return [_scrub(v, private) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, private) for k, v in value.items()}
    return value


def report_json(grading: Grading) -> dict[str, Any]:
    checks = [c.to_json() for c in sorted(grading.checks, key=lambda c: c.id)]
    inherited = _mark_inherited(checks, grading.snapshot)
    snapshot = grading.snapshot.to_json() if grading.snapshot is not None else {
        "commit": None, "dirty": False, "tree_sha256": None, "files": 0}
    dbt = grading.dbt.to_json() if grading.dbt is not None else {
        "status": "skipped", "nodes": dict.fromkeys(NODE_KEYS, 0)}
    all_versions = {**versions(), **(grading.dbt.versions if grading.dbt is not None else {}),
                    **grading.warehouse.get("versions", {})}
    dataset = grading.dataset
    rubric = score(checks, grading.notes)
    grader_errors = sorted(c["id"] for c in checks if grader_fault(c))
    rubric["provisional"] = bool(grading.errors or grader_errors)
    rubric["provisional_because"] = ([e["stage"] for e in grading.errors]
                                     + [f"{i} (grader error)" for i in grader_errors])
    report = {
        "schema_version": SCHEMA_VERSION,
        "candidate": grading.candidate,
        "status": "complete" if not grading.errors else "incomplete",
        "errors": grading.errors,
        "workspace": grading.workspace,
        "snapshot": snapshot,
        "dataset": {"seed": grading.seed, "scale": grading.scale,
                    "extracted_at": dataset.truth["extracted_at"] if dataset is not None else None},
        "environment": {"warehouse": grading.warehouse.get("warehouse"), "versions": all_versions,
                        "isolation": getattr(grading, "isolation", {})},
        "dbt": dbt,
        "checks": checks,
        "rubric": rubric,
        "observed": {c["id"]: {"observed": c["observed"], "reason": c["not_observed_reason"], "by_hand": c["by_hand"]}
                     for c in rubric["criteria"] if c["observed"] is not None},
        "coverage": _coverage(rubric),
        "inherited": inherited,
        "debrief": debrief(rubric, checks),
        "timings": dict(sorted(grading.timings.items())),
    }
    mark_engine_faults(report)
    return _scrub(report, grading.work_dir)


def _mark_inherited(checks: list[dict[str, Any]], snapshot: Any) -> list[dict[str, Any]]:
    """Mark checks and findings that rest only on the unchanged starter (see checks.provenance)."""
    root = getattr(snapshot, "root", None)
    inherited = mark_inherited(checks, Provenance.of(root)) if root is not None and Path(root).is_dir() else []
    for check in checks:
        check.setdefault("inherited", False)
    return inherited


def _coverage(rubric: dict[str, Any]) -> dict[str, Any]:
    """Share (by weight) of each automatic criterion's evidence that ran, and their mean."""
    shares = {c["id"]: c["coverage"] for c in rubric["criteria"] if c["coverage"] is not None}
    return {"criteria": shares, "mean": round(sum(shares.values()) / len(shares), 3) if shares else 0.0}


def summary_lines(grading: Grading) -> list[str]:
    report = report_json(grading)
    rubric = report["rubric"]
    lines = [f"{report['candidate']}: {rubric['band']} (total {rubric['total']:.2f} / 4)"
             + ("" if report["status"] == "complete" else "  [INCOMPLETE]")]
    if not rubric["delivery"]["delivered"]:
        lines.append(f"  delivery gate: {rubric['delivery']['reason']}"
                     + (f"; overridden by the interviewer: {rubric['delivery']['override']}"
                        if rubric["delivery"]["override"] else f"; band at most {rubric['delivery']['max_band']}"))
    for check in report["checks"]:
        if check["status"] == "error":
            fault = (check.get("evidence") or {}).get("fault")
            how = "grader fault: left out, provisional" if fault == "grader" else "on the candidate's input: counted as failed"
            lines.append(f"  ! {check['id']} errored ({how}): {check['message'][:160]}")
    unobserved = [c["title"] for c in rubric["criteria"] if c["observed"] is False]
    if unobserved:
        lines.append(f"  not observed (0 in the total): {', '.join(unobserved)}")
    for error in report["errors"]:
        lines.append(f"  ! {error['stage']}: {error['message'].splitlines()[0][:200]}")
    fault_line = engine_fault_line(report)
    if fault_line:
        lines.append(fault_line)
    nodes = report["dbt"]["nodes"]
    lines.append(f"  dbt: {report['dbt']['status']} ({', '.join(f'{k} {v}' for k, v in nodes.items())})")
    for check_id, title in trap_checks():
        found = next((c for c in report["checks"] if c["id"] == check_id), None)
        if found:
            lines.append(f"  {'+' if found['status'] == 'pass' else '-'} {title}: {found['status']}")
    return lines


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("grader", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
    return env


def render_html(report: dict[str, Any]) -> str:
    criteria_by_section: dict[str, list[dict[str, Any]]] = {}
    for criterion in report["rubric"]["criteria"]:
        criteria_by_section.setdefault(criterion["section"], []).append(criterion)
    checks = {c["id"]: c for c in report["checks"]}
    traps = [{"title": title, "check": checks.get(cid)} for cid, title in trap_checks()]
    commits = report["snapshot"].get("commits", [])
    return _environment().get_template("report.html.j2").render(
        r=report, criteria_by_section=criteria_by_section, checks=checks, traps=traps,
        earned={c["id"]: _earned_once(c.get("earned_by") or []) for c in report["rubric"]["criteria"]},
        timeline=_timeline(commits), families=_families(report["checks"]),
    )


def _earned_once(earned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each finding once, with the levels it supports (the JSON keeps one entry per level)."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in earned:
        key = (entry["check"], entry["finding"])
        grouped.setdefault(key, {**entry, "levels": []})["levels"].append(entry["level"])
    return list(grouped.values())


def _families(checks: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]], bool]]:
    """Checks by family, and whether the family's failures show unfolded (those of the outcome
    stages; static and history findings stay folded)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for check in checks:
        grouped.setdefault(check["id"].split(".", 1)[0], []).append(check)
    return [(family, items, any(_stage(c["id"]) in OUTCOME_STAGES for c in items))
            for family, items in sorted(grouped.items())]


def _stage(check_id: str) -> str | None:
    spec = REGISTRY.get(current_id(check_id))
    return spec.stage if spec is not None else None


def _timeline(commits: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Positions (0..1) of commits on the session's time axis, for an inline SVG."""
    from datetime import datetime

    times = []
    for commit in commits:
        try:
            times.append(datetime.fromisoformat(commit["author_time"].replace("Z", "+00:00")))
        except (KeyError, ValueError):
            continue
    if not times:
        return None
    start, end = min(times), max(times)
    span = (end - start).total_seconds() or 1.0
    points = [{"x": (t - start).total_seconds() / span, "message": c.get("message", "").splitlines()[0][:120] if c.get("message") else "",
               "time": c.get("author_time"), "files": len(c.get("files", []))}
              for t, c in zip(times, commits)]
    return {"start": start.strftime("%Y-%m-%d %H:%M"), "end": end.strftime("%Y-%m-%d %H:%M"),
            "minutes": round(span / 60) if len(times) > 1 else 0, "points": points}


def write_reports(grading: Grading, out_dir: Path) -> dict[str, Path]:
    """report.json and report.html in `out_dir`, each written whole or not at all.

    Never through a link: a symlink where the folder or a report should be is replaced, not
    followed, so nothing planted there can redirect the write to another file.
    """
    report = report_json(grading)
    _real_folder(out_dir)
    json_path = out_dir / "report.json"
    html_path = out_dir / "report.html"
    _write_atomically(json_path, json.dumps(report, indent=2, sort_keys=False, default=str) + "\n")
    _write_atomically(html_path, render_html(report))
    return {"json": json_path, "html": html_path}


def _real_folder(folder: Path) -> None:
    if folder.is_symlink():
        folder.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def _write_atomically(path: Path, text: str) -> None:
    """Write a temporary file beside `path`, then rename it over `path` (rename replaces a
    symlink itself, never its target)."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
