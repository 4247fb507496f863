"""DAG security: no credentials written into DAG code."""

from __future__ import annotations

import ast
import re

from checks.airflow_dags import DagFile, dag_files
from checks.dag.support import dag_example, ordered
from checks.python_source import const_str
from checks.registry import Examples, Finding
from checks.static_context import StaticContext
from checks.static_rules import static_check

_SECRET_NAME = re.compile(
    r"(?i)(^|_)(password|passwd|pwd|secret|token|api_?key|access_?key|secret_?key|private_?key|client_?secret|credentials?)$"
)
_SECRET_IN_TEXT = re.compile(
    r"(?i)\b(password|passwd|pgpassword|secret|token|api[_-]?key|access[_-]?key)\b\s*[=:]\s*['\"]?(?P<val>[^\s'\"$&;{}<>()\[\],]{3,})"
)
_URI_CREDS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:(?P<val>[^\s@'\"/]+)@", re.I)
_TOKEN_SHAPES = re.compile(
    r"(?P<val>AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abprs]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9]{20,}|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|Bearer\s+[A-Za-z0-9._~+/-]{20,})"
)
# Values that name or template a secret instead of holding one.
_NOT_A_SECRET = re.compile(
    r"^(\{\{.*|\$.*|%.*|<.*>|\*+|x+|none|null|true|false|str|string|secret|password|token|"
    r"env|var|os\.environ.*|redacted|\.\.\.|)$",
    re.I,
)
_TEXT_PATTERNS = (
    (_URI_CREDS, "connection URI with a password"),
    (_TOKEN_SHAPES, "token-shaped literal"),
    (_SECRET_IN_TEXT, "credential inside a string"),
)


@static_check(
    "dag.secrets_in_code",
    needs=("dags",),
    severity="error",
    title="No passwords, tokens or credentialed connection URIs in DAG code; use Airflow connections, variables or "
    "a secrets backend.",
    why="DAG files live in version control and are readable by everyone with access to the repository or the "
    "Airflow image; a credential written there leaks and cannot be rotated without a code change.",
    fix="Keep credentials in an Airflow connection or a secrets backend and reference them: a conn_id, "
    "{{ conn.<id>.password }} in templates, or environment variables set by the deployment.",
    examples=Examples(
        bad=dag_example(tasks='    BashOperator(task_id="export_orders",\n'
                        '                 bash_command="psql postgresql://analytics:hunter2@postgres/marketplace -f export.sql")\n'),
        good=dag_example(tasks='    BashOperator(task_id="export_orders", bash_command="psql -h postgres -U analytics -f export.sql",\n'
                         '                 env={"PGPASSWORD": "{{ conn.marketplace_postgres.password }}"})\n'),
    ),
)
def secrets_in_code(ctx: StaticContext) -> list[Finding]:
    out: list[Finding] = []
    for file in dag_files(ctx):
        if file.tree is not None:
            out.extend(_secrets_in_file(file))
    return ordered(out)


def _mask(line: str | None, value: str) -> str | None:
    """The line with the secret replaced, so the report never repeats it."""
    if line is None or not value:
        return line
    return line.replace(value, "***")


def _docstring_nodes(tree: ast.Module) -> set[int]:
    """Docstrings and documentation arguments: prose, where a word like "password" is no secret."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and const_str(body[0].value) is not None:
                out.add(id(body[0].value))
        if isinstance(node, ast.keyword) and node.arg in ("doc_md", "doc", "description", "doc_rst"):
            for sub in ast.walk(node.value):
                out.add(id(sub))
    return out


def _named_values(node: ast.AST) -> list[tuple[str, ast.expr]]:
    """(name, value) pairs a node binds: keyword arguments, dict entries, assignments."""
    pairs: list[tuple[str, ast.expr]] = []
    if isinstance(node, ast.keyword) and node.arg:
        pairs.append((node.arg, node.value))
    elif isinstance(node, ast.Dict):
        pairs.extend((key.value, value) for key, value in zip(node.keys, node.values)
                     if isinstance(key, ast.Constant) and isinstance(key.value, str))
    elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                pairs.append((target.id, node.value))
            elif isinstance(target, ast.Subscript) and const_str(target.slice):
                pairs.append((const_str(target.slice) or "", node.value))
    return pairs


def _secrets_in_file(file: DagFile) -> list[Finding]:
    assert file.tree is not None
    out: list[Finding] = []
    docs = _docstring_nodes(file.tree)
    seen: set[tuple[int, str]] = set()

    def add(line: int, what: str, value: str) -> None:
        if (line, what) in seen:
            return
        seen.add((line, what))
        out.append(Finding(message=f"{file.rel}:{line}: {what}", file=file.rel, line=line,
                           snippet=_mask(file.line_text(line), value)))

    for node in ast.walk(file.tree):
        for name, value in _named_values(node):
            text = const_str(value)
            if text is not None and _SECRET_NAME.search(name) and not _NOT_A_SECRET.match(text.strip()):
                add(value.lineno, f"literal value for `{name}`", text)
            if name == "auth" and isinstance(value, ast.Tuple) and len(value.elts) == 2:
                password = const_str(value.elts[1])
                if password and not _NOT_A_SECRET.match(password):
                    add(value.lineno, "literal credentials in auth=(user, password)", password)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            for pattern, what in _TEXT_PATTERNS:
                for found in pattern.finditer(node.value):
                    secret = found.group("val")
                    if _NOT_A_SECRET.match(secret) or secret.startswith(("{", "$", "%")):
                        continue
                    add(node.lineno + node.value.count("\n", 0, found.start()), what, secret)
    return out
