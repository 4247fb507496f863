"""Turn check results into rubric levels, section scores, a weighted total and a band.

rubric.yaml is the one source; nothing here knows any check by name. The interviewer's
notes file gives levels for criteria no program can judge and may override automatic
levels, each with a reason the report shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import yaml

RUBRIC_PATH = Path(__file__).resolve().parents[1] / "rubric.yaml"
UNSCORED_STATUSES = ("skipped", "error")


class RubricError(ValueError):
    """rubric.yaml or a notes file is malformed; the message says where."""


@dataclass(frozen=True)
class Rubric:
    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path = RUBRIC_PATH) -> "Rubric":
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        rubric = cls(data)
        rubric.validate()
        return rubric

    @property
    def sections(self) -> list[dict[str, Any]]:
        return self.data["sections"]

    def criteria(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(section, criterion) for section in self.sections for criterion in section["criteria"]]

    def validate(self) -> None:
        ids = [c["id"] for _, c in self.criteria()]
        if len(ids) != len(set(ids)):
            raise RubricError("rubric.yaml: criterion ids must be unique")
        for _, criterion in self.criteria():
            levels = criterion.get("levels", {})
            if sorted(int(k) for k in levels) != [0, 1, 2, 3, 4]:
                raise RubricError(f"rubric.yaml: criterion {criterion['id']} needs level descriptions 0..4")
            if criterion.get("source") != "interviewer" and not criterion.get("informed_by"):
                raise RubricError(f"rubric.yaml: criterion {criterion['id']} has no checks and is not interviewer-scored")

    def band(self, total: float) -> str:
        for band in sorted(self.data["bands"], key=lambda b: -b["min"]):
            if total >= band["min"]:
                return band["name"]
        return self.data["bands"][-1]["name"]


def load_notes(path: Path | None) -> dict[str, dict[str, Any]]:
    """The interviewer's notes: {criteria: {id: {level: 0..4, comment: str, override: bool, reason: str}}}."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RubricError(f"notes file {path}: {exc}") from None
    criteria = data.get("criteria", {}) if isinstance(data, dict) else None
    if not isinstance(criteria, dict):
        raise RubricError(f"notes file {path}: expected a mapping `criteria: {{<id>: {{level: 0..4, comment: ...}}}}`")
    known = {c["id"] for _, c in Rubric.load().criteria()}
    for criterion_id, note in criteria.items():
        if criterion_id not in known:
            raise RubricError(f"notes file {path}: unknown criterion {criterion_id!r}; known: {', '.join(sorted(known))}")
        if not isinstance(note, dict) or note.get("level") not in (0, 1, 2, 3, 4):
            raise RubricError(f"notes file {path}: {criterion_id}: level must be an integer 0..4")
        if note.get("override") and not note.get("reason"):
            raise RubricError(f"notes file {path}: {criterion_id}: an override needs a reason")
    return criteria


