"""DAG reliability: transient failures are retried, and a failure reaches a person."""

from __future__ import annotations

import ast
import re
from typing import Any

from checks.airflow_dags import DagDef, DagFile, default_args
from checks.dag.support import HTTP_CALL, dag_example, defined_dags, finding, per_dag
from checks.python_source import const_str, dotted, falsy
from checks.registry import CheckResult, Examples, Finding
from checks.static_context import StaticContext
from checks.static_rules import static_check


@static_check(
    "dag.no_retries",
    needs=("dags",),
    severity="warning",
    title="Tasks retry transient failures: retries (and ideally retry_delay) in default_args or on every task.",
    why="Extraction and warehouse calls fail transiently (timeouts, rate limits, a restarting service). Without "
    "retries one blip fails the whole run and leaves the marts stale until someone reruns it by hand.",
    fix="Set retries (e.g. 2) and retry_delay in the DAG's default_args, or retries= on every task.",
    examples=Examples(
        bad=dag_example('schedule="@daily", catchup=False, default_args={"retries": 0}'),
        good=dag_example('schedule="@daily", catchup=False,\n'
                         '         default_args={"retries": 2, "retry_delay": timedelta(minutes=5)}',
                         imports="from datetime import timedelta\n\n"),
    ),
)
def no_retries(ctx: StaticContext) -> CheckResult:
    findings: list[Finding] = []
    summary: list[dict[str, Any]] = []
    for file, dag in defined_dags(ctx):
        arguments = default_args(file, dag)
        if arguments is None:
            summary.append({"dag": dag.name, "retries": "unresolved default_args"})
            continue
        retries = arguments.get("retries")
        if retries is not None and not falsy(retries):
            delay = ast.unparse(arguments["retry_delay"]) if "retry_delay" in arguments else "default (300 s)"
            summary.append({"dag": dag.name, "retries": ast.unparse(retries), "retry_delay": delay})
            continue
        tasks = [file.tasks[key] for key in dag.tasks]
        missing = [task for task in tasks if "retries" not in task.kwargs or falsy(task.kwargs["retries"])]
        if tasks and not missing:
            summary.append({"dag": dag.name, "retries": "set on every task"})
            continue
        line = retries.lineno if retries is not None else dag.line
        names = ", ".join((task.task_id or task.key) for task in missing[:6])
        why = "retries=0 in default_args" if retries is not None else "no retries in default_args"
        findings.append(finding(file, line, f"{dag.name}: {why} and not on task(s) {names or '(none defined)'}"))
        summary.append({"dag": dag.name, "retries": None})
    return per_dag(ctx, findings, {"dags": summary})


_NOTIFY = re.compile(r"notif|slack|pagerduty|opsgenie|teams|email|alert|chime|discord|sns", re.I)
_LOG_ONLY = re.compile(r"(^|\.)(print|log|logging|logger|getLogger|debug|info|warning|warn|error|exception|critical)$")
_CALLBACKS = ("on_failure_callback", "sla_miss_callback", "deadline", "on_retry_callback")


@static_check(
    "dag.no_alerting",
    needs=("dags",),
    severity="warning",
    title="Failures reach a person: on_failure_callback, email on failure, a notifier, an SLA/deadline callback "
    "or an alert task.",
    why="A scheduled pipeline that fails silently is found out when a stakeholder sees stale numbers, days later.",
    fix="Add an on_failure_callback (a notifier such as SlackNotifier, or a function that posts an alert) in "
    "default_args, email on failure, or an alert task with trigger_rule=\"one_failed\".",
    examples=Examples(
        bad=dag_example(),
        good=dag_example('schedule="@daily", catchup=False,\n'
                         '         default_args={"on_failure_callback": SlackNotifier(slack_conn_id="slack_data",\n'
                         '                                                            text="{{ ti.task_id }} failed")}',
                         imports="from airflow.providers.slack.notifications.slack import SlackNotifier\n"),
    ),
)
def no_alerting(ctx: StaticContext) -> CheckResult:
    findings, summary = [], []
    for file, dag in defined_dags(ctx):
        how = _alerting(file, dag)
        if how:
            summary.append({"dag": dag.name, "alerting": how})
        else:
            findings.append(finding(file, dag.line, f"{dag.name}: no failure alerting (no on_failure_callback, email "
                                                    "on failure, notifier or alert task)"))
    return per_dag(ctx, findings, {"dags": summary})


