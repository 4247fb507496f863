"""Documentation: every model the candidate wrote says what it is, and its columns what they mean."""

from __future__ import annotations

from checks.dbt_project import candidate_models, locate, model_columns
from checks.lint.support import STAGING, STG_ORDERS, no_candidate_models, per_model_result
from checks.registry import CheckResult, Examples, result
from checks.static_context import StaticContext
from checks.static_rules import static_check

# undocumented_columns passes at or above this share of columns described.
COLUMN_DOCS_PASS = 0.8
_COLUMNS = ("order_id", "buyer_id", "status", "currency", "total_amount", "created_at")
_DESCRIBED = (
    "version: 2\n\nmodels:\n  - name: stg_orders\n    description: One row per checkout, from raw.orders.\n"
    "    columns:\n" + "".join(f"      - name: {column}\n        description: The order's {column.replace('_', ' ')}.\n"
                               for column in _COLUMNS)
)


@static_check(
    "lint.undocumented_models",
    needs=("manifest", "project"),
    severity="warning",
    title="Every model has a description (score: share of models documented).",
    why="The description is what analysts read in dbt docs before they trust a model: its grain, where it comes "
    "from, what it leaves out.",
    fix="Add a description to each model in a YAML file beside it (models: - name: ... description: ...).",
    examples=Examples(
        bad={f"{STAGING}/stg_orders.sql": STG_ORDERS},
        good={f"{STAGING}/stg_orders.sql": STG_ORDERS, f"{STAGING}/_stg_models.yml": _DESCRIBED},
    ),
)
def undocumented_models(ctx: StaticContext) -> CheckResult:
    if missing := no_candidate_models(ctx):
        return missing
    scope = candidate_models(ctx)
    findings = [locate(ctx, model, f"{model.name} has no description") for model in scope if not model.description]
    return per_model_result(findings, len(scope), "models")


@static_check(
    "lint.undocumented_columns",
    needs=("manifest", "project"),
    severity="info",
    title="Share of model output columns (documented in YAML or selected in SQL) that have a description.",
    why="Column descriptions carry the meaning a name cannot: units, currency, time zone, what NULL means.",
    fix="Describe each column the model outputs in its YAML (columns: - name: ... description: ...).",
    examples=Examples(
        bad={f"{STAGING}/stg_orders.sql": STG_ORDERS,
             f"{STAGING}/_stg_models.yml": _DESCRIBED.split("    columns:")[0]},
        good={f"{STAGING}/stg_orders.sql": STG_ORDERS, f"{STAGING}/_stg_models.yml": _DESCRIBED},
    ),
)
def undocumented_columns(ctx: StaticContext) -> CheckResult:
    if missing := no_candidate_models(ctx):
        return missing
    documented: list[str] = []
    missing_by_model: dict[str, list[str]] = {}
    findings = []
    for model in candidate_models(ctx):
        for column in model_columns(ctx, model):
            if ((model.columns.get(column) or {}).get("description") or "").strip():
                documented.append(f"{model.name}.{column}")
            else:
                missing_by_model.setdefault(model.name, []).append(column)
        if model.name in missing_by_model:
            columns = missing_by_model[model.name]
            listed = ", ".join(columns[:12]) + (" ..." if len(columns) > 12 else "")
            findings.append(locate(ctx, model, f"{model.name}: {len(columns)} column(s) without description: {listed}"))
    total = len(documented) + sum(len(columns) for columns in missing_by_model.values())
    if total == 0:
        return result("fail", "no model columns found to document", evidence={"documented": [], "undocumented": {}})
    score = len(documented) / total
    return result("pass" if score >= COLUMN_DOCS_PASS else "fail",
                  f"{len(documented)}/{total} columns documented ({score:.0%})", score=score,
                  evidence={"documented": documented, "undocumented": missing_by_model, "threshold": COLUMN_DOCS_PASS,
                            "findings": [found.to_json() for found in findings]})
