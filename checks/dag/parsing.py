"""Whether Airflow can load the DAG files, and cheaply: valid Python, no heavy work at import
time, and (optionally) no import errors in Airflow's own loader."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from checks.airflow_dags import DagFile, dag_files
from checks.dag.support import dag_example, finding, ordered
from checks.python_source import dotted, is_main_guard
from checks.registry import CheckResult, Examples, Finding, result
from checks.static_context import StaticContext
from checks.static_rules import static_check


@static_check(
    "dag.parse_error",
    needs=("dags",),
    severity="error",
    title="Every DAG file is valid Python (checked with ast, without running it).",
    why="A DAG file that does not parse is not loaded by Airflow at all: the pipeline never runs.",
    fix="Fix the syntax error at the line named; `python -m py_compile FILE` shows it before Airflow does.",
    examples=Examples(
        bad=dag_example(tasks='    BashOperator(task_id="dbt_build", bash_command="cd /opt/dbt && dbt build"\n'),
        good=dag_example(),
    ),
)
def parse_error(ctx: StaticContext) -> list[Finding]:
    return [finding(file, file.error.lineno, f"{file.rel} does not parse: {file.error.msg}")
            for file in dag_files(ctx) if file.error is not None]


_HEAVY = [
    (re.compile(r"^(requests|httpx|aiohttp|urllib3?)\.|(^|\.)urlopen$|^http\.client\."), "network call"),
    (re.compile(r"^(open|io\.open|builtins\.open|codecs\.open)$"), "file I/O"),
    (re.compile(r"\.(read_text|read_bytes|write_text|write_bytes)$"), "file I/O"),
    (re.compile(r"^subprocess\.|^os\.(system|popen|exec\w*|spawn\w*)$"), "subprocess"),
    (re.compile(r"^time\.sleep$|^sleep$"), "sleep"),
    (re.compile(r"(^|\.)Variable\.get$|(^|\.)Variable\.set$"), "Airflow Variable lookup (metadata DB/API)"),
    (re.compile(r"(^|\.)(BaseHook|Connection)\.get_connection\w*$|Hook$|Hook\.\w+$"), "hook / connection lookup"),
    (
        re.compile(r"^(psycopg2?|pymysql|sqlite3|snowflake\.connector|mysql\.connector|duckdb)\.connect$|create_engine$"),
        "database connection",
    ),
    (re.compile(r"(^|\.)(bigquery|storage)\.Client$|^boto3\.(client|resource)$"), "cloud client"),
    (re.compile(r"^(pd|pandas)\.read_\w+$"), "data load"),
    (re.compile(r"^socket\."), "network call"),
]


def _parse_time_calls(file: DagFile) -> Iterable[tuple[ast.Call, str, str]]:
    """Heavy calls evaluated when the file is imported: module level, DAG/with bodies, @dag and
    @task_group bodies, operator arguments; not inside task callables or lambdas."""
    assert file.tree is not None

    def walk_statements(statements: list[ast.stmt]) -> Iterable[ast.AST]:
        for stmt in statements:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                kinds = {file.decorator_kind(decorator)[0] for decorator in stmt.decorator_list}
                for decorator in stmt.decorator_list:
                    yield from walk_expression(decorator)
                if kinds & {"dag", "task_group"}:
                    yield from walk_statements(stmt.body)
                continue
            if isinstance(stmt, ast.ClassDef):
                for member in stmt.body:
                    if not isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        yield from walk_statements([member])
                continue
            if isinstance(stmt, ast.If) and is_main_guard(stmt):
                continue
            for _name, value in ast.iter_fields(stmt):
                if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                    yield from walk_statements(value)
                elif isinstance(value, list):
                    for item in value:
                        if isinstance(item, ast.ExceptHandler):
                            yield from walk_statements(item.body)
                        elif isinstance(item, ast.AST):
                            yield from walk_expression(item)
                elif isinstance(value, ast.AST):
                    yield from walk_expression(value)

    def walk_expression(node: ast.AST) -> Iterable[ast.AST]:
        if isinstance(node, ast.Lambda):
            return
        yield node
        for child in ast.iter_child_nodes(node):
            yield from walk_expression(child)

    for node in walk_statements(file.tree.body):
        if isinstance(node, ast.Call):
            name = file.resolve(dotted(node.func, through_calls=False))
            if not name:
                continue
            for pattern, why in _HEAVY:
                if pattern.search(name):
                    yield node, name, why
                    break


@static_check(
    "dag.parse_time_work",
    needs=("dags",),
    severity="warning",
    title="No I/O or heavy work at import time (network, files, subprocess, sleep, Variable/hook lookups): the "
    "scheduler re-parses DAG files constantly.",
    why="Airflow's DAG processor imports every DAG file every few seconds; a network call or Variable lookup at "
    "module level runs on each parse, slows every DAG's scheduling and fails the file when the service is down.",
    fix="Move the work into a task (a @task function or an operator's callable), or read it with a Jinja "
    "template such as {{ var.value.name }} that is rendered when the task runs.",
    examples=Examples(
        bad=dag_example(tasks='    BashOperator(task_id="dbt_build", bash_command=f"cd /opt/dbt && dbt build --target {TARGET}")\n',
                        preamble='TARGET = Variable.get("dbt_target")\n\n',
                        imports="from airflow.sdk import Variable\n"),
        good=dag_example(tasks='    BashOperator(task_id="dbt_build",\n'
                         '                 bash_command="cd /opt/dbt && dbt build --target {{ var.value.dbt_target }}")\n'),
    ),
)
def parse_time_work(ctx: StaticContext) -> list[Finding]:
    out = []
    for file in dag_files(ctx):
        if file.tree is None:
            continue
        seen = set()
        for call, name, why in _parse_time_calls(file):
            if (call.lineno, name) in seen:
                continue
            seen.add((call.lineno, name))
            out.append(finding(file, call.lineno, f"{file.rel}:{call.lineno}: {name}() runs at parse time ({why})"))
    return ordered(out)


@static_check(
    "dag.airflow_import_errors",
    needs=("dags",),
    severity="error",
    title="Optional: Airflow's own loader (DagBag), in a sandboxed time-limited subprocess, imports every DAG "
    "without errors.",
    why="Valid Python can still fail to load in Airflow (a missing provider, a wrong import path, an error raised "
    "at import); such a DAG never appears in Airflow. Only Airflow's own loader sees those errors, and it runs "
    "the candidate's code, so it is off unless the grading names an Airflow interpreter.",
    fix="Import what the Airflow image installs (Airflow 3: airflow.sdk and airflow.providers.standard) and keep "
    "module-level code free of errors; `airflow dags list-import-errors` shows what Airflow saw.",
    examples=Examples(  # Airflow 2's module path, gone in Airflow 3
        bad={path: text.replace("airflow.providers.standard.operators.bash", "airflow.operators.bash_operator")
             for path, text in dag_example().items()},
        good=dag_example(),
    ),
)
def airflow_import_errors(ctx: StaticContext) -> CheckResult:
    if ctx.airflow_python is None:
        return result("skipped", "skipped: the Airflow loader is off (it executes candidate code; "
                                 "enable it by giving an Airflow interpreter)")
    from grader.airflow_parse import parse_dags

    report = parse_dags(ctx.dag_files, python=ctx.airflow_python, root=ctx.root)
    loader_status = report.pop("status", None)
    evidence = {key: value for key, value in report.items() if key != "message"}
    evidence["loader_status"] = loader_status
    if loader_status != "ok":
        return result("error", f"Airflow loader failed ({loader_status}): {report.get('message')}", evidence=evidence)
    errors = report.get("import_errors") or {}
    evidence["findings"] = [
        Finding(message=message.strip().splitlines()[-1][:300] if message.strip() else "import error",
                file=ctx.rel(path), line=_error_line(message), snippet=None).to_json()
        for path, message in sorted(errors.items())
    ]
    if errors:
        return result("fail", f"{len(errors)} DAG file(s) fail to import in Airflow", evidence=evidence)
    loaded = len(report.get("dag_ids") or [])
    return result("pass", f"Airflow loaded {loaded} DAG(s) without import errors", evidence=evidence)


def _error_line(message: str) -> int | None:
    """The last line number of a traceback (where the candidate's file failed)."""
    found = re.findall(r'File "[^"]*", line (\d+)', message or "")
    return int(found[-1]) if found else None
