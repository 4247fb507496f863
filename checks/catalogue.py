"""The whole catalogue, loaded: importing this module registers every check (each family's
module declares its own), and renders what `grade checks` prints and docs/checks.md.

    grade checks [--family F]     the catalogue as a table
    grade checks ID               one check's documentation
    grade checks --doc [--check]  the hiring panel's docs/checks.md and docs/rubric.md (generated, never
                                  edited by hand; not under environment/, which candidates receive)
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import checks.dbt_checks  # noqa: F401  (registers dbt.build)
import checks.passes  # noqa: F401  (registers dbt.idempotent, tests.mutations, dbt.generalises; and the results)
import checks.static  # noqa: F401  (registers lint.*, dag.*, history.*)
from checks.registry import LEGACY_IDS, REGISTRY, RENAMED_IDS, STAGES, CheckSpec, run_order, specs

__all__ = ["DOCS_DIR", "REGISTRY", "UnknownCheck", "describe", "find", "markdown", "ordered", "panel_docs", "run_order",
           "specs", "table"]

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs"
STAGE_TITLES = {
    "build": "The candidate's dbt build",
    "result": "Results against the ground truth (the marts, read from the warehouse)",
    "rebuild": "Rebuilds: idempotency, planted defects, a second dataset",
    "static": "Static analysis of the models and DAGs (nothing of the candidate's is run)",
    "history": "How the work was done (git history, written decisions)",
}


class UnknownCheck(LookupError):
    """No check has this id; the message lists the families to look in."""


def find(check_id: str) -> CheckSpec:
    """The catalogue entry of `check_id` (an id from before a rename finds the renamed check)."""
    spec = REGISTRY.get(RENAMED_IDS.get(check_id, check_id))
    if spec is None:
        families = sorted({s.family for s in REGISTRY.values()})
        raise UnknownCheck(f"no check {check_id!r}; `grade checks` lists them all (families: {', '.join(families)})")
    return spec


def ordered(family: str | None = None) -> list[CheckSpec]:
    """Checks by stage (in the order a grading runs them), then id."""
    return sorted(specs(family), key=lambda s: (STAGES.index(s.stage), s.id))


def table(family: str | None = None) -> str:
    """One line per check: id, stage, severity, title."""
    rows = [(s.id, s.stage, s.severity, s.title) for s in ordered(family)]
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows + [("id", "stage", "severity", "")]) for i in range(3)]
    header = ("id", "stage", "severity", "title")
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3]
                     for row in [header, *rows]) + "\n"


def describe(spec: CheckSpec) -> str:
    """One check's documentation as plain text: what, why, how to fix, needs, examples."""
    lines = [spec.id, "", spec.title, "",
             f"stage: {spec.stage}    severity: {spec.severity}    needs: {', '.join(spec.needs) or 'nothing'}"]
    if spec.id in LEGACY_IDS:
        lines.append(f"formerly: {LEGACY_IDS[spec.id]} (report.json also carries it as legacy_id)")
    if spec.trap:
        lines.append(f"trap: {spec.trap}")
    for heading, text in (("Why it matters:", spec.why), ("How to fix:", spec.fix)):
        if text:
            lines += ["", heading, *textwrap.wrap(text, 96, initial_indent="    ", subsequent_indent="    ")]
    if spec.examples is not None:
        for label, files in (("fails", spec.examples.bad), ("passes", spec.examples.good)):
            for path, content in files.items():
                lines += ["", f"Example that {label}: {path}", _indent(content.rstrip("\n"))]
    return "\n".join(lines) + "\n"


def markdown() -> str:
    """docs/checks.md: the catalogue for the hiring panel (not for candidates: check ids stay
    out of environment/, which they receive)."""
    out = ["# Checks", "",
           "<!-- Generated from the check catalogue by `grade checks --doc`. Do not edit by hand. -->", "",
           "Every check the grader runs, in the order of a grading. `grade checks ID` prints the same "
           "documentation in a terminal; the rubric (rubric.yaml) says which criteria each check informs.", ""]
    if RENAMED_IDS:
        out += ["Renamed ids (report.json keeps the old one as `legacy_id` for one release): "
                + ", ".join(f"`{old}` → `{new}`" for old, new in sorted(RENAMED_IDS.items())) + ".", ""]
    for stage in STAGES:
        staged = [s for s in ordered() if s.stage == stage]
        if not staged:
            continue
        out += [f"## {STAGE_TITLES[stage]}", "", "| id | severity | needs | title |", "|---|---|---|---|"]
        out += [f"| [`{s.id}`](#{_anchor(s.id)}) | {s.severity} | {', '.join(s.needs) or '-'} | {_cell(s.title)} |"
                for s in staged]
        out.append("")
        for spec in staged:
            out += [f"### {spec.id}", "", f"**{spec.title.rstrip('.')}.**", ""]
            if spec.id in LEGACY_IDS:
                out += [f"Formerly `{LEGACY_IDS[spec.id]}`.", ""]
            if spec.trap:
                out += [f"Trap: {spec.trap}.", ""]
            out += [f"*Why it matters.* {spec.why}", "", f"*How to fix.* {spec.fix}", ""]
            if spec.examples is not None:
                for label, files in (("Fails", spec.examples.bad), ("Passes", spec.examples.good)):
                    for path, content in files.items():
                        out += [f"{label}: `{path}`", "", "```" + _fence_language(path),
                                content.rstrip("\n"), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def panel_docs() -> dict[Path, str]:
    """The hiring panel's generated documents: the catalogue, and the rubric that links to it."""
    from grader.rubric import render_markdown

    return {DOCS_DIR / "checks.md": markdown(), DOCS_DIR / "rubric.md": render_markdown()}


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else "" for line in text.splitlines())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _anchor(check_id: str) -> str:
    """GitHub's heading anchor for `### <id>`: dots dropped."""
    return check_id.replace(".", "").lower()


def _fence_language(path: str) -> str:
    return {".sql": "sql", ".yml": "yaml", ".yaml": "yaml", ".py": "python"}.get(Path(path).suffix, "")
