"""DAG orchestration of the exercise's pipeline: the Airbyte sync is really triggered and
waited for, and dbt's tests gate what runs after the models are built."""

from __future__ import annotations

import ast
import re

from checks.airflow_dags import DagFile, TaskDef, dag_files
from checks.dag.support import HTTP_CALL, dag_example, defined_dags, finding, per_dag
from checks.python_source import falsy
from checks.registry import CheckResult, Examples
from checks.static_context import StaticContext
from checks.static_rules import static_check

_AIRBYTE = re.compile(r"airbyte", re.I)


def _airbyte_kind(file: DagFile, task: TaskDef) -> tuple[str, str] | None:
    """(verdict, reason) for a task that is the Airbyte step: real | sensor | no_wait | simulated."""
    text = file.task_text(task)
    calls = file.task_calls(task)
    named = f"{task.task_id or ''} {task.key} {task.kind}"
    if not (_AIRBYTE.search(named) or _AIRBYTE.search(text) or any("airbyte" in call.lower() for call in calls)):
        return None
    if task.kind == "AirbyteTriggerSyncOperator":
        asynchronous = task.kwargs.get("asynchronous")
        if asynchronous is not None and not falsy(asynchronous):
            return "no_wait", "AirbyteTriggerSyncOperator(asynchronous=True)"
        return "real", "AirbyteTriggerSyncOperator (waits for the job)"
    if task.kind == "AirbyteJobSensor":
        return "sensor", "AirbyteJobSensor"
    if "Airbyte" in task.kind:
        return "real", task.kind
    if any(call.split(".")[-1] == "AirbyteHook" or "AirbyteHook" in call for call in calls):
        waits = any(call.endswith(("wait_for_job", "get_job_status", "get_job_details")) for call in calls)
        return ("real" if waits else "no_wait"), "AirbyteHook" + (" with wait" if waits else " without waiting")
    http = (
        task.kind in ("HttpOperator", "SimpleHttpOperator", "HttpSensor")
        or any(HTTP_CALL.search(call) for call in calls)
        or re.search(r"\bcurl\b|\bwget\b|\bhttpie\b|\babctl\b|\boctavia\b", text)
    )
    if http:  # the task mentions Airbyte (checked above)
        if task.kind == "HttpSensor":
            return "sensor", "HttpSensor polling Airbyte"
        polls = (
            bool(re.search(r"\bwhile\b|\buntil\b|for .* in|status", text))
            or task.func is not None and any(isinstance(node, (ast.While, ast.For)) for node in ast.walk(task.func))
            or "wait" in text.lower()
        )
        return ("real" if polls else "no_wait"), "HTTP call to the Airbyte API" + (
            " with polling" if polls else " without waiting for the job"
        )
    pretends = re.search(r"\becho\b|\bsleep\b|print|time\.sleep", text + " ".join(calls))
    return "simulated", f"{task.kind} that only " + ("echoes/sleeps" if pretends else "stands in for the sync")


_DBT_BUILD = ('    dbt_build = BashOperator(task_id="dbt_build", bash_command="cd /opt/dbt && dbt build")\n'
              '    extract >> dbt_build\n')


@static_check(
    "dag.airbyte_simulated",
    needs=("dags",),
    severity="error",
    title="The Airbyte step really triggers a sync and waits for it (AirbyteTriggerSyncOperator, a job sensor, "
    "or the API with polling), instead of echo/sleep.",
    why="A placeholder that echoes or sleeps lets dbt run on whatever raw data happens to be there; a sync "
    "triggered without waiting lets dbt read a half-loaded raw dataset.",
    fix="Use AirbyteTriggerSyncOperator (synchronous), or trigger asynchronously and wait with AirbyteJobSensor, "
    "or call the Airbyte API and poll the job until it ends; then run dbt downstream of it.",
    examples=Examples(
        bad=dag_example(tasks='    extract = BashOperator(task_id="airbyte_sync", bash_command="echo syncing && sleep 30")\n'
                        + _DBT_BUILD),
        good=dag_example(tasks='    extract = AirbyteTriggerSyncOperator(task_id="airbyte_sync", airbyte_conn_id="airbyte",\n'
                         '                                         connection_id="{{ var.value.airbyte_connection_id }}")\n'
                         + _DBT_BUILD,
                         imports="from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator\n"),
    ),
)
def airbyte_simulated(ctx: StaticContext) -> CheckResult:
    defined_dags(ctx)
    findings, seen = [], []
    for file in dag_files(ctx):
        verdicts = {key: _airbyte_kind(file, task) for key, task in file.tasks.items()}
        waits = {key for key, verdict in verdicts.items() if verdict and verdict[0] in ("sensor", "real")}
        for key, verdict in verdicts.items():
            if verdict is None:
                continue
            task = file.tasks[key]
            name = task.task_id or key
            seen.append({"file": file.rel, "task": name, "verdict": verdict[0], "how": verdict[1], "line": task.line})
            if verdict[0] == "simulated":
                findings.append(finding(file, task.line, f"{name}: Airbyte step is simulated ({verdict[1]})"))
            elif verdict[0] == "no_wait" and not (file.downstream([key]) & waits):
                findings.append(finding(file, task.line, f"{name}: Airbyte sync triggered without waiting for the "
                                                         f"job ({verdict[1]}); dbt may read a half-loaded raw dataset"))
    if not seen:
        findings.append(finding(dag_files(ctx)[0], None, "no Airbyte step in any DAG: extraction is not orchestrated"))
    return per_dag(ctx, findings, {"airbyte_tasks": seen})


