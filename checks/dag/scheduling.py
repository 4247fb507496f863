"""DAG scheduling: when the pipeline runs, what a missed interval does, and whether a run
depends on the wall clock instead of its data interval."""

from __future__ import annotations

import ast
import re

from checks.airflow_dags import dag_files, default_args
from checks.dag.support import defined_dags, dag_example, finding, ordered, per_dag
from checks.python_source import dotted
from checks.registry import CheckResult, Examples, Finding
from checks.static_context import StaticContext
from checks.static_rules import static_check


@static_check(
    "dag.no_schedule",
    needs=("dags",),
    severity="warning",
    title="Each DAG states a schedule (cron, timedelta, timetable or assets); None means it only runs when triggered.",
    why="A pipeline nobody triggers produces stale marts. Without a schedule argument the cadence depends on the "
    "Airflow version (Airflow 3: never scheduled; Airflow 2: daily), so the pipeline's freshness is unstated.",
    fix="Pass schedule= to the DAG: a cron string or preset (\"@daily\"), a timedelta, a timetable or assets.",
    examples=Examples(bad=dag_example('schedule=None, catchup=False'), good=dag_example()),
)
def no_schedule(ctx: StaticContext) -> CheckResult:
    findings = []
    for file, dag in defined_dags(ctx):
        key = next((name for name in ("schedule", "schedule_interval", "timetable") if name in dag.kwargs), None)
        if key is None:
            findings.append(finding(file, dag.line, f"{dag.name}: no schedule argument (Airflow 3 default: never "
                                                    "scheduled; Airflow 2: daily), the pipeline's cadence is unstated"))
        elif isinstance(value := dag.kwargs[key], ast.Constant) and value.value is None:
            findings.append(finding(file, value.lineno,
                                    f"{dag.name}: {key}=None, the DAG only runs when triggered by hand"))
    return per_dag(ctx, findings)


@static_check(
    "dag.catchup_implicit",
    needs=("dags",),
    severity="warning",
    title="Each DAG sets catchup explicitly (its default differs between Airflow 2 and 3 and deployments).",
    why="With catchup on, unpausing a DAG whose start_date lies in the past starts a run for every missed interval; "
    "with it off, missed intervals are never loaded. Which one happens should be a decision, not a default that "
    "changed between Airflow versions (catchup inside default_args is ignored).",
    fix="Pass catchup=False (or True, with a backfill plan) to the DAG itself.",
    examples=Examples(bad=dag_example('schedule="@daily", default_args={"catchup": False}'), good=dag_example()),
)
def catchup_implicit(ctx: StaticContext) -> CheckResult:
    findings = []
    for file, dag in defined_dags(ctx):
        if "catchup" not in dag.kwargs:
            ignored = "catchup" in (default_args(file, dag) or {})
            where = " (catchup in default_args is ignored by the DAG)" if ignored else ""
            findings.append(finding(file, dag.line, f"{dag.name}: catchup left implicit{where}"))
    return per_dag(ctx, findings)


_NOW_CALLS = re.compile(
    r"(^|\.)(datetime\.(now|utcnow|today)|date\.today|pendulum\.(now|today)|"
    r"timezone\.(utcnow|now)|arrow\.(now|utcnow)|now|utcnow)$"
)
_NOW_IN_TEXT = re.compile(
    r"\$\(\s*date\b|`date\b|\bcurrent_(date|timestamp|datetime)\b|\bnow\(\)|\bgetdate\(\)|\bsysdate\b", re.I
)
# Task arguments that hold the command or query a task runs.
_COMMAND_ARGUMENTS = ("bash_command", "sql", "command", "cmds", "arguments", "query", "env")


@static_check(
    "dag.non_idempotent",
    needs=("dags",),
    severity="warning",
    title="Task logic uses the run's data interval (logical_date, data_interval_start, {{ ds }}) instead of the "
    "wall clock (now(), today(), $(date), CURRENT_DATE).",
    why="A task that reads the wall clock loads a different slice when it is retried, backfilled or delayed, so "
    "rerunning a day does not reproduce that day.",
    fix="Template the data interval into commands ({{ ds }}, {{ data_interval_start }}) or read it from the task "
    "context; keep now() for logging and alert messages only.",
    examples=Examples(
        bad=dag_example(tasks='    BashOperator(task_id="dbt_build",\n'
                        '                 bash_command="cd /opt/dbt && dbt build --vars \\"{day: $(date +%F)}\\"")\n'),
        good=dag_example(tasks='    BashOperator(task_id="dbt_build",\n'
                         '                 bash_command="cd /opt/dbt && dbt build --vars \\"{day: {{ ds }}}\\"")\n'),
    ),
)
def non_idempotent(ctx: StaticContext) -> list[Finding]:
    out: list[Finding] = []
    for file in dag_files(ctx):
        if file.tree is None:
            continue
        skip: set[int] = set()  # callbacks may say when they ran
        for name in file.callbacks:
            function = file.functions.get(name)
            if function is not None:
                skip.update(id(node) for node in ast.walk(function))
        for node in ast.walk(file.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and re.search(r"callback|alert|notify",
                                                                                       node.name, re.I):
                skip.update(id(inner) for inner in ast.walk(node))
        seen: set[object] = set()
        for node in ast.walk(file.tree):
            if id(node) in skip or not isinstance(node, ast.Call):
                continue
            name = file.resolve(dotted(node.func))
            if _NOW_CALLS.search(name) and (name.count(".") >= 1 or name in ("now", "utcnow")):
                if node.lineno in seen:
                    continue
                seen.add(node.lineno)
                out.append(finding(file, node.lineno, f"{file.rel}:{node.lineno}: {dotted(node.func)}() makes the run "
                                                      "depend on when it executes; use the data interval / "
                                                      "logical_date / {{ ds }}"))
        for task in file.tasks.values():
            for argument in _COMMAND_ARGUMENTS:
                value = task.kwargs.get(argument)
                for text in file.strings(value) if value is not None else []:
                    wall_clock = _NOW_IN_TEXT.search(text)
                    if wall_clock and (task.line, wall_clock.group(0)) not in seen:
                        seen.add((task.line, wall_clock.group(0)))
                        out.append(finding(file, getattr(value, "lineno", task.line),
                                           f"{task.task_id or task.key}: `{wall_clock.group(0)}` in {argument} reads "
                                           "the wall clock; template the data interval ({{ ds }}, "
                                           "{{ data_interval_end }})"))
    return ordered(out)