def _round_level(value: float) -> int:
    return int(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def auto_level(criterion: dict[str, Any], results: dict[str, dict[str, Any]],
               gates: list[dict[str, Any]], fail_cap: float = 1.0) -> tuple[int | None, list[str]]:
    """(level or None when no informing check ran, the steps that reached it)."""
    steps, weighted, weights = [], 0.0, 0.0
    for item in criterion.get("informed_by", []):
        result = results.get(item["check"])
        if result is None or result["status"] in UNSCORED_STATUSES:
            state = "not run" if result is None else result["status"]
            steps.append(f"{item['check']}: {state}, left out")
            continue
        counted = min(result["score"], fail_cap) if result["status"] == "fail" else result["score"]
        weighted += item["weight"] * counted
        weights += item["weight"]
        capped = f" (counted {counted:.2f})" if counted != result["score"] else ""
        steps.append(f"{item['check']}: {result['status']} score {result['score']:.2f}{capped} x weight {item['weight']}")
    if not weights:
        return None, steps + ["no informing check ran"]
    mean = weighted / weights
    level = _round_level(4 * mean)
    steps.append(f"weighted mean {mean:.3f} x 4 -> level {level}")
    caps = list(criterion.get("caps", []))
    caps += [{"check": g["check"], "when": g["when"], "max": g["cap"], "reason": g.get("reason")}
             for g in gates if criterion["id"] in g.get("criteria", [])]
    for cap in caps:
        result = results.get(cap["check"])
        if result is not None and result["status"] == cap["when"] and level > cap["max"]:
            level = cap["max"]
            reason = f" ({cap['reason']})" if cap.get("reason") else ""
            steps.append(f"capped at {cap['max']}: {cap['check']} {cap['when']}{reason}")
    return level, steps


def score(check_results: list[dict[str, Any]], notes: dict[str, dict[str, Any]] | None = None,
          rubric: Rubric | None = None) -> dict[str, Any]:
    """The report's `rubric` object from check results (as report.json dicts) and notes."""
    rubric = rubric or Rubric.load()
    notes = notes or {}
    results = {r["id"]: r for r in check_results}
    gates = rubric.data.get("gates", [])
    criteria_out, sections_out, pending = [], [], []
    for section in rubric.sections:
        levels = []
        for criterion in section["criteria"]:
            note = notes.get(criterion["id"], {})
            if criterion.get("source") == "interviewer":
                computed, steps = None, ["scored by the interviewer"]
            else:
                computed, steps = auto_level(criterion, results, gates, rubric.data.get("fail_score_cap", 1.0))
            level = computed
            source = "interviewer" if criterion.get("source") == "interviewer" else "auto"
            if note and (criterion.get("source") == "interviewer" or note.get("override") or computed is None):
                level, source = note["level"], "interviewer"
                if computed is not None:
                    steps.append(f"interviewer override {computed} -> {level}: {note.get('reason', '')}")
            if level is None:
                pending.append(criterion["id"])
            else:
                levels.append(level)
            criteria_out.append({
                "id": criterion["id"], "title": criterion["title"], "section": section["id"],
                "level": level, "auto_level": computed, "source": source,
                "checks": [i["check"] for i in criterion.get("informed_by", [])],
                "how": steps, "comment": note.get("comment"), "override_reason": note.get("reason"),
                "description": criterion["levels"][level] if level is not None else None,
            })
        section_score = round(sum(levels) / len(levels), 3) if levels else None
        sections_out.append({"id": section["id"], "title": section["title"], "weight": section["weight"],
                             "score": section_score})
    scored = [s for s in sections_out if s["score"] is not None]
    weight = sum(s["weight"] for s in scored)
    total = round(sum(s["score"] * s["weight"] for s in scored) / weight, 3) if weight else 0.0
    return {"criteria": criteria_out, "sections": sections_out, "total": total, "band": rubric.band(total),
            "pending_interviewer": pending}


def render_markdown(rubric: Rubric | None = None) -> str:
    """docs/EVALUATION_RUBRIC.md, generated from rubric.yaml (never edited by hand)."""
    rubric = rubric or Rubric.load()
    out = ["# Evaluation rubric", "",
           "<!-- Generated from rubric.yaml by `grade rubric-doc`. Do not edit by hand. -->", "",
           "Five weighted sections, thirteen criteria, each scored 0-4. The weighted total (0-4) gives the band:", ""]
    out += [f"- **{b['name']}**: {b['min']:.1f} or more" for b in rubric.data["bands"]]
    out += ["", f"A criterion's automatic level is the weighted mean score of its checks (a failed check counts at "
            f"most {rubric.data.get('fail_score_cap', 1.0)}) times 4, rounded half up, then capped where a key check fails.",
            "", "| section | weight | criteria |", "|---|---|---|"]
    out += [f"| {s['title']} | {s['weight']}% | {', '.join(c['title'] for c in s['criteria'])} |" for s in rubric.sections]
    out.append("")
    for section in rubric.sections:
        out += [f"## {section['title']} ({section['weight']}%)", ""]
        for criterion in section["criteria"]:
            out += [f"### {criterion['title']}", ""]
            if criterion.get("source") == "interviewer":
                out += ["Scored by the interviewer (notes file).", ""]
            else:
                checks = ", ".join(f"`{i['check']}` (x{i['weight']})" for i in criterion["informed_by"])
                out += [f"Automatic level from: {checks}.", ""]
                for cap in criterion.get("caps", []):
                    out += [f"- At most {cap['max']} when `{cap['check']}` is a {cap['when']}."]
                if criterion.get("caps"):
                    out.append("")
            out += ["| level | description |", "|---|---|"]
            out += [f"| {level} | {text} |" for level, text in sorted(criterion["levels"].items())]
            out.append("")
    for gate in rubric.data.get("gates", []):
        out += [f"Gate: when `{gate['check']}` is a {gate['when']}, {', '.join(gate['criteria'])} are capped at "
                f"{gate['cap']}: {gate['reason']}.", ""]
    return "\n".join(out).rstrip() + "\n"


def render_candidate_markdown(rubric: Rubric | None = None) -> str:
    """docs/EVALUATION_RUBRIC.md as the candidate sees it: sections, weights and criteria only.

    The check ids, level descriptions (which name the wrong answers) and bands stay with the
    interviewer (render_markdown, and the report).
    """
    rubric = rubric or Rubric.load()
    out = ["# Evaluation rubric", "",
           "<!-- Generated from rubric.yaml by `grade rubric-doc`. Do not edit by hand. -->", "",
           "Your work is assessed on the criteria below, each scored from 0 (absent) to 4 (what we would expect "
           "of a strong senior data engineer), weighted by section. Most are read from your repository (models, "
           "tests, documentation, `docs/DECISIONS.md`, the DAG and the git history of your work); the ones marked "
           "*interviewer* come from the session and the discussion.", "",
           "| section | weight | criteria |", "|---|---|---|"]
    for section in rubric.sections:
        titles = [c["title"] + (" (*interviewer*)" if c.get("source") == "interviewer" else "")
                  for c in section["criteria"]]
        out.append(f"| {section['title']} | {section['weight']}% | {', '.join(titles)} |")
    return "\n".join(out) + "\n"