_DBT_COMMAND = re.compile(r"\bdbt\s+(?:--?[\w-]+(?:[ =]\S+)?\s+)*(run|test|build|seed|snapshot)\b")


def _dbt_kind(file: DagFile, task: TaskDef) -> set[str]:
    """The dbt commands a task runs (run, test, build, seed, snapshot)."""
    if task.kind in ("DbtTaskGroup", "DbtDag"):
        arguments = ast.unparse(ast.Dict(keys=[ast.Constant(name) for name in task.kwargs],
                                         values=list(task.kwargs.values())))
        return {"run"} if re.search(r"TestBehavior\.NONE|['\"]none['\"]", arguments) else {"build"}
    operator = re.match(r"Dbt(Run|Test|Build|Seed|Snapshot)\w*Operator", task.kind)
    if operator:
        return {operator.group(1).lower()}
    if task.kind == "DbtCloudRunJobOperator":
        return {"build"}
    return {command.group(1) for command in _DBT_COMMAND.finditer(file.task_text(task))}


@static_check(
    "dag.dbt_without_tests",
    needs=("dags",),
    severity="error",
    title="dbt acts as a quality gate: `dbt build`, or `dbt test` after `dbt run` with every downstream task "
    "waiting for the tests.",
    why="`dbt run` alone publishes whatever the models produce; the data tests are what stop duplicated or "
    "broken rows from reaching the marts' consumers.",
    fix="Run `dbt build` (models and their tests in DAG order), or `dbt test` right after `dbt run` with every "
    "later task downstream of the tests.",
    examples=Examples(
        bad=dag_example(tasks='    BashOperator(task_id="dbt_run", bash_command="cd /opt/dbt && dbt run")\n'),
        good=dag_example(tasks='    run = BashOperator(task_id="dbt_run", bash_command="cd /opt/dbt && dbt run")\n'
                         '    test = BashOperator(task_id="dbt_test", bash_command="cd /opt/dbt && dbt test")\n'
                         '    run >> test\n'),
    ),
)
def dbt_without_tests(ctx: StaticContext) -> CheckResult:
    defined_dags(ctx)
    findings, summary = [], []
    any_dbt = False
    for file in dag_files(ctx):
        kinds = {key: _dbt_kind(file, task) for key, task in file.tasks.items()}
        if not any(kinds.values()):
            continue
        any_dbt = True
        runs = {key for key, kind in kinds.items() if "run" in kind and not ({"test", "build"} & kind)}
        tests = {key for key, kind in kinds.items() if {"test", "build"} & kind}
        summary.append({"file": file.rel,
                        "tasks": {file.tasks[key].task_id or key: sorted(kind) for key, kind in kinds.items() if kind}})
        if runs and not tests:
            for key in sorted(runs):
                task = file.tasks[key]
                findings.append(finding(file, task.line, f"{task.task_id or key}: dbt run without dbt test/build, bad "
                                                         "data flows downstream unchecked"))
            continue
        for key in sorted(runs):
            task = file.tasks[key]
            after = file.downstream([key])
            gate = after & tests
            if not gate:
                findings.append(finding(file, task.line, f"{task.task_id or key}: no dbt test runs after this dbt run"))
                continue
            gated = file.downstream(gate) | gate
            ungated = sorted(file.tasks[other].task_id or other for other in after - gated)
            if ungated:
                findings.append(finding(file, task.line, f"{task.task_id or key}: task(s) {', '.join(ungated)} run "
                                                         "after dbt run without waiting for dbt test"))
    if not any_dbt:
        findings.append(finding(dag_files(ctx)[0], None, "no DAG runs dbt"))
    return per_dag(ctx, findings, {"dbt_tasks": summary})
