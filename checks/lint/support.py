"""What the lint rules share: the per-model result, the verdicts for a project with no marts
or with nothing of the candidate's own, and the example workspace's common files."""

from __future__ import annotations

from typing import Any

from checks.dbt_project import candidate_models, marts, models
from checks.registry import CheckResult, Finding, result
from checks.static_context import StaticContext

STAGING = "dbt/models/staging"
MARTS = "dbt/models/marts"
# A staging model over the handout's raw.orders, as example workspaces use it.
STG_ORDERS = (
    "select\n    id as order_id,\n    buyer_id,\n    status,\n    currency,\n    total_amount,\n"
    "    created_at\nfrom {{ source('raw', 'orders') }}\n"
)


def per_model_result(findings: list[Finding], total: int, what: str, extra: dict[str, Any] | None = None) -> CheckResult:
    """Pass without findings; else fail, scored by the share of models without findings."""
    failing = len({found.file for found in findings})
    score = 1.0 if total == 0 else (total - failing) / total
    evidence: dict[str, Any] = {"models_checked": total, "findings": [found.to_json() for found in findings],
                                **(extra or {})}
    if not findings:
        return result("pass", f"no findings ({total} {what} checked)", evidence=evidence)
    return result("fail", f"{len(findings)} finding(s): {findings[0].message}", score=score, evidence=evidence)


def no_marts(ctx: StaticContext) -> CheckResult | None:
    """A failing result when the project has no mart at all (a rule about marts cannot pass)."""
    if marts(ctx):
        return None
    return result("fail", "no mart models found (fct_*/dim_* or models under marts/)",
                  evidence={"models": [model.name for model in models(ctx)]})


def no_candidate_models(ctx: StaticContext) -> CheckResult | None:
    """A failing result when every model is the handout's, unchanged (nothing of the candidate's to judge)."""
    if candidate_models(ctx):
        return None
    return result("fail", "no models besides the unchanged ones handed out with the exercise",
                  evidence={"models": [model.name for model in models(ctx)]})
