"""Turn check results into rubric levels, section scores, a weighted total and a band.

rubric.yaml is the one source; nothing here knows any check by name. A level is only
reached when the check results its description rests on are there (`requires`), a
criterion whose primary evidence could not run is "not observed" (0 in the total), and a
project that delivered nothing lands at most in the delivery gate's band. The interviewer's
notes file gives levels for criteria no program can judge and may override automatic
levels and the delivery gate, each with a reason the report shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TypeGuard

import yaml

from checks.registry import RENAMED_IDS, current_id
from grader.resources import RUBRIC_PATH

WEAK_LEVEL = 2  # a criterion at or below this level gets debrief questions


class RubricError(ValueError):
    """rubric.yaml or a notes file is malformed; the message says where."""


@dataclass(frozen=True)
class Rubric:
    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path | None = None) -> Rubric:
        """The rubric, validated (its shape, and its check ids against the catalogue)."""
        data = yaml.safe_load((path or RUBRIC_PATH).read_text(encoding="utf-8"))
        rubric = cls(data)
        rubric.validate()
        rubric.validate_against_catalogue()
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
            cid = criterion["id"]
            levels = criterion.get("levels", {})
            if sorted(int(k) for k in levels) != [0, 1, 2, 3, 4]:
                raise RubricError(f"rubric.yaml: criterion {cid} needs level descriptions 0..4")
            if not 1 <= len(criterion.get("debrief", [])) <= 3:
                raise RubricError(f"rubric.yaml: criterion {cid} needs 1 to 3 debrief questions")
            if criterion.get("source") == "interviewer":
                if not criterion.get("watch_for"):
                    raise RubricError(f"rubric.yaml: interviewer-scored criterion {cid} needs `watch_for`")
                continue
            if not criterion.get("informed_by"):
                raise RubricError(f"rubric.yaml: criterion {cid} has no checks and is not interviewer-scored")
            informing = {i["check"] for i in criterion["informed_by"]}
            if not criterion.get("primary") or not set(criterion["primary"]) <= informing:
                raise RubricError(f"rubric.yaml: criterion {cid} needs `primary` checks among its informed_by")
            if not criterion.get("by_hand"):
                raise RubricError(f"rubric.yaml: criterion {cid} needs `by_hand` (what to look at when not observed)")
            requires = criterion.get("requires", {})
            if sorted(int(k) for k in requires) != [1, 2, 3, 4]:
                raise RubricError(f"rubric.yaml: criterion {cid} needs `requires` for levels 1..4: "
                                  "a level claims only what its checks established")
            for level, reqs in requires.items():
                for req in reqs:
                    _validate_requirement(req, f"criterion {cid} level {level}")

    def validate_against_catalogue(self) -> None:
        """Every check id named here is in the catalogue, and every check of the catalogue is used
        by a criterion, a gate or `report_only` (a check nobody reads is a mistake, not a choice)."""
        from checks.catalogue import REGISTRY  # loads every check module

        if not isinstance(self.data.get("report_only") or {}, dict):
            raise RubricError("rubric.yaml: report_only must map check ids to why they are not scored")
        named = set(self.used_checks()) | set(self.data.get("check_questions", {})) | set(self.report_only)
        unknown = sorted(named - set(REGISTRY))
        if unknown:
            hints = [f"{i} (renamed {RENAMED_IDS[i]})" if i in RENAMED_IDS else i for i in unknown]
            raise RubricError(f"rubric.yaml names checks the catalogue does not have: {', '.join(hints)} "
                              "(`grade checks` lists them)")
        orphans = sorted(set(REGISTRY) - set(self.used_checks()) - set(self.report_only))
        if orphans:
            raise RubricError(f"rubric.yaml: no criterion, gate or `report_only` entry uses {', '.join(orphans)}: "
                              "score each, or list it under report_only with the reason")
        scored = sorted(set(self.used_checks()) & set(self.report_only))
        if scored:
            raise RubricError(f"rubric.yaml: {', '.join(scored)} under report_only, but a criterion or gate uses it")

    @property
    def report_only(self) -> dict[str, str]:
        """Checks shown in the report and scored by no criterion: {id: why}."""
        return dict(self.data.get("report_only") or {})

    def used_checks(self) -> Iterator[str]:
        """Every check id a criterion (informed_by, primary, caps, requires), a gate or the delivery gate reads."""
        for _, criterion in self.criteria():
            yield from (i["check"] for i in criterion.get("informed_by", []))
            yield from criterion.get("primary", [])
            yield from (cap["check"] for cap in criterion.get("caps", []))
            for requirements in criterion.get("requires", {}).values():
                for requirement in requirements:
                    yield from _required_checks(requirement)
        yield from (gate["check"] for gate in self.data.get("gates", []))
        yield from (self.data.get("delivery_gate") or {}).get("delivered_when_any_scores", [])

    def band(self, total: float) -> str:
        for band in sorted(self.data["bands"], key=lambda b: -b["min"]):
            if total >= band["min"]:
                return band["name"]
        return self.data["bands"][-1]["name"]

    def band_ceiling(self, name: str) -> float:
        """The highest total still inside band `name` (two decimals, as the report shows totals)."""
        mins = sorted(b["min"] for b in self.data["bands"])
        own = next(b["min"] for b in self.data["bands"] if b["name"] == name)
        above = [m for m in mins if m > own]
        return round(above[0] - 0.01, 2) if above else 4.0

    def check_questions(self, check_id: str) -> list[str]:
        """Follow-up questions for a failed check: its own, else those of the first criterion it informs."""
        own = self.data.get("check_questions", {}).get(check_id)
        if own:
            return list(own)[:3]
        for _, criterion in self.criteria():
            if any(i["check"] == check_id for i in criterion.get("informed_by", [])):
                return list(criterion["debrief"])[:3]
        return []


_REQUIREMENT_KEYS = ({"check"}, {"check", "min_score"}, {"check", "caught"}, {"check", "caught_kind", "min"},
                     {"check", "evidence_any"}, {"any_of"}, {"all_of"}, {"at_least", "of"})


def _required_checks(req: dict[str, Any]) -> Iterator[str]:
    if "check" in req:
        yield req["check"]
    for inner in req.get("any_of", []) + req.get("all_of", []) + req.get("of", []):
        yield from _required_checks(inner)


def _validate_requirement(req: Any, where: str) -> None:
    if not isinstance(req, dict) or set(req) not in _REQUIREMENT_KEYS:
        raise RubricError(f"rubric.yaml: {where}: unknown requirement {req!r}")
    for inner in req.get("any_of", []) + req.get("all_of", []) + req.get("of", []):
        _validate_requirement(inner, where)


def load_notes(path: Path | None) -> dict[str, Any]:
    """The interviewer's notes: {criteria: {id: {level, comment, override, reason}}, delivery_override: {reason}}."""
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
    delivery = data.get("delivery_override")
    if delivery is not None and not (isinstance(delivery, dict) and str(delivery.get("reason") or "").strip()):
        raise RubricError(f"notes file {path}: delivery_override needs a reason: `delivery_override: {{reason: ...}}`")
    return {"criteria": criteria, "delivery_override": delivery}


