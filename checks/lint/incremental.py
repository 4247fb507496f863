"""Incremental loading: incremental models cannot duplicate rows on reruns, and they filter
the new rows instead of reprocessing everything."""

from __future__ import annotations

import re

from checks.dbt_project import Model, locate, models
from checks.lint.support import MARTS, STAGING, per_model_result
from checks.registry import CheckResult, Examples, result
from checks.static_context import StaticContext
from checks.static_rules import static_check

# No incremental model at all: "full refreshes only" (rubric level 1 of incremental loading).
NO_INCREMENTAL_SCORE = 0.25
_CONFIG = re.compile(r"config\s*\(|materialized", re.I)
_STG_PAYMENTS = ("select\n    id as payment_id,\n    event_id,\n    amount,\n    _airbyte_extracted_at as extracted_at\n"
                 "from {{ source('raw', 'payments') }}\n")
_FCT_BODY = ("select event_id, amount, extracted_at\nfrom {{ ref('stg_payments') }}\n")
_FILTER = ("{% if is_incremental() %}\n"
           "where extracted_at > (select max(extracted_at) from {{ this }})\n{% endif %}\n")


def _filters_with_is_incremental(ctx: StaticContext, model: Model) -> bool:
    """Whether the model calls is_incremental(), in its own code or through the project's macros
    (a shared watermark macro is sound design, not a missing filter). The manifest's macro
    dependencies are followed, depth-limited; without a manifest only the model's text is read."""
    if re.search(r"is_incremental\s*\(\s*\)", model.raw_code):
        return True
    macros = (ctx.manifest or {}).get("macros", {})
    pending = list(model.node.get("depends_on", {}).get("macros", []))
    seen: set[str] = set()
    while pending and len(seen) < 500:
        macro_id = pending.pop()
        if macro_id in seen:
            continue
        seen.add(macro_id)
        if macro_id == "macro.dbt.is_incremental":
            return True
        macro = macros.get(macro_id, {})
        if macro.get("package_name") not in ("dbt", "dbt_bigquery"):  # the project's own, and packages'
            pending.extend(macro.get("depends_on", {}).get("macros", []))
    return False


@static_check(
    "lint.incremental_config",
    needs=("project",),
    severity="warning",
    title="Incremental models set unique_key with merge (or partition_by with insert_overwrite) and filter new rows "
    "with is_incremental().",
    why="Without a unique_key, a merge appends the rows it reprocesses, so every rerun duplicates them; without an "
    "is_incremental() filter, each run reprocesses the whole history, which is a full refresh with extra risk.",
    fix="config(materialized='incremental', unique_key='event_id') (merge) or partition_by with insert_overwrite, "
    "and a `{% if is_incremental() %} where ... > (select max(...) from {{ this }}) {% endif %}` filter.",
    examples=Examples(
        bad={f"{STAGING}/stg_payments.sql": _STG_PAYMENTS,
             f"{MARTS}/fct_payments.sql": "{{ config(materialized='incremental') }}\n\n" + _FCT_BODY},
        good={f"{STAGING}/stg_payments.sql": _STG_PAYMENTS,
              f"{MARTS}/fct_payments.sql": "{{ config(materialized='incremental', unique_key='event_id') }}\n\n"
              + _FCT_BODY + _FILTER},
    ),
)
def incremental_config(ctx: StaticContext) -> CheckResult:
    incremental = [model for model in models(ctx) if model.materialized == "incremental"]
    if not incremental:
        return result("fail", "no incremental models: every run is a full refresh", score=NO_INCREMENTAL_SCORE,
                      evidence={"incremental_models": []})
    findings = []
    summary = []
    for model in incremental:
        config = model.config
        strategy = config.get("incremental_strategy") or None
        effective = strategy or "merge"
        summary.append({
            "model": model.name,
            "unique_key": config.get("unique_key"),
            "incremental_strategy": strategy or "merge (default)",
            "partition_by": config.get("partition_by"),
            "on_schema_change": config.get("on_schema_change"),
        })
        if effective not in ("merge", "insert_overwrite", "microbatch"):
            findings.append(locate(ctx, model, f"{model.name}: incremental_strategy '{effective}' re-inserts rows on "
                                               "reruns; use merge with unique_key or insert_overwrite", _CONFIG))
        if effective == "merge" and not config.get("unique_key"):
            findings.append(locate(ctx, model, f"{model.name}: merge without unique_key appends duplicates on each run",
                                   _CONFIG))
        if effective == "insert_overwrite" and not config.get("partition_by"):
            findings.append(locate(ctx, model, f"{model.name}: insert_overwrite without partition_by", _CONFIG))
        if effective != "microbatch" and not _filters_with_is_incremental(ctx, model):
            findings.append(locate(ctx, model, f"{model.name}: no is_incremental() filter, every run reprocesses "
                                               "everything", _CONFIG))
    outcome = per_model_result(findings, len(incremental), "incremental models", {"incremental_models": summary})
    if not findings:
        return outcome
    failing = len({found.file for found in findings})  # an incremental model with gaps beats full refreshes (level 2)
    return result("fail", outcome.message, score=(len(incremental) - failing + 0.5 * failing) / len(incremental),
                  evidence=outcome.evidence)
