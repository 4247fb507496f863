"""Whether the lint rules could read every model: a model too large, too slow or too deeply
nested to parse escapes every SQL rule, so that is a finding of its own."""

from __future__ import annotations

from checks.dbt_project import models, parsed
from checks.lint.support import MARTS, STAGING, STG_ORDERS
from checks.registry import CheckResult, Examples, result
from checks.static_context import MAX_TREE_DEPTH, StaticContext
from checks.static_rules import static_check

# A discount rule written as nested COALESCE calls, deeper than the analysis follows.
_NESTED = "coalesce(" * MAX_TREE_DEPTH + "discount_amount" + ", 0)" * MAX_TREE_DEPTH


@static_check(
    "lint.not_analysed",
    needs=("project",),
    severity="warning",
    title="Every model's SQL was small and simple enough to analyse (a model that was not escapes every lint rule).",
    why="The SQL rules read each model's syntax tree within a size, time and depth limit; a model beyond them "
    "cannot be checked for the traps, so the report says so instead of passing it silently.",
    fix="Split the model into CTEs or smaller models; generate long repetitive SQL with a Jinja loop over a "
    "short list instead of writing it out.",
    examples=Examples(
        bad={f"{STAGING}/stg_orders.sql": STG_ORDERS,
             f"{MARTS}/fct_orders.sql": f"select\n    order_id,\n    {_NESTED} as discount\n"
                                        "from {{ ref('stg_orders') }}\n"},
        good={f"{STAGING}/stg_orders.sql": STG_ORDERS,
              f"{MARTS}/fct_orders.sql": "select\n    order_id,\n    coalesce(discount_amount, 0) as discount\n"
                                         "from {{ ref('stg_orders') }}\n"},
    ),
)
def not_analysed(ctx: StaticContext) -> CheckResult:
    for model in models(ctx):
        parsed(ctx, model)  # cached: what the other rules parsed, or parses it now
    skipped = sorted(ctx.not_analysed.items())
    evidence = {"models": len(models(ctx)), "not_analysed": [{"file": file, "why": why} for file, why in skipped]}
    if not skipped:
        return result("pass", f"all {len(models(ctx))} model(s) analysed", evidence=evidence)
    file, why = skipped[0]
    return result("fail", f"{len(skipped)} model file(s) not analysed, e.g. {file}: {why}", evidence=evidence)