def _round_level(value: float) -> int:
    return int(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- what a check result counts for ------------------------------------------------------

def grader_fault(result: dict[str, Any]) -> bool:
    """An error that is the grader's own fault (not provoked by the candidate's input)."""
    return result["status"] == "error" and (result.get("evidence") or {}).get("fault") == "grader"


def ran(result: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
    """The check observed something: passed, failed, or errored on the candidate's input."""
    return result is not None and (result["status"] in ("pass", "fail") or
                                   (result["status"] == "error" and not grader_fault(result)))


def observed(result: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
    """The check saw the thing it is about: it ran, and did not fail only because the mart
    it reads is absent (no manifest, no such model, no table)."""
    return ran(result) and (result.get("evidence") or {}).get("observed", True) is not False


def counted_score(result: dict[str, Any], fail_cap: float) -> float:
    """A check's contribution to a mean: 0 for an inherited pass or an error, capped for a failure."""
    if result.get("inherited") or result["status"] == "error":
        return 0.0
    return min(result["score"], fail_cap) if result["status"] == "fail" else result["score"]


def _own(result: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
    """Ran on the candidate's own work (not only on the unchanged starter)."""
    return ran(result) and not result.get("inherited") and result["status"] != "error"


def _mutations(result: dict[str, Any]) -> list[dict[str, Any]]:
    return list((result.get("evidence") or {}).get("mutations") or [])


def requirement_holds(req: dict[str, Any], results: dict[str, dict[str, Any]]) -> tuple[bool, list[dict[str, Any]]]:
    """(holds, the observed findings that establish it)."""
    if "any_of" in req or "all_of" in req or "of" in req:
        options = req.get("any_of") or req.get("all_of") or req["of"]
        needed = 1 if "any_of" in req else len(options) if "all_of" in req else int(req["at_least"])
        held = [found for ok, found in (requirement_holds(r, results) for r in options) if ok]
        return len(held) >= needed, [f for found in held for f in found]
    result = results.get(req["check"])
    if not _own(result):
        return False, []
    if "caught" in req:
        hit = [m for m in _mutations(result) if m.get("id") == req["caught"] and m.get("caught")]
        ok = bool(hit)
        shown = f"caught planted defect {req['caught']}" + (f" (by {', '.join(hit[0].get('caught_by', [])[:3])})"
                                                            if hit and hit[0].get("caught_by") else "")
    elif "caught_kind" in req:
        hits = [m["id"] for m in _mutations(result) if m.get("kind") == req["caught_kind"] and m.get("caught")]
        ok = len(hits) >= int(req["min"])
        shown = f"{len(hits)} {req['caught_kind']} defect(s) caught: {', '.join(hits) or 'none'}"
    elif "evidence_any" in req:
        spec = req["evidence_any"]
        items = (result.get("evidence") or {}).get(spec["list"]) or []
        hits = [i for i in items if isinstance(i, dict) and i.get(spec["key"])]
        ok = bool(hits)
        shown = f"{len(hits)} of {len(items)} {spec['list'].replace('_', ' ')} set {spec['key']}"
    elif "min_score" in req:
        ok = result["score"] >= float(req["min_score"])
        shown = result.get("message", "")
    else:
        ok = result["status"] == "pass"
        shown = result.get("message", "")
    if not ok:
        return False, []
    return True, [{"check": req["check"], "status": result["status"], "score": result["score"],
                   "finding": str(shown)[:300]}]


def describe_requirement(req: dict[str, Any]) -> str:
    if "any_of" in req:
        return "one of: " + "; ".join(describe_requirement(r) for r in req["any_of"])
    if "all_of" in req:
        return "all of: " + "; ".join(describe_requirement(r) for r in req["all_of"])
    if "of" in req:
        return f"at least {req['at_least']} of: " + "; ".join(describe_requirement(r) for r in req["of"])
    check = f"`{req['check']}`"
    if "caught" in req:
        return f"{check} shows the planted defect {req['caught']} caught"
    if "caught_kind" in req:
        return f"{check} shows at least {req['min']} {req['caught_kind']} defect(s) caught"
    if "evidence_any" in req:
        return f"{check} lists {req['evidence_any']['list']} with {req['evidence_any']['key']} set"
    if "min_score" in req:
        floor = f" with score >= {req['min_score']}" if req["min_score"] else ""
        return f"{check} ran on the candidate's work{floor}"
    return f"{check} passes"


def supported_level(criterion: dict[str, Any], results: dict[str, dict[str, Any]],
                    ceiling: int) -> tuple[int, list[dict[str, Any]], str | None]:
    """The highest level <= ceiling whose requirements (and those of every level below) hold,
    the findings that earned it, and the first unmet requirement above it."""
    earned: list[dict[str, Any]] = []
    for level in range(1, ceiling + 1):
        found_here, missing = [], None
        for req in criterion["requires"][level]:
            ok, found = requirement_holds(req, results)
            if not ok:
                missing = describe_requirement(req)
                break
            found_here += [{**f, "level": level} for f in found]
        if missing:
            return level - 1, earned, f"level {level} needs {missing}"
        earned += found_here
    return ceiling, earned, None


def auto_level(criterion: dict[str, Any], results: dict[str, dict[str, Any]],
               gates: list[dict[str, Any]], fail_cap: float = 1.0) -> dict[str, Any]:
    """The automatic verdict on one criterion: level (None when not observed), steps, evidence."""
    steps, weighted, weights, ran_weight = [], 0.0, 0.0, 0.0
    informed = criterion.get("informed_by", [])
    for item in informed:
        result = results.get(item["check"])
        if not ran(result):
            state = "not run" if result is None else ("grader error" if grader_fault(result) else result["status"])
            steps.append(f"{item['check']}: {state}, left out")
            continue
        ran_weight += item["weight"] if observed(result) else 0
        counted = counted_score(result, fail_cap)
        weighted += item["weight"] * counted
        weights += item["weight"]
        why = (" (inherited from the starter: no credit)" if result.get("inherited") and result["status"] == "pass"
               else " (errored on the candidate's input: counted as failed)" if result["status"] == "error"
               else " (its mart is absent: counted as failed, not as evidence)" if not observed(result)
               else f" (counted {counted:.2f})" if counted != result["score"] else "")
        steps.append(f"{item['check']}: {result['status']} score {result['score']:.2f}{why} x weight {item['weight']}")
    total_weight = sum(i["weight"] for i in informed)
    coverage = round(ran_weight / total_weight, 3) if total_weight else 0.0
    unobserved = [c for c in criterion.get("primary", []) if not observed(results.get(c))]
    verdict: dict[str, Any] = {"coverage": coverage, "earned_by": [], "observed": not unobserved,
                               "not_observed_reason": None, "stopped_at": None}
    if unobserved:
        reasons = [f"{c}: {_why_not_run(results.get(c))}" for c in unobserved]
        verdict["not_observed_reason"] = "primary evidence did not run (" + "; ".join(reasons) + ")"
        steps.append(f"not observed: {verdict['not_observed_reason']}; counts 0 in the total")
        return {**verdict, "level": None, "steps": steps}
    mean = weighted / weights if weights else 0.0
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
    supported, earned, missing = supported_level(criterion, results, level)
    if supported < level:
        steps.append(f"stopped at {supported}: {missing}")
        verdict["stopped_at"] = missing
    verdict["earned_by"] = earned
    return {**verdict, "level": supported, "steps": steps}


def _why_not_run(result: dict[str, Any] | None) -> str:
    if result is None:
        return "not run"
    detail = (result.get("message") or "").splitlines()[0][:160] if result.get("message") else ""
    return f"{result['status']}" + (f" ({detail})" if detail else "")


def delivered(rubric: Rubric, results: dict[str, dict[str, Any]]) -> bool:
    """Some result check scored above 0: dbt parsed and at least one mart was built and read."""
    gate = rubric.data.get("delivery_gate")
    if not gate:
        return True
    return any((results.get(c) or {}).get("score", 0) > 0 for c in gate["delivered_when_any_scores"])


def score(check_results: list[dict[str, Any]], notes: dict[str, Any] | None = None,
          rubric: Rubric | None = None) -> dict[str, Any]:
    """The report's `rubric` object from check results (as report.json dicts) and notes."""
    rubric = rubric or Rubric.load()
    notes = notes or {}
    criterion_notes = notes.get("criteria", {})
    results = {current_id(r["id"]): r for r in check_results}  # a report from before a rename reads the same
    gates = rubric.data.get("gates", [])
    criteria_out, sections_out, pending = [], [], []
    for section in rubric.sections:
        levels: list[int] = []
        for criterion in section["criteria"]:
            note = criterion_notes.get(criterion["id"], {})
            interviewer = criterion.get("source") == "interviewer"
            verdict: dict[str, Any]
            if interviewer:
                verdict = {"level": None, "steps": ["scored by the interviewer"], "coverage": None, "earned_by": [],
                           "observed": None, "not_observed_reason": None, "stopped_at": None}
            else:
                verdict = auto_level(criterion, results, gates, rubric.data.get("fail_score_cap", 1.0))
            computed = verdict["level"]
            steps = verdict["steps"]
            level, source = computed, "interviewer" if interviewer else "auto"
            if note and (interviewer or note.get("override") or computed is None):
                level, source = note["level"], "interviewer"
                why = note.get("reason") or note.get("comment") or "no reason given"
                if computed is not None:
                    steps.append(f"interviewer override {computed} -> {level}: {why}")
                elif not interviewer:
                    steps.append(f"set by the interviewer ({level}) although not observed: {why}")
            if level is None and interviewer:
                pending.append(criterion["id"])
            else:
                levels.append(level or 0)
            criteria_out.append({
                "id": criterion["id"], "title": criterion["title"], "section": section["id"],
                "level": level, "auto_level": computed, "source": source,
                "checks": [i["check"] for i in criterion.get("informed_by", [])],
                "primary": list(criterion.get("primary", [])),
                "observed": verdict["observed"], "not_observed_reason": verdict["not_observed_reason"],
                "by_hand": criterion.get("by_hand") if verdict["observed"] is False else None,
                "coverage": verdict["coverage"], "earned_by": verdict["earned_by"], "stopped_at": verdict["stopped_at"],
                "how": steps, "comment": note.get("comment"), "override_reason": note.get("reason"),
                "description": criterion["levels"][level] if level is not None else None,
            })
        section_score = round(sum(levels) / len(levels), 3) if levels else None
        sections_out.append({"id": section["id"], "title": section["title"], "weight": section["weight"],
                             "score": section_score})
    scored = [s for s in sections_out if s["score"] is not None]
    weight = sum(s["weight"] for s in scored)
    total = round(sum(s["score"] * s["weight"] for s in scored) / weight, 3) if weight else 0.0
    delivery = _delivery_gate(rubric, results, notes, total)
    total = delivery.pop("total")
    return {"criteria": criteria_out, "sections": sections_out, "total": total, "band": rubric.band(total),
            "pending_interviewer": pending, "delivery": delivery}


def _delivery_gate(rubric: Rubric, results: dict[str, dict[str, Any]], notes: dict[str, Any],
                   total: float) -> dict[str, Any]:
    gate = rubric.data.get("delivery_gate")
    if not gate or delivered(rubric, results):
        return {"delivered": True, "capped": False, "override": None, "total": total}
    ceiling = rubric.band_ceiling(gate["max_band"])
    override = (notes.get("delivery_override") or {}).get("reason")
    out = {"delivered": False, "reason": gate["reason"], "max_band": gate["max_band"],
           "uncapped_total": total, "override": override}
    if override:
        return {**out, "capped": False, "total": total}
    return {**out, "capped": total > ceiling, "total": min(total, ceiling)}


def debrief(rubric_out: dict[str, Any], checks: list[dict[str, Any]],
            rubric: Rubric | None = None) -> list[dict[str, Any]]:
    """Follow-up questions for the panel: per failed check (traps first) and per weak or
    unobserved criterion, and what to watch for on interviewer-scored criteria."""
    rubric = rubric or Rubric.load()
    by_id = {c["id"]: c for _, c in rubric.criteria()}
    items = []
    results_first = (rubric.data.get("delivery_gate") or {}).get("delivered_when_any_scores", [])
    for check in sorted(checks, key=lambda c: (c["id"] not in results_first, c["id"])):
        if check["status"] == "fail" or (check["status"] == "error" and not grader_fault(check)):
            questions = rubric.check_questions(current_id(check["id"]))
            if questions:
                items.append({"kind": "check", "id": check["id"], "title": check["id"],
                              "why": (check.get("message") or "")[:300], "questions": questions})
    for criterion in rubric_out["criteria"]:
        spec = by_id[criterion["id"]]
        if spec.get("source") == "interviewer":
            items.append({"kind": "interviewer", "id": criterion["id"], "title": criterion["title"],
                          "why": "scored by the interviewer", "questions": list(spec["debrief"]),
                          "watch_for": list(spec["watch_for"])})
        elif criterion["observed"] is False:
            items.append({"kind": "criterion", "id": criterion["id"], "title": criterion["title"],
                          "why": f"not observed: {criterion['not_observed_reason']}. By hand: {spec['by_hand']}",
                          "questions": list(spec["debrief"])})
        elif criterion["level"] is not None and criterion["level"] <= WEAK_LEVEL:
            items.append({"kind": "criterion", "id": criterion["id"], "title": criterion["title"],
                          "why": f"level {criterion['level']}/4" + (f"; {criterion['stopped_at']}"
                                                                    if criterion.get("stopped_at") else ""),
                          "questions": list(spec["debrief"])})
    return items


def render_markdown(rubric: Rubric | None = None) -> str:
    """docs/rubric.md, the hiring panel's rubric, generated from rubric.yaml (never edited by
    hand): check ids, level descriptions and how each level is established; it links to the
    catalogue of checks (docs/checks.md). Not for candidates (render_candidate_markdown is theirs)."""
    rubric = rubric or Rubric.load()
    out = ["# Evaluation rubric (for the hiring panel)", "",
           "<!-- Generated from rubric.yaml by `grade checks --doc`. Do not edit by hand. -->", "",
           "Five weighted sections, thirteen criteria, each scored 0-4. The weighted total (0-4) gives the band:", ""]
    out += [f"- **{b['name']}**: {b['min']:.1f} or more" for b in rubric.data["bands"]]
    out += ["", "How an automatic level is reached:", "",
            "1. A criterion is *observed* only when its primary checks ran on the candidate's work; otherwise it is "
            "marked \"not observed\" and counts 0 (the interviewer may set it from what they saw, with a reason).",
            f"2. The weighted mean score of its checks (a failed check counts at most "
            f"{rubric.data.get('fail_score_cap', 1.0)}, a check that errored on the candidate's input counts 0, and "
            "anything that passes only on the unchanged starter files counts 0) times 4, rounded half up, then capped "
            "where a key check fails.",
            "3. Each level is reached only when the checks listed under it (and under every level below) establish "
            "what its description says; otherwise the criterion stops at the highest level whose claims hold.", "",
            "What each check verifies, why it matters and how to fix it: [docs/checks.md](checks.md) "
            "(`grade checks ID`).", ""]
    gate = rubric.data.get("delivery_gate")
    if gate:
        out += [f"Delivery gate: when {gate['reason']}, the band is at most {gate['max_band']}, "
                "whatever the other signals say, unless the interviewer's notes override it with a reason.", ""]
    out += ["| section | weight | criteria |", "|---|---|---|"]
    out += [f"| {s['title']} | {s['weight']}% | {', '.join(c['title'] for c in s['criteria'])} |" for s in rubric.sections]
    out.append("")
    for section in rubric.sections:
        out += [f"## {section['title']} ({section['weight']}%)", ""]
        for criterion in section["criteria"]:
            out += [f"### {criterion['title']}", ""]
            if criterion.get("source") == "interviewer":
                out += ["Scored by the interviewer (notes file).", "",
                        "| level | description |", "|---|---|"]
                out += [f"| {level} | {text} |" for level, text in sorted(criterion["levels"].items())]
                out.append("")
                continue
            checks = ", ".join(f"`{i['check']}` (x{i['weight']})" for i in criterion["informed_by"])
            primary = ", ".join(f"`{c}`" for c in criterion["primary"])
            out += [f"Automatic level from: {checks}. Observed only when {primary} ran.", ""]
            for cap in criterion.get("caps", []):
                out += [f"- At most {cap['max']} when `{cap['check']}` is a {cap['when']}."]
            if criterion.get("caps"):
                out.append("")
            out += ["| level | description | established by |", "|---|---|---|"]
            for level, text in sorted(criterion["levels"].items()):
                reqs = criterion["requires"].get(level, [])
                established = "; ".join(describe_requirement(r) for r in reqs) if reqs else ""
                out += [f"| {level} | {text} | {established} |"]
            out.append("")
    for gate in rubric.data.get("gates", []):
        out += [f"Gate: when `{gate['check']}` is a {gate['when']}, {', '.join(gate['criteria'])} are capped at "
                f"{gate['cap']}: {gate['reason']}.", ""]
    if rubric.report_only:
        out += ["Shown in the report, scored by no criterion:", ""]
        out += [f"- `{check_id}`: {why}" for check_id, why in sorted(rubric.report_only.items())]
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


def unsupported_claims(report: dict[str, Any], rubric: Rubric | None = None) -> list[str]:
    """Levels a report shows without the check results their requirements name (empty: every
    sentence about the candidate stands on its evidence). Calibration and the tests use it."""
    rubric = rubric or Rubric.load()
    specs = {c["id"]: c for _, c in rubric.criteria()}
    checks = {current_id(c["id"]): c for c in report["checks"]}
    problems = []
    for criterion in report["rubric"]["criteria"]:
        spec, level = specs[criterion["id"]], criterion["level"]
        if criterion["source"] != "auto":
            continue
        if criterion["observed"] is False:
            ran = [c for c in spec["primary"] if checks.get(c, {}).get("status") in ("pass", "fail")
                   and (checks[c].get("evidence") or {}).get("observed") is not False]
            if level is not None or len(ran) == len(spec["primary"]):
                problems.append(f"{criterion['id']}: 'not observed' although its primary checks ran")
            continue
        if criterion["description"] != spec["levels"][level]:
            problems.append(f"{criterion['id']}: description is not level {level}'s")
        for needed in range(1, level + 1):
            earned = [e for e in criterion["earned_by"] if e["level"] == needed]
            if not earned:
                problems.append(f"{criterion['id']}: level {needed} shown without findings")
            for e in earned:
                check = checks.get(e["check"])
                if check is None or check["status"] != e["status"] or check.get("inherited"):
                    problems.append(f"{criterion['id']}: level {needed} rests on {e['check']}, which did not show that")
    return problems
