"""DAG documentation: the on-call engineer finds what a DAG does and what to do when it fails."""

from __future__ import annotations

import ast

from checks.python_source import falsy
from checks.dag.support import dag_example, defined_dags, finding, per_dag
from checks.registry import CheckResult, Examples
from checks.static_context import StaticContext
from checks.static_rules import static_check


@static_check(
    "dag.no_doc_md",
    needs=("dags",),
    severity="info",
    title="Each DAG carries doc_md for on-call (what it does, what to do when it fails).",
    why="Whoever is paged at night reads the DAG's page in Airflow first; doc_md is shown there, a one-line "
    "description is not a runbook.",
    fix="Pass doc_md= to the DAG (or set dag.doc_md, or give the @dag function a docstring): what the DAG loads, "
    "its schedule and dependencies, and how to rerun or backfill it safely.",
    examples=Examples(
        bad=dag_example('schedule="@daily", catchup=False, description="Loads the marketplace marts"'),
        good=dag_example('schedule="@daily", catchup=False,\n'
                         '         doc_md="""Loads raw data with Airbyte, then builds and tests the marts with dbt.\n\n'
                         'On failure: read the failed task\'s log; every task is safe to clear and rerun for its interval.\n'
                         '"""'),
    ),
)
def no_doc_md(ctx: StaticContext) -> CheckResult:
    findings = []
    for file, dag in defined_dags(ctx):
        doc = dag.kwargs.get("doc_md") or dag.attrs.get("doc_md")
        has_module_doc = file.tree is not None and ast.get_docstring(file.tree) is not None
        if doc is not None and not falsy(doc):
            if isinstance(doc, ast.Name) and doc.id == "__doc__" and not has_module_doc:
                findings.append(finding(file, dag.line, f"{dag.name}: doc_md=__doc__ but the file has no docstring"))
            continue
        if dag.style == "decorator" and dag.docstring:
            continue  # @dag uses the function docstring as doc_md
        extra = " (only a one-line description)" if "description" in dag.kwargs else ""
        findings.append(finding(file, dag.line, f"{dag.name}: no doc_md for on-call{extra}"))
    return per_dag(ctx, findings)
