"""The catalogue of checks. A check is declared once, with everything a reader, the runner,
the rubric and the report need to know about it:

    @check("lint.mart_columns_explicit", stage="static", needs=("project",), severity="warning",
           title="Marts list their columns", why="...", fix="...", examples=Examples(bad={...}, good={...}))
    def mart_columns_explicit(ctx) -> list[Finding] | CheckResult: ...

The id is written there only: `run_check` stamps it on the result, and turns a need the
grading did not meet (no manifest, no git history...) into a `skipped` result with the reason.
A check returns Findings (none = pass) or a result built with `result()`. Which checks run
at each stage, the `--passes` choices, the report's trap list and `grade checks` all read
this catalogue; rubric.yaml is validated against it when loaded (grader.rubric).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "error", "skipped"]
Severity = Literal["info", "warning", "error"]
# When a check runs, in this order: after the canonical build, on the built marts, on a rebuild
# pass, on the snapshot's files, on its git history.
Stage = Literal["build", "result", "rebuild", "static", "history"]
STAGES: tuple[Stage, ...] = ("build", "result", "rebuild", "static", "history")
# What a check must observe; an unmet need makes the result "skipped" with the reason. The
# context a check is run on says which needs it cannot meet: `ctx.unmet_needs()` returns
# {need: why not}, read by run_check (a context without that method meets every need).
Need = Literal["project", "manifest", "build", "marts", "dags", "history"]

# Lint and DAG ids name the virtue a check looks for, so that "dag.retries: pass" reads right.
# Old id -> new id: report.json keeps the old id beside the new one (`legacy_id`) for one
# release, and reports written before the rename are read with their old ids mapped.
RENAMED_IDS: dict[str, str] = {
    "lint.select_star_in_mart": "lint.mart_columns_explicit",
    "lint.hardcoded_relation": "lint.relations_via_ref",
    "lint.mart_reads_source": "lint.marts_build_on_staging",
    "lint.staging_joins": "lint.staging_single_source",
    "lint.mart_missing_pk_test": "lint.mart_pk_tested",
    "lint.undocumented_models": "lint.models_documented",
    "lint.undocumented_columns": "lint.columns_documented",
    "lint.not_analysed": "lint.models_analysed",
    "dag.parse_error": "dag.parses",
    "dag.no_schedule": "dag.scheduled",
    "dag.catchup_implicit": "dag.catchup_explicit",
    "dag.no_retries": "dag.retries",
    "dag.no_alerting": "dag.alerting",
    "dag.airbyte_simulated": "dag.airbyte_triggered",
    "dag.dbt_without_tests": "dag.dbt_quality_gate",
    "dag.secrets_in_code": "dag.secrets_outside_code",
    "dag.parse_time_work": "dag.light_parse",
    "dag.non_idempotent": "dag.uses_data_interval",
    "dag.no_doc_md": "dag.doc_md",
    "dag.airflow_import_errors": "dag.airflow_loads",
}
LEGACY_IDS: dict[str, str] = {new: old for old, new in RENAMED_IDS.items()}


def current_id(check_id: str) -> str:
    """The id a check has now (a renamed check's old id maps to its new one)."""
    return RENAMED_IDS.get(check_id, check_id)


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
        out = {
            "id": self.id,
            "status": self.status,
            "score": round(float(self.score), 4),
            "message": self.message,
            "severity": self.severity,
            "purpose": self.purpose,
            "evidence": self.evidence,
            "engine_fault": self.engine_fault,
        }
        if self.id in LEGACY_IDS:
            out["legacy_id"] = LEGACY_IDS[self.id]
        return out


@dataclass(frozen=True)
class CheckSpec:
    """One entry of the catalogue."""

    id: str
    stage: Stage
    func: Callable[..., Any]
    title: str  # one line: what passing means; the report's purpose line
    severity: Severity = "error"
    needs: tuple[Need, ...] = ()
    why: str = ""
    fix: str = ""
    examples: Examples | None = None
    trap: str | None = None  # the exercise's planted trap this check judges, as the report names it

    @property
    def family(self) -> str:
        return self.id.split(".", 1)[0]


REGISTRY: dict[str, CheckSpec] = {}


def check(check_id: str, *, stage: Stage, severity: Severity = "error", needs: tuple[Need, ...] = (),
          title: str = "", why: str = "", fix: str = "", examples: Examples | None = None,
          trap: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a check in the catalogue (its family is the part of the id before the first dot).
    `title` defaults to the docstring's first line."""
    if check_id in RENAMED_IDS:
        raise ValueError(f"check id {check_id!r} was renamed {RENAMED_IDS[check_id]!r}: declare the new id")
    if stage not in STAGES:
        raise ValueError(f"check {check_id}: unknown stage {stage!r}; one of {', '.join(STAGES)}")

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if check_id in REGISTRY:
            raise ValueError(f"check id {check_id!r} registered twice")
        docstring = (func.__doc__ or "").strip()
        REGISTRY[check_id] = CheckSpec(check_id, stage, func, title or docstring.split("\n", 1)[0], severity,
                                       tuple(needs), why, fix, examples, trap)
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
    """Run one check and stamp its id. A declared need the context cannot meet makes it
    `skipped` with the reason, without running it; an exception inside a check is an `error`
    result, never a crash, whose evidence says whose fault it was (the rubric counts a
    candidate-provoked error as failed and marks the scoring provisional for a grader fault)."""
    unmet: Mapping[str, str] = ctx.unmet_needs() if hasattr(ctx, "unmet_needs") else {}
    reasons = [unmet[need] for need in spec.needs if need in unmet]
    try:
        if reasons:
            raise CheckSkipped("; ".join(reasons))
        outcome = spec.func(ctx)
    except CheckSkipped as skipped:
        return CheckResult(spec.id, "skipped", 0.0, str(skipped), severity=spec.severity, purpose=spec.title)
    except Exception as exc:  # a bug in one check must not lose the report
        fault = fault_of(exc)
        return CheckResult(spec.id, "error", 0.0, f"check crashed: {type(exc).__name__}: {exc}",
                           evidence={"fault": fault, "error": f"{type(exc).__name__}: {str(exc)[:500]}"},
                           severity=spec.severity, purpose=spec.title)
    if isinstance(outcome, CheckResult):
        from grader.engine_faults import check_fault

        outcome.id = spec.id  # written once, in the catalogue
        outcome.severity = spec.severity
        outcome.purpose = outcome.purpose or spec.title
        outcome.engine_fault = check_fault(outcome.status, outcome.message, outcome.evidence)
        return outcome
    findings: list[Finding] = list(outcome or [])
    if not findings:
        return CheckResult(spec.id, "pass", 1.0, "no findings", severity=spec.severity, purpose=spec.title)
    return CheckResult(
        spec.id, "fail", 0.0, f"{len(findings)} finding(s): {findings[0].message}",
        evidence={"findings": [f.to_json() for f in findings]},
        severity=spec.severity, purpose=spec.title,
    )


def specs(family: str | None = None, stage: Stage | None = None) -> list[CheckSpec]:
    """The catalogue's checks, by id (optionally of one family or stage)."""
    return sorted((s for s in REGISTRY.values() if family in (None, s.family) and stage in (None, s.stage)),
                  key=lambda s: s.id)


def run_order(stage: Stage) -> list[CheckSpec]:
    """A stage's checks in the order their module declares them: the order the pipeline runs them."""
    return [s for s in REGISTRY.values() if s.stage == stage]
