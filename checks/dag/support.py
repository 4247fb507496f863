"""What the dag rules share: findings pinned to a DAG file's line, the per-DAG result, and
the skip when no DAG is defined at all."""

from __future__ import annotations

import re
from typing import Any

from checks.airflow_dags import DagDef, DagFile, all_dags, dag_files
from checks.registry import CheckResult, CheckSkipped, Finding, result
from checks.static_context import StaticContext

# Calls that reach a person or a service over HTTP (alerts, the Airbyte API).
HTTP_CALL = re.compile(r"(^|\.)(requests|httpx|urllib|aiohttp|http)\.|HttpHook|HttpOperator|urlopen", re.I)


def finding(file: DagFile, line: int | None, message: str) -> Finding:
    return Finding(message=message, file=file.rel, line=line, snippet=file.line_text(line))


def ordered(findings: list[Finding]) -> list[Finding]:
    """Findings by file and line, so the report reads top to bottom."""
    return sorted(findings, key=lambda found: (found.file or "", found.line or 0, found.message))


def defined_dags(ctx: StaticContext) -> list[tuple[DagFile, DagDef]]:
    """Every DAG defined in the workspace; a rule about DAGs is skipped when there is none."""
    dags = all_dags(ctx)
    if not dags:
        broken = sum(1 for file in dag_files(ctx) if file.error)
        why = f" ({broken} file(s) do not parse, see dag.parse_error)" if broken else ""
        raise CheckSkipped(f"skipped: no DAG definition found in {len(ctx.dag_files)} DAG file(s){why}")
    return dags


def per_dag(ctx: StaticContext, findings: list[Finding], extra: dict[str, Any] | None = None) -> CheckResult:
    """Pass without findings; else fail, scored by the share of DAGs without a finding."""
    total = len(all_dags(ctx))
    failing = len({(found.file, found.message.split(":")[0]) for found in findings})
    score = 1.0 if not findings else max(0.0, (total - failing) / total) if total else 0.0
    evidence: dict[str, Any] = {
        "dags_checked": total,
        "files": [file.rel for file in dag_files(ctx)],
        "findings": [found.to_json() for found in findings],
        **(extra or {}),
    }
    if not findings:
        return result("pass", f"no findings ({total} DAG(s) checked)", evidence=evidence)
    return result("fail", f"{len(findings)} finding(s): {findings[0].message}", score=score, evidence=evidence)


# -- example workspaces: the exercise's DAG file, varied one aspect at a time ---------------

DAG_FILE = "airflow/dags/marketplace_pipeline.py"
DAG_IMPORTS = "from airflow.sdk import DAG\nfrom airflow.providers.standard.operators.bash import BashOperator\n"
DBT_BUILD = '    BashOperator(task_id="dbt_build", bash_command="cd /opt/dbt && dbt build")\n'


def dag_example(arguments: str = 'schedule="@daily", catchup=False', tasks: str = DBT_BUILD, *, imports: str = "",
                preamble: str = "") -> dict[str, str]:
    """A workspace whose one DAG file opens `with DAG("marketplace_pipeline", <arguments>):` over `tasks`."""
    text = imports + DAG_IMPORTS + "\n" + preamble + f'with DAG("marketplace_pipeline", {arguments}):\n' + tasks
    return {DAG_FILE: text}
