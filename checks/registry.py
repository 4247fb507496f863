"""One registry of checks. A check is a small function with a stable id; the registry,
the rubric and the report know nothing about any one check.

    @check("lint.select_star_in_mart", severity="warning")
    def select_star_in_mart(ctx: StaticContext) -> CheckResult | list[Finding]:
        "Marts list their columns instead of SELECT *."

The docstring's first line is the purpose the report shows. A check returns either a
CheckResult, or a list of Findings (empty = pass), which the registry turns into one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal

Status = Literal["pass", "fail", "error", "skipped"]
Severity = Literal["info", "warning", "error"]
Family = Literal["dbt", "result", "lint", "dag", "history", "tests"]
# When a check runs: after the canonical build, on the built marts, on a rebuild pass, on the
# snapshot's files, on its git history.
Stage = Literal["build", "result", "rebuild", "static", "history"]
# What a check must observe; an unmet need makes the result "skipped" with the reason.
Need = Literal["project", "manifest", "build", "marts", "dags", "history"]


@dataclass(frozen=True)
class Examples:
    """A failing and a passing example, each a workspace's files (path -> content): shown by
    `grade checks ID` and, for static rules, the rule's own test cases."""

    bad: Mapping[str, str]
    good: Mapping[str, str]


@dataclass
class Finding:
    """One static observation pinned to the candidate's source."""

    message: str
    file: str | None = None
    line: int | None = None
    snippet: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckResult:
    id: str
    status: Status
    score: float
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: Severity = "error"
    purpose: str = ""
    engine_fault: str | None = None  # set by run_check when the failure looks like the engine's (grader.engine_faults)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "score": round(float(self.score), 4),
            "message": self.message,
            "severity": self.severity,
            "purpose": self.purpose,
            "evidence": self.evidence,
            "engine_fault": self.engine_fault,
        }


@dataclass(frozen=True)
class CheckSpec:
    id: str
    family: str
    severity: Severity
    purpose: str  # the title: one line the report shows
    func: Callable[..., Any]
    stage: Stage | None = None
    needs: tuple[Need, ...] = ()
    why: str = ""
    fix: str = ""
    examples: Examples | None = None


REGISTRY: dict[str, CheckSpec] = {}


def check(check_id: str, *, severity: Severity = "error", stage: Stage | None = None, needs: tuple[Need, ...] = (),
          title: str = "", why: str = "", fix: str = "",
          examples: Examples | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a check function under a stable id (family = the part before the first dot).

    The id is written here only: `run_check` stamps it on the result. `title` defaults to the
    docstring's first line."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if check_id in REGISTRY:
            raise ValueError(f"check id {check_id!r} registered twice")
        purpose = title or ((func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else "")
        REGISTRY[check_id] = CheckSpec(check_id, check_id.split(".", 1)[0], severity, purpose, func,
                                       stage=stage, needs=tuple(needs), why=why, fix=fix, examples=examples)
        return func

    return decorate


def result(status: Status, message: str, *, score: float | None = None,
           evidence: dict[str, Any] | None = None) -> CheckResult:
    """The one way a check builds its result; the runner stamps the check's id. `score`
    defaults to 1 for a pass and 0 otherwise, and is clamped to 0..1."""
    value = (1.0 if status == "pass" else 0.0) if score is None else min(max(float(score), 0.0), 1.0)
    return CheckResult("", status, value, message, evidence=dict(evidence or {}))


class CheckSkipped(Exception):
    """Raised inside a check when the grader cannot observe what it needs (e.g. the grading's
    time limit was spent): the result is `skipped` with this reason, never the candidate's fail."""


class GraderFault(Exception):
    """Raised by a check when the grader itself failed (its warehouse went away, its own
    files are missing), so the error says nothing about the candidate's work."""


def fault_of(exc: BaseException) -> str:
    """"grader" for failures of the grader's own machinery, "candidate" for anything a
    check raised while reading the candidate's input (deep folders, odd encodings, huge
    SQL): crashing a check must never help a candidate, so those count as failed."""
    if isinstance(exc, (GraderFault, ConnectionError, TimeoutError)):
        return "grader"
    module = type(exc).__module__ or ""
    if module.startswith(("requests", "urllib3")) and "Connection" in type(exc).__name__:
        return "grader"
    return "candidate"


def run_check(spec: CheckSpec, ctx: Any) -> CheckResult:
    """Run one check; an exception inside a check is an `error` result, never a crash.
    Its evidence says whose fault it was (the rubric counts a candidate-provoked error as
    failed and marks the scoring provisional for a grader fault)."""
    try:
        outcome = spec.func(ctx)
    except CheckSkipped as skipped:
        return CheckResult(spec.id, "skipped", 0.0, str(skipped), severity=spec.severity, purpose=spec.purpose)
    except Exception as exc:  # a bug in one check must not lose the report
        fault = fault_of(exc)
        return CheckResult(spec.id, "error", 0.0, f"check crashed: {type(exc).__name__}: {exc}",
                           evidence={"fault": fault, "error": f"{type(exc).__name__}: {str(exc)[:500]}"},
                           severity=spec.severity, purpose=spec.purpose)
    if isinstance(outcome, CheckResult):
        from grader.engine_faults import check_fault

        outcome.id = spec.id  # written once, in the decorator
        outcome.severity = spec.severity
        outcome.purpose = outcome.purpose or spec.purpose
        outcome.engine_fault = check_fault(outcome.status, outcome.message, outcome.evidence)
        return outcome
    findings: list[Finding] = list(outcome or [])
    if not findings:
        return CheckResult(spec.id, "pass", 1.0, "no findings", severity=spec.severity, purpose=spec.purpose)
    return CheckResult(
        spec.id, "fail", 0.0, f"{len(findings)} finding(s): {findings[0].message}",
        evidence={"findings": [f.to_json() for f in findings]},
        severity=spec.severity, purpose=spec.purpose,
    )


def specs(family: str | None = None) -> list[CheckSpec]:
    return sorted((s for s in REGISTRY.values() if family is None or s.family == family), key=lambda s: s.id)
