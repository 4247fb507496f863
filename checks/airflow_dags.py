"""The Airflow DAG interpreter: what the dag rules ask about the candidate's DAG files.

Candidate code is untrusted: a DAG file is read as text and parsed with `ast`; it is never
imported, compiled to bytecode or executed. A small abstract interpreter walks the
statements Airflow would run when it imports the file and models, per file: its DAGs
(`with DAG(...)`, `dag = DAG(...)`, `@dag`, Airflow 2 and 3 imports, cosmos' DbtDag), their
arguments and later attribute assignments (`dag.doc_md = ...`), the tasks (classic
operators and sensors, `.partial().expand()`, TaskFlow `@task` functions, task groups,
cosmos' DbtTaskGroup), the dependency edges (`>>`, `<<`, `chain()`, `cross_downstream()`,
`set_downstream/upstream`, TaskFlow data passing) and the functions used as callbacks. It
resolves string and dict expressions without running code: literals, module constants
(also those of sibling modules in the DAG folders, e.g. a shared default_args.py),
f-strings, `+`, str.format() and `{**base, ...}`.

What it does not model: anything computed at run time (loops run once over their body,
both branches of an `if` are taken, function calls other than the above are opaque),
dynamic DAG factories' generated ids, imports from outside the DAG folders, Airflow's own
defaults. dag.airflow_import_errors is the check that runs Airflow's real loader, in a
sandboxed subprocess (grader/airflow_parse.py). Nothing here judges: the rules in
checks/dag/ do.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.python_source import (
    Function,
    PythonModule,
    const_str,
    dotted,
    is_main_guard,
    module_assigns,
    names_in,
    parse_bounded,
)
from checks.static_context import StaticContext, read_text

_OPERATOR_SUFFIXES = ("Operator", "Sensor")
_OPERATOR_NAMES = {"DbtTaskGroup", "DbtDag", "DbtRunOperator", "DbtTestOperator", "DbtBuildOperator"}

@dataclass
class DagDef:
    """One DAG a file defines."""

    name: str  # dag_id when literal, else the variable/function name
    line: int
    style: str  # "with" | "assign" | "decorator"
    kwargs: dict[str, ast.expr]
    var: str | None = None
    docstring: str | None = None
    attrs: dict[str, ast.expr] = field(default_factory=dict)  # dag.doc_md = ... after creation
    tasks: list[str] = field(default_factory=list)


@dataclass
class TaskDef:
    """One task (operator, sensor or TaskFlow call) a file defines."""

    key: str
    task_id: str | None
    kind: str  # operator class name, or "@task", "@task.bash", ...
    line: int
    kwargs: dict[str, ast.expr]
    func: Function | None = None  # TaskFlow body or python_callable
    dag: DagDef | None = None


def _keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {keyword.arg: keyword.value for keyword in call.keywords if keyword.arg}


class DagFile(PythonModule):
    """One DAG file, parsed (never executed), with its DAGs, tasks and dependency edges."""

    def __init__(self, path: Path, rel: str, text: str, shared_assigns: dict[str, dict[str, ast.expr]] | None = None):
        super().__init__(path, rel, text, shared_assigns)
        self.taskflow: dict[str, tuple[Function, str, dict[str, ast.expr]]] = {}
        self.group_funcs: dict[str, set[str]] = {}
        self.dags: list[DagDef] = []
        self.tasks: dict[str, TaskDef] = {}
        self.edges: set[tuple[str, str]] = set()
        self.vars: dict[str, set[str]] = {}
        self.dag_vars: dict[str, DagDef] = {}
        self.callbacks: set[str] = set()  # names of functions used as callbacks
        self._seen_calls: dict[int, set[str]] = {}
        if self.tree is None:
            return
        self._collect_callbacks(self.tree)
        self._exec(self.tree.body, dag=None, group=None)
        if len(self.dags) == 1:
            for task in self.tasks.values():
                task.dag = task.dag or self.dags[0]
        for task in self.tasks.values():
            if task.dag is not None and task.key not in task.dag.tasks:
                task.dag.tasks.append(task.key)

    def task_text(self, task: TaskDef) -> str:
        """Everything a task would run: its argument strings and its callable's strings."""
        parts: list[str] = []
        for name, value in task.kwargs.items():
            if name in ("doc", "doc_md", "doc_rst", "doc_json", "doc_yaml"):
                continue
            parts.extend(self.strings(value))
        if task.func is not None:
            parts.extend(self.function_strings(task.func, set()))
        return "\n".join(parts)

    def task_calls(self, task: TaskDef) -> list[str]:
        """Dotted names of everything the task's callable calls (resolved through imports)."""
        return self.calls_in(task.func) if task.func is not None else []

    def decorator_kind(self, decorator: ast.expr) -> tuple[str | None, dict[str, ast.expr]]:
        """("dag" | "task_group" | "@task..." | None, the decorator's keyword arguments)."""
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = dotted(target)
        full = self.resolve(name)
        kwargs = _keywords(decorator) if isinstance(decorator, ast.Call) else {}
        head = name.split(".")[0]
        last = full.split(".")
        if head in ("dag",) or (last and last[-1] == "dag" and "airflow" in full):
            return "dag", kwargs
        if head in ("task_group",) or full.endswith(".task_group"):
            return "task_group", kwargs
        if head in ("task", "setup", "teardown") or ".task" in f".{full}" and "airflow" in full:
            return "@" + name, kwargs
        return None, kwargs

    # -- collection --------------------------------------------------------------------------
    def _collect_callbacks(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg and node.arg.startswith(("on_", "sla_miss")):
                self.callbacks.update(names_in(node.value))
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if (const_str(key) or "").startswith(("on_", "sla_miss")):
                        self.callbacks.update(names_in(value))

    def _is_dag_call(self, call: ast.Call) -> bool:
        return self.resolve(dotted(call.func)).split(".")[-1] in ("DAG", "DbtDag")

    def _is_group_call(self, call: ast.Call) -> bool:
        return self.resolve(dotted(call.func)).split(".")[-1] == "TaskGroup"

    def _operator_name(self, call: ast.Call) -> str | None:
        name = dotted(call.func)
        for suffix in (".partial.expand", ".partial.expand_kwargs", ".partial"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        full = self.resolve(name)
        last = full.split(".")[-1]
        if last.endswith(_OPERATOR_SUFFIXES) or last in _OPERATOR_NAMES:
            return last
        if (".operators." in full or ".sensors." in full) and last[:1].isupper():
            return last
        return None

    def _new_dag(self, call: ast.Call | None, kwargs: dict[str, ast.expr], style: str, line: int, var: str | None,
                 fallback: str, docstring: str | None = None) -> DagDef:
        dag_id = const_str(kwargs.get("dag_id"))
        if dag_id is None and call is not None and call.args:
            dag_id = const_str(call.args[0])
        dag = DagDef(name=dag_id or fallback, line=line, style=style, kwargs=kwargs, var=var, docstring=docstring)
        self.dags.append(dag)
        if var:
            self.dag_vars[var] = dag
        if call is not None and self.resolve(dotted(call.func)).endswith("DbtDag"):
            self._add_task("dbt_dag", None, "DbtDag", line, kwargs, None, dag, None)
        return dag

    def _add_task(self, key: str, task_id: str | None, kind: str, line: int, kwargs: dict[str, ast.expr],
                  func: Function | None, dag: DagDef | None, group: set[str] | None) -> str:
        base, number = key, 2
        while key in self.tasks:
            key, number = f"{base}__{number}", number + 1
        dag_argument = kwargs.get("dag")
        if dag is None and isinstance(dag_argument, ast.Name) and dag_argument.id in self.dag_vars:
            dag = self.dag_vars[dag_argument.id]
        self.tasks[key] = TaskDef(key, task_id, kind, line, kwargs, func, dag)
        if group is not None:
            group.add(key)
        return key

    # -- the abstract interpreter over the statements run at import --------------------------
    def _exec(self, stmts: Iterable[ast.stmt], dag: DagDef | None, group: set[str] | None) -> None:
        for stmt in stmts:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._def(stmt, dag, group)
            elif isinstance(stmt, ast.With):
                self._with(stmt, dag, group)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                self._assign(stmt, dag, group)
            elif isinstance(stmt, ast.Expr):
                self._evaluate(stmt.value, dag, group)
            elif isinstance(stmt, ast.If):
                if is_main_guard(stmt):
                    continue
                self._exec(stmt.body, dag, group)
                self._exec(stmt.orelse, dag, group)
            elif isinstance(stmt, (ast.For, ast.While, ast.AsyncFor)):
                self._exec(stmt.body, dag, group)
            elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
                for part in (stmt.body, *[handler.body for handler in stmt.handlers], stmt.orelse, stmt.finalbody):  # type: ignore[attr-defined]
                    self._exec(part, dag, group)
            elif isinstance(stmt, ast.Return) and stmt.value is not None:
                self._evaluate(stmt.value, dag, group)

    def _def(self, function: Function, dag: DagDef | None, group: set[str] | None) -> None:
        for decorator in function.decorator_list:
            kind, kwargs = self.decorator_kind(decorator)
            if kind == "dag":
                new = self._new_dag(None, kwargs, "decorator", function.lineno, None, function.name,
                                    ast.get_docstring(function))
                self.dag_vars[function.name] = new
                self._exec(function.body, new, None)
                return
            if kind == "task_group":
                members: set[str] = set()
                self._exec(function.body, dag, members)
                if group is not None:
                    group.update(members)
                self.group_funcs[function.name] = members
                return
            if kind and kind.startswith("@"):
                self.taskflow[function.name] = (function, kind, kwargs)
                return

    def _with(self, stmt: ast.With, dag: DagDef | None, group: set[str] | None) -> None:
        new_dag, new_group = dag, group
        bound: list[tuple[str, Any]] = []
        for item in stmt.items:
            context = item.context_expr
            var = item.optional_vars.id if isinstance(item.optional_vars, ast.Name) else None
            if isinstance(context, ast.Call) and self._is_dag_call(context):
                new_dag = self._new_dag(context, _keywords(context), "with", context.lineno, var, var or "dag")
            elif isinstance(context, ast.Call) and self._is_group_call(context):
                new_group = set()
                if var:
                    bound.append((var, new_group))
            else:
                self._evaluate(context, dag, group)
        self._exec(stmt.body, new_dag, new_group)
        if new_group is not group and group is not None and new_group is not None:
            group.update(new_group)
        for var, members in bound:
            self.vars[var] = set(members)

    def _assign(self, stmt: ast.Assign | ast.AnnAssign | ast.AugAssign, dag: DagDef | None,
                group: set[str] | None) -> None:
        value = stmt.value
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if value is None:
            return
        for target in targets:
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in self.dag_vars:
                self.dag_vars[target.value.id].attrs[target.attr] = value
        if isinstance(value, ast.Call) and self._is_dag_call(value):
            var = targets[0].id if isinstance(targets[0], ast.Name) else None
            self._new_dag(value, _keywords(value), "assign", value.lineno, var, var or "dag")
            return
        if isinstance(value, ast.Call) and dotted(value.func) in self.dag_vars:
            return  # calling a @dag function
        keys = self._evaluate(value, dag, group)
        for target in targets:
            if isinstance(target, ast.Name) and keys:
                self.vars[target.id] = keys
            elif isinstance(target, (ast.Tuple, ast.List)) and keys:
                for element in target.elts:
                    if isinstance(element, ast.Name):
                        self.vars[element.id] = keys

    def _evaluate(self, node: ast.AST | None, dag: DagDef | None, group: set[str] | None) -> set[str]:
        """Task keys an expression evaluates to; records tasks and edges on the way."""
        if node is None:
            return set()
        if isinstance(node, ast.Name):
            if node.id in self.vars:
                return set(self.vars[node.id])
            if node.id in self.group_funcs:
                return set(self.group_funcs[node.id])
            return set()
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            out: set[str] = set()
            for element in node.elts:
                out |= self._evaluate(element, dag, group)
            return out
        if isinstance(node, ast.Starred):
            return self._evaluate(node.value, dag, group)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.RShift, ast.LShift)):
            left = self._evaluate(node.left, dag, group)
            right = self._evaluate(node.right, dag, group)
            if isinstance(node.op, ast.RShift):
                self.edges.update((before, after) for before in left for after in right)
            else:
                self.edges.update((after, before) for before in left for after in right)
            return right
        if isinstance(node, ast.Attribute):
            return self._evaluate(node.value, dag, group) if node.attr == "output" else set()
        if isinstance(node, ast.Subscript):
            return self._evaluate(node.value, dag, group)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            return self._evaluate(node.elt, dag, group)
        if isinstance(node, ast.Call):
            return self._evaluate_call(node, dag, group)
        return set()

    def _evaluate_all(self, nodes: Iterable[ast.AST], dag: DagDef | None, group: set[str] | None) -> set[str]:
        out: set[str] = set()
        for node in nodes:
            out |= self._evaluate(node, dag, group)
        return out

    def _evaluate_call(self, call: ast.Call, dag: DagDef | None, group: set[str] | None) -> set[str]:
        if id(call) in self._seen_calls:
            return self._seen_calls[id(call)]
        self._seen_calls[id(call)] = set()
        name = dotted(call.func)
        arguments = list(call.args) + [keyword.value for keyword in call.keywords]
        method = name.rsplit(".", 1)[-1] if "." in name else ""
        result: set[str] = set()
        if operator := self._operator_name(call):
            result = {self._operator_task(call, operator, dag, group)}
        elif name in ("chain", "airflow.models.baseoperator.chain") or self.resolve(name).endswith(".chain"):
            previous: set[str] = set()
            for arg in call.args:
                current = self._evaluate(arg, dag, group)
                self.edges.update((before, after) for before in previous for after in current)
                previous = current
            result = previous
        elif name.endswith("cross_downstream"):
            upstream = self._evaluate(call.args[0], dag, group) if call.args else set()
            downstream = self._evaluate(call.args[1], dag, group) if len(call.args) > 1 else set()
            self.edges.update((before, after) for before in upstream for after in downstream)
        elif method in ("set_downstream", "set_upstream") and isinstance(call.func, ast.Attribute):
            own = self._evaluate(call.func.value, dag, group)
            other = self._evaluate_all(call.args, dag, group)
            if method == "set_downstream":
                self.edges.update((before, after) for before in own for after in other)
            else:
                self.edges.update((before, after) for after in own for before in other)
        else:
            base = name.split(".")[0]
            if base in self.taskflow and (name == base or method in ("override", "expand", "partial", "expand_kwargs")):
                key = self._taskflow_task(call, base, dag, group)
                self.edges.update((up, key) for up in self._evaluate_all(arguments, dag, group))
                result = {key}
            elif base in self.group_funcs:
                upstream = self._evaluate_all(arguments, dag, group)
                members = self.group_funcs[base]
                self.edges.update((up, member) for up in upstream for member in members)
                result = set(members)
            else:
                if isinstance(call.func, ast.Attribute):
                    self._evaluate(call.func.value, dag, group)
                self._evaluate_all(arguments, dag, group)
        self._seen_calls[id(call)] = result
        return result

    def _operator_task(self, call: ast.Call, operator: str, dag: DagDef | None, group: set[str] | None) -> str:
        for keyword in call.keywords:  # operators nested in arguments (rare) still count
            self._evaluate(keyword.value, dag, group)
        kwargs = _keywords(call)
        if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Call):
            kwargs = {**_keywords(call.func.value), **kwargs}  # X.partial(...).expand(...)
        callable_arg = kwargs.get("python_callable")
        func = self.functions.get(callable_arg.id) if isinstance(callable_arg, ast.Name) else None
        task_id = const_str(kwargs.get("task_id")) or (
            const_str(call.args[0]) if call.args and operator == "DbtTaskGroup" else None
        )
        return self._add_task(task_id or operator, task_id, operator, call.lineno, kwargs, func, dag, group)

    def _taskflow_task(self, call: ast.Call, name: str, dag: DagDef | None, group: set[str] | None) -> str:
        function, kind, decorator_kwargs = self.taskflow[name]
        overrides: dict[str, ast.expr] = {}
        inner = call
        while isinstance(inner.func, ast.Attribute) and isinstance(inner.func.value, ast.Call):
            inner = inner.func.value  # f.override(task_id=...)(...)
            overrides.update(_keywords(inner))
        kwargs = {**decorator_kwargs, **overrides}
        task_id = const_str(kwargs.get("task_id")) or function.name
        return self._add_task(task_id, task_id, kind, call.lineno, kwargs, function, dag, group)

    # -- graph queries -------------------------------------------------------------------------
    def downstream(self, keys: Iterable[str]) -> set[str]:
        """Every task that runs after one of `keys`."""
        out: set[str] = set()
        pending = list(keys)
        while pending:
            key = pending.pop()
            for before, after in self.edges:
                if before == key and after not in out:
                    out.add(after)
                    pending.append(after)
        return out


def dag_files(ctx: StaticContext) -> list[DagFile]:
    """Every DAG file of the workspace, interpreted once per context."""

    def build() -> list[DagFile]:
        texts = {path: (read_text(path) or "") for path in ctx.dag_files}
        shared: dict[str, dict[str, ast.expr]] = {}
        for path, text in texts.items():  # module-level constants of sibling modules (default_args.py)
            try:
                tree = parse_bounded(text, str(path))
            except (SyntaxError, ValueError):
                continue
            shared[path.stem] = module_assigns(tree)
        return [DagFile(path, ctx.rel(path), text, shared) for path, text in texts.items()]

    return ctx.cached("dag.files", build)


def all_dags(ctx: StaticContext) -> list[tuple[DagFile, DagDef]]:
    """Every DAG defined in the workspace, with its file."""
    return [(file, dag) for file in dag_files(ctx) for dag in file.dags]


def default_args(file: DagFile, dag: DagDef) -> dict[str, ast.expr] | None:
    """The DAG's default_args ({} when it sets none; None when they cannot be resolved)."""
    value = dag.kwargs.get("default_args")
    if value is None:
        return {}
    return file.dict_value(value)