def _alerting(file: DagFile, dag: DagDef) -> list[str]:
    """How a DAG's failures are announced (callbacks, email, alert tasks, notifiers)."""
    how = []
    arguments = default_args(file, dag)
    for where, declared in (("DAG", dag.kwargs), ("DAG attribute", dag.attrs), ("default_args", arguments or {})):
        for key in _CALLBACKS:
            if key in declared and not falsy(declared[key]):
                how.append(f"{where} {key}")
    if arguments:
        email = arguments.get("email")
        if email is not None and not falsy(email) and not falsy(arguments.get("email_on_failure", ast.Constant(True))):
            how.append("default_args email (email_on_failure)")
    if arguments is None:
        how.append("default_args not resolvable (assumed)")
    for key in dag.tasks:
        task = file.tasks[key]
        if "on_failure_callback" in task.kwargs and not falsy(task.kwargs["on_failure_callback"]):
            how.append(f"task {task.task_id or key} on_failure_callback")
        rule = const_str(task.kwargs.get("trigger_rule")) or (
            ast.unparse(task.kwargs["trigger_rule"]) if "trigger_rule" in task.kwargs else ""
        )
        if re.search(r"one_failed|all_failed|ONE_FAILED|ALL_FAILED", rule):
            how.append(f"alert task {task.task_id or key} (trigger_rule {rule})")
        if _NOTIFY.search(task.kind) and task.kind.endswith("Operator"):
            how.append(f"notification task {task.task_id or key} ({task.kind})")
    if file.tree is not None and not how:
        for node in ast.walk(file.tree):
            if isinstance(node, ast.Call):
                last = file.resolve(dotted(node.func)).split(".")[-1]
                if last.endswith("Notifier") or re.fullmatch(r"send_\w*notification", last):
                    how.append(f"notifier {last}")
                    break
    return how


_LOGGING_CALLBACK = ('log = logging.getLogger(__name__)\n\n\n'
                     'def on_failure(context):\n'
                     '    log.error("task %s failed", context["ti"].task_id)\n\n\n')
_POSTING_CALLBACK = ('\ndef on_failure(context):\n'
                     '    requests.post("https://alerts.example.com/hooks/data-team",\n'
                     '                  json={"text": f"{context[\'ti\'].task_id} failed"}, timeout=10)\n\n\n')
_WITH_CALLBACK = 'schedule="@daily", catchup=False, default_args={"on_failure_callback": on_failure}'


@static_check(
    "dag.alerting_notifies",
    needs=("dags",),
    severity="warning",
    title="The failure alert reaches a person (email, chat, paging, an HTTP alert), not only a log line nobody reads.",
    why="A callback that only logs is written to the task log of the run that failed, which nobody opens until "
    "they already know something is wrong.",
    fix="Make the callback notify: a provider notifier (SlackNotifier, SmtpNotifier, ...), send_email, or an HTTP "
    "post to the team's alert webhook.",
    examples=Examples(
        bad=dag_example(_WITH_CALLBACK, imports="import logging\n\n", preamble=_LOGGING_CALLBACK),
        good=dag_example(_WITH_CALLBACK, imports="import requests\n\n", preamble=_POSTING_CALLBACK),
    ),
)
def alerting_notifies(ctx: StaticContext) -> CheckResult:
    findings, summary = [], []
    for file, dag in defined_dags(ctx):
        callbacks = _failure_callbacks(file, dag)
        notifying = [how for how in _alerting(file, dag) if "callback" not in how and "not resolvable" not in how]
        notifying += [f"callback {name} ({how})" for name, how in callbacks.items() if how]
        logs_only = [name for name, how in callbacks.items() if not how]
        if notifying:
            summary.append({"dag": dag.name, "notifies": notifying})
        elif logs_only:
            findings.append(finding(file, dag.line, f"{dag.name}: failure callback {', '.join(logs_only)} only logs "
                                                    "or prints; nobody is notified"))
        else:
            findings.append(finding(file, dag.line, f"{dag.name}: no failure alerting that reaches a person"))
    return per_dag(ctx, findings, {"dags": summary})


def _failure_callbacks(file: DagFile, dag: DagDef) -> dict[str, str | None]:
    """Failure callbacks of a DAG and its tasks -> how each notifies (None: only logs, or unknown)."""
    expressions: list[ast.expr] = []
    for declared in (dag.kwargs, dag.attrs, default_args(file, dag) or {}):
        for key in ("on_failure_callback", "sla_miss_callback", "on_retry_callback"):
            if key in declared and not falsy(declared[key]):
                expressions.append(declared[key])
    for key in dag.tasks:
        task = file.tasks[key]
        if "on_failure_callback" in task.kwargs and not falsy(task.kwargs["on_failure_callback"]):
            expressions.append(task.kwargs["on_failure_callback"])
    out: dict[str, str | None] = {}
    for expression in expressions:
        items = expression.elts if isinstance(expression, (ast.List, ast.Tuple)) else [expression]
        for item in items:
            out[ast.unparse(item)[:80]] = _notifies(file, item, depth=0)
    return out


def _notifies(file: DagFile, node: ast.AST, depth: int) -> str | None:
    """How a callback expression (a function name, a lambda, a notifier call) reaches a person."""
    if depth > 3:
        return None
    if isinstance(node, ast.Name) and node.id in file.functions:
        node = file.functions[node.id]
    elif isinstance(node, ast.Call):
        last = file.resolve(dotted(node.func)).split(".")[-1]
        if _NOTIFY.search(last) or last.endswith("Notifier"):
            return last
    for call in (inner for inner in ast.walk(node) if isinstance(inner, ast.Call)):
        name = file.resolve(dotted(call.func))
        last = name.split(".")[-1]
        if _LOG_ONLY.search(name):
            continue
        if _NOTIFY.search(name) or HTTP_CALL.search(name) or last in ("send_email", "send_email_smtp"):
            return last
        if isinstance(call.func, ast.Name) and call.func.id in file.functions and file.functions[call.func.id] is not node:
            found = _notifies(file, call.func, depth + 1)
            if found:
                return found
    return None
