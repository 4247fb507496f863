"""`dag.*`: static findings on the candidate's Airflow DAG files.

Candidate code is untrusted: a DAG file is read as text and parsed with `ast`; it is never
imported, compiled to bytecode or executed in the grader's process. Airflow 2 and 3 styles
are understood: `with DAG(...)`, `dag = DAG(...)`, the `@dag` decorator, TaskFlow `@task`
functions, `from airflow.sdk import DAG`, classic operators and `>>`/`<<`/`chain()`
dependencies.

The optional `dag.airflow_import_errors` check does run the DAGs, with Airflow's own loader,
in a separate sandboxed, time-limited process (grader/airflow_parse.py); it is off unless
the context names an Airflow interpreter.
"""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from checks.registry import CheckResult, Finding, check
from checks.static_context import StaticContext, read_text

# =====================================================================================
# Per-file model built from the syntax tree
# =====================================================================================


@dataclass
class DagDef:
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
    key: str
    task_id: str | None
    kind: str  # operator class name, or "@task", "@task.bash", ...
    line: int
    kwargs: dict[str, ast.expr]
    func: ast.FunctionDef | ast.AsyncFunctionDef | None = None  # TaskFlow body or python_callable
    dag: DagDef | None = None


def dotted(node: ast.AST | None, through_calls: bool = True) -> str:
    """`a.b.c` for Name/Attribute chains (calls in between are skipped: `X.partial().expand` →
    X.partial.expand; with through_calls=False a call in the chain gives "")."""
    parts: list[str] = []
    while node is not None:
        if isinstance(node, ast.Call) and not through_calls:
            return ""
        if isinstance(node, ast.Name):
            parts.append(node.id)
            break
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            break
    return ".".join(reversed(parts))


def _const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


_OPERATOR_SUFFIXES = ("Operator", "Sensor")
_OPERATOR_NAMES = {"DbtTaskGroup", "DbtDag", "DbtRunOperator", "DbtTestOperator", "DbtBuildOperator"}


class DagFile:
    """One DAG file, parsed (never executed), with its DAGs, tasks and dependency edges."""

    def __init__(self, path: Path, rel: str, text: str, shared_assigns: dict[str, dict[str, ast.expr]] | None = None):
        self.path, self.rel, self.text = path, rel, text
        self.lines = text.splitlines()
        self.error: SyntaxError | None = None
        self.tree: ast.Module | None = None
        self.imports: dict[str, str] = {}
        self.assigns: dict[str, ast.expr] = {}
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.taskflow: dict[str, tuple[ast.FunctionDef | ast.AsyncFunctionDef, str, dict[str, ast.expr]]] = {}
        self.group_funcs: dict[str, set[str]] = {}
        self.dags: list[DagDef] = []
        self.tasks: dict[str, TaskDef] = {}
        self.edges: set[tuple[str, str]] = set()
        self.vars: dict[str, set[str]] = {}
        self.dag_vars: dict[str, DagDef] = {}
        self.callbacks: set[str] = set()  # names of functions used as callbacks
        self._seen_calls: dict[int, set[str]] = {}
        self._shared = shared_assigns or {}
        try:
            self.tree = parse_bounded(text, str(path))
        except (SyntaxError, ValueError) as exc:  # ValueError: null bytes
            self.error = exc if isinstance(exc, SyntaxError) else SyntaxError(str(exc))
            return
        self._collect_defs(self.tree)
        self._exec(self.tree.body, dag=None, group=None)
        if len(self.dags) == 1:
            for t in self.tasks.values():
                t.dag = t.dag or self.dags[0]
        for t in self.tasks.values():
            if t.dag is not None and t.key not in t.dag.tasks:
                t.dag.tasks.append(t.key)

    # -- helpers -------------------------------------------------------------------------
    def line_text(self, line: int | None) -> str | None:
        if not line or line > len(self.lines):
            return None
        return self.lines[line - 1].strip()[:240]

    def resolve(self, name: str) -> str:
        head, _, rest = name.partition(".")
        full = self.imports.get(head, head)
        return f"{full}.{rest}" if rest else full

    def module_value(self, node: ast.expr | None, depth: int = 0) -> ast.expr | None:
        """Follow a Name to its module-level assignment (also in sibling DAG-folder modules)."""
        while isinstance(node, ast.Name) and depth < 5:
            depth += 1
            if node.id in self.assigns:
                node = self.assigns[node.id]
                continue
            full = self.imports.get(node.id, "")
            mod, _, attr = full.rpartition(".")
            shared = self._shared.get(mod.rsplit(".", 1)[-1], {})
            if attr in shared:
                node = shared[attr]
                continue
            return node
        return node

    def dict_value(self, node: ast.expr | None, depth: int = 0) -> dict[str, ast.expr] | None:
        """Keys of a dict literal / dict(...) call / {**base, ...}; None when unresolvable."""
        node = self.module_value(node)
        if node is None or depth > 5:
            return None
        if isinstance(node, ast.Dict):
            out: dict[str, ast.expr] = {}
            for k, v in zip(node.keys, node.values):
                if k is None:
                    inner = self.dict_value(v, depth + 1)
                    if inner is None:
                        return None
                    out.update(inner)
                elif (ks := _const_str(k)) is not None:
                    out[ks] = v
            return out
        if isinstance(node, ast.Call) and dotted(node.func) == "dict":
            out = {}
            for a in node.args:
                inner = self.dict_value(a, depth + 1)
                if inner is None:
                    return None
                out.update(inner)
            for kw in node.keywords:
                if kw.arg is None:
                    inner = self.dict_value(kw.value, depth + 1)
                    if inner is None:
                        return None
                    out.update(inner)
                else:
                    out[kw.arg] = kw.value
            return out
        return None

    def render(self, node: ast.AST | None, depth: int = 0) -> str | None:
        """Best-effort value of a string expression: literals, module constants, f-strings,
        `+` concatenation and str.format() with literal arguments (no code is run)."""
        if node is None or depth > 6:
            return None
        if (c := _const_str(node)) is not None:
            return c
        if isinstance(node, ast.Name):
            v = self.module_value(node)
            return self.render(v, depth + 1) if v is not node else None
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                if isinstance(v, ast.FormattedValue):
                    r = self.render(v.value, depth + 1)
                    parts.append(r if r is not None else "{" + ast.unparse(v.value) + "}")
                else:
                    parts.append(_const_str(v) or "")
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.render(node.left, depth + 1), self.render(node.right, depth + 1)
            if left is not None or right is not None:
                return (left or "") + (right or "")
            return None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            base = self.render(node.func.value, depth + 1)
            if base is None:
                return None
            kw = {k.arg: self.render(k.value, depth + 1) for k in node.keywords if k.arg}
            args = [self.render(a, depth + 1) for a in node.args]

            class _Keep(dict):
                def __missing__(self, key: str) -> str:
                    return "{" + key + "}"

            try:
                return string.Formatter().vformat(
                    base,
                    [a if a is not None else "{}" for a in args],
                    _Keep({k: v for k, v in kw.items() if v is not None}),
                )
            except (ValueError, IndexError, KeyError, AttributeError):
                return base
        return None

    def strings(self, node: ast.AST | None, depth: int = 0) -> list[str]:
        """String constants in an expression (lists joined by spaces, names followed once)."""
        if node is None or depth > 4:
            return []
        if isinstance(node, (ast.JoinedStr, ast.BinOp, ast.Call)):
            rendered = self.render(node)
            if rendered is not None:
                return [rendered]
        if isinstance(node, ast.Name):
            v = self.module_value(node)
            return self.strings(v, depth + 1) if v is not node else []
        if isinstance(node, (ast.List, ast.Tuple)):
            parts = [" ".join(self.strings(e, depth + 1)) for e in node.elts]
            return [" ".join(p for p in parts if p)]
        out = []
        for sub in ast.walk(node):
            s = _const_str(sub)
            if s is not None:
                out.append(s)
            elif isinstance(sub, (ast.List, ast.Tuple)) and sub is not node:
                joined = " ".join(_const_str(e) or "" for e in sub.elts).strip()
                if joined:
                    out.append(joined)
            elif isinstance(sub, ast.Name) and sub is not node and sub.id in self.assigns:
                v = self.assigns[sub.id]
                if isinstance(v, (ast.Constant, ast.List, ast.Tuple, ast.JoinedStr)):
                    out.extend(self.strings(v, depth + 1))
        return out

    def task_text(self, t: TaskDef) -> str:
        """Everything a task would run: its argument strings and its callable's strings."""
        parts: list[str] = []
        for k, v in t.kwargs.items():
            if k in ("doc", "doc_md", "doc_rst", "doc_json", "doc_yaml"):
                continue
            parts.extend(self.strings(v))
        if t.func is not None:
            parts.extend(self._func_strings(t.func, set()))
        return "\n".join(parts)

    def _func_strings(self, fn: ast.AST, seen: set[str]) -> list[str]:
        body = list(getattr(fn, "body", []))
        if body and isinstance(body[0], ast.Expr) and _const_str(body[0].value) is not None:
            body = body[1:]  # not the docstring
        out: list[str] = []
        for stmt in body:
            out.extend(self.strings(stmt))
            for c in ast.walk(stmt):
                if (
                    isinstance(c, ast.Call)
                    and isinstance(c.func, ast.Name)
                    and c.func.id in self.functions
                    and c.func.id not in seen
                ):
                    seen.add(c.func.id)
                    out.extend(self._func_strings(self.functions[c.func.id], seen))
        return out

    def task_calls(self, t: TaskDef) -> list[str]:
        """Dotted names of everything the task's callable calls (resolved through imports)."""
        out = []
        nodes: list[ast.AST] = [t.func] if t.func is not None else []
        for fn in list(nodes):
            for c in ast.walk(fn):
                if isinstance(c, ast.Call):
                    out.append(self.resolve(dotted(c.func)))
                    if (
                        isinstance(c.func, ast.Name)
                        and c.func.id in self.functions
                        and self.functions[c.func.id] not in nodes
                    ):
                        nodes.append(self.functions[c.func.id])
                        for c2 in ast.walk(self.functions[c.func.id]):
                            if isinstance(c2, ast.Call):
                                out.append(self.resolve(dotted(c2.func)))
        return out

    # -- collection ------------------------------------------------------------------------
    def _collect_defs(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.imports[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    self.imports[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.setdefault(node.name, node)
            elif isinstance(node, ast.keyword) and node.arg and node.arg.startswith(("on_", "sla_miss")):
                self.callbacks.update(_names_in(node.value))
            elif isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values):
                    if (_const_str(k) or "").startswith(("on_", "sla_miss")):
                        self.callbacks.update(_names_in(v))
        for stmt in tree.body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for tg in targets:
                    if isinstance(tg, ast.Name):
                        self.assigns[tg.id] = stmt.value

    def _decorator_kind(self, dec: ast.expr) -> tuple[str | None, dict[str, ast.expr]]:
        target = dec.func if isinstance(dec, ast.Call) else dec
        name = dotted(target)
        full = self.resolve(name)
        kwargs = {kw.arg: kw.value for kw in dec.keywords if kw.arg} if isinstance(dec, ast.Call) else {}
        head = name.split(".")[0]
        last = full.split(".")
        if head in ("dag",) or (last and last[-1] == "dag" and "airflow" in full):
            return "dag", kwargs
        if head in ("task_group",) or full.endswith(".task_group"):
            return "task_group", kwargs
        if head in ("task", "setup", "teardown") or ".task" in f".{full}" and "airflow" in full:
            return "@" + name, kwargs
        return None, kwargs

    def _is_dag_call(self, call: ast.Call) -> bool:
        last = self.resolve(dotted(call.func)).split(".")[-1]
        return last in ("DAG", "DbtDag")

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

    def _new_dag(
        self,
        call: ast.Call | None,
        kwargs: dict[str, ast.expr],
        style: str,
        line: int,
        var: str | None,
        fallback: str,
        docstring: str | None = None,
    ) -> DagDef:
        dag_id = _const_str(kwargs.get("dag_id"))
        if dag_id is None and call is not None and call.args:
            dag_id = _const_str(call.args[0])
        d = DagDef(name=dag_id or fallback, line=line, style=style, kwargs=kwargs, var=var, docstring=docstring)
        self.dags.append(d)
        if var:
            self.dag_vars[var] = d
        if call is not None and self.resolve(dotted(call.func)).endswith("DbtDag"):
            self._add_task("dbt_dag", None, "DbtDag", line, kwargs, None, d, None)
        return d

    def _add_task(
        self,
        key: str,
        task_id: str | None,
        kind: str,
        line: int,
        kwargs: dict[str, ast.expr],
        func: Any,
        dag: DagDef | None,
        group: set[str] | None,
    ) -> str:
        base, n = key, 2
        while key in self.tasks:
            key, n = f"{base}__{n}", n + 1
        dag_kw = kwargs.get("dag")
        if dag is None and isinstance(dag_kw, ast.Name) and dag_kw.id in self.dag_vars:
            dag = self.dag_vars[dag_kw.id]
        self.tasks[key] = TaskDef(key, task_id, kind, line, kwargs, func, dag)
        if group is not None:
            group.add(key)
        return key

    # -- a tiny abstract interpreter over the parse-time statements -------------------------
    def _exec(self, stmts: Iterable[ast.stmt], dag: DagDef | None, group: set[str] | None) -> None:
        for stmt in stmts:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._def(stmt, dag, group)
            elif isinstance(stmt, ast.With):
                self._with(stmt, dag, group)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                self._assign(stmt, dag, group)
            elif isinstance(stmt, ast.Expr):
                self._ev(stmt.value, dag, group)
            elif isinstance(stmt, ast.If):
                if _is_main_guard(stmt):
                    continue
                self._exec(stmt.body, dag, group)
                self._exec(stmt.orelse, dag, group)
            elif isinstance(stmt, (ast.For, ast.While, ast.AsyncFor)):
                self._exec(stmt.body, dag, group)
            elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
                for part in (stmt.body, *[h.body for h in stmt.handlers], stmt.orelse, stmt.finalbody):  # type: ignore[attr-defined]
                    self._exec(part, dag, group)
            elif isinstance(stmt, ast.Return) and stmt.value is not None:
                self._ev(stmt.value, dag, group)

    def _def(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, dag: DagDef | None, group: set[str] | None) -> None:
        for dec in fn.decorator_list:
            kind, kwargs = self._decorator_kind(dec)
            if kind == "dag":
                d = self._new_dag(None, kwargs, "decorator", fn.lineno, None, fn.name, ast.get_docstring(fn))
                self.dag_vars[fn.name] = d
                self._exec(fn.body, d, None)
                return
            if kind == "task_group":
                members: set[str] = set()
                self._exec(fn.body, dag, members)
                if group is not None:
                    group.update(members)
                self.group_funcs[fn.name] = members
                return
            if kind and kind.startswith("@"):
                self.taskflow[fn.name] = (fn, kind, kwargs)
                return

    def _with(self, stmt: ast.With, dag: DagDef | None, group: set[str] | None) -> None:
        new_dag, new_group = dag, group
        bound: list[tuple[str, Any]] = []
        for item in stmt.items:
            ce = item.context_expr
            var = item.optional_vars.id if isinstance(item.optional_vars, ast.Name) else None
            if isinstance(ce, ast.Call) and self._is_dag_call(ce):
                kwargs = {kw.arg: kw.value for kw in ce.keywords if kw.arg}
                new_dag = self._new_dag(ce, kwargs, "with", ce.lineno, var, var or "dag")
            elif isinstance(ce, ast.Call) and self._is_group_call(ce):
                new_group = set()
                if var:
                    bound.append((var, new_group))
            else:
                self._ev(ce, dag, group)
        self._exec(stmt.body, new_dag, new_group)
        if new_group is not group and group is not None and new_group is not None:
            group.update(new_group)
        for var, members in bound:
            self.vars[var] = set(members)

    def _assign(self, stmt: ast.stmt, dag: DagDef | None, group: set[str] | None) -> None:
        value = getattr(stmt, "value", None)
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target")]
        if value is None:
            return
        for tg in targets:
            if isinstance(tg, ast.Attribute) and isinstance(tg.value, ast.Name) and tg.value.id in self.dag_vars:
                self.dag_vars[tg.value.id].attrs[tg.attr] = value
        if isinstance(value, ast.Call) and self._is_dag_call(value):
            var = targets[0].id if isinstance(targets[0], ast.Name) else None
            kwargs = {kw.arg: kw.value for kw in value.keywords if kw.arg}
            self._new_dag(value, kwargs, "assign", value.lineno, var, var or "dag")
            return
        if isinstance(value, ast.Call) and dotted(value.func) in self.dag_vars:
            return  # calling a @dag function
        keys = self._ev(value, dag, group)
        for tg in targets:
            if isinstance(tg, ast.Name) and keys:
                self.vars[tg.id] = keys
            elif isinstance(tg, (ast.Tuple, ast.List)) and keys:
                for e in tg.elts:
                    if isinstance(e, ast.Name):
                        self.vars[e.id] = keys

    def _ev(self, node: ast.AST | None, dag: DagDef | None, group: set[str] | None) -> set[str]:
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
            for e in node.elts:
                out |= self._ev(e, dag, group)
            return out
        if isinstance(node, ast.Starred):
            return self._ev(node.value, dag, group)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.RShift, ast.LShift)):
            left = self._ev(node.left, dag, group)
            right = self._ev(node.right, dag, group)
            pairs = (
                ((a, b) for a in left for b in right)
                if isinstance(node.op, ast.RShift)
                else ((b, a) for a in left for b in right)
            )
            self.edges.update(pairs)
            return right
        if isinstance(node, ast.Attribute):
            return self._ev(node.value, dag, group) if node.attr in ("output",) else self._ev_attr(node, dag, group)
        if isinstance(node, ast.Subscript):
            return self._ev(node.value, dag, group)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            return self._ev(node.elt, dag, group)
        if isinstance(node, ast.Call):
            return self._ev_call(node, dag, group)
        return set()

    def _ev_attr(self, node: ast.Attribute, dag: DagDef | None, group: set[str] | None) -> set[str]:
        return set()

    def _ev_call(self, call: ast.Call, dag: DagDef | None, group: set[str] | None) -> set[str]:
        if id(call) in self._seen_calls:
            return self._seen_calls[id(call)]
        self._seen_calls[id(call)] = set()
        name = dotted(call.func)
        kwargs = {kw.arg: kw.value for kw in call.keywords if kw.arg}
        result: set[str] = set()
        method = name.rsplit(".", 1)[-1] if "." in name else ""
        op = self._operator_name(call)
        if op:
            for kw in call.keywords:  # operators nested in arguments (rare) still count
                self._ev(kw.value, dag, group)
            if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Call):
                kwargs = {**{kw.arg: kw.value for kw in call.func.value.keywords if kw.arg}, **kwargs}
            func = None
            pc = kwargs.get("python_callable")
            if isinstance(pc, ast.Name):
                func = self.functions.get(pc.id)
            task_id = _const_str(kwargs.get("task_id")) or (
                _const_str(call.args[0]) if call.args and op == "DbtTaskGroup" else None
            )
            key = self._add_task(task_id or op, task_id, op, call.lineno, kwargs, func, dag, group)
            result = {key}
        elif name in ("chain", "airflow.models.baseoperator.chain") or self.resolve(name).endswith(".chain"):
            prev: set[str] = set()
            for a in call.args:
                cur = self._ev(a, dag, group)
                self.edges.update((x, y) for x in prev for y in cur)
                prev = cur
            result = prev
        elif name.endswith("cross_downstream"):
            a = self._ev(call.args[0], dag, group) if call.args else set()
            b = self._ev(call.args[1], dag, group) if len(call.args) > 1 else set()
            self.edges.update((x, y) for x in a for y in b)
        elif method in ("set_downstream", "set_upstream") and isinstance(call.func, ast.Attribute):
            me = self._ev(call.func.value, dag, group)
            other = set().union(*[self._ev(a, dag, group) for a in call.args]) if call.args else set()
            pairs = (
                ((x, y) for x in me for y in other)
                if method == "set_downstream"
                else ((y, x) for x in me for y in other)
            )
            self.edges.update(pairs)
        else:
            base = name.split(".")[0]
            tf_name = base if base in self.taskflow else None
            if tf_name and (name == base or method in ("override", "expand", "partial", "expand_kwargs")):
                fn, kind, dkw = self.taskflow[tf_name]
                over = {}
                inner = call
                while isinstance(inner.func, ast.Attribute) and isinstance(inner.func.value, ast.Call):
                    inner = inner.func.value
                    over.update({kw.arg: kw.value for kw in inner.keywords if kw.arg})
                tkw = {**dkw, **over}
                task_id = _const_str(tkw.get("task_id")) or fn.name
                key = self._add_task(task_id, task_id, kind, call.lineno, tkw, fn, dag, group)
                ups: set[str] = set()
                for a in list(call.args) + [kw.value for kw in call.keywords]:
                    ups |= self._ev(a, dag, group)
                self.edges.update((u, key) for u in ups)
                result = {key}
            elif base in self.group_funcs:
                ups = set()
                for a in list(call.args) + [kw.value for kw in call.keywords]:
                    ups |= self._ev(a, dag, group)
                members = self.group_funcs[base]
                self.edges.update((u, m) for u in ups for m in members)
                result = set(members)
            else:
                if isinstance(call.func, ast.Attribute):
                    self._ev(call.func.value, dag, group)
                for a in list(call.args) + [kw.value for kw in call.keywords]:
                    self._ev(a, dag, group)
        self._seen_calls[id(call)] = result
        return result

    # -- graph queries ---------------------------------------------------------------------
    def downstream(self, keys: Iterable[str]) -> set[str]:
        out: set[str] = set()
        stack = list(keys)
        while stack:
            k = stack.pop()
            for a, b in self.edges:
                if a == k and b not in out:
                    out.add(b)
                    stack.append(b)
        return out


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _is_main_guard(stmt: ast.If) -> bool:
    t = stmt.test
    return (
        isinstance(t, ast.Compare)
        and isinstance(t.left, ast.Name)
        and t.left.id == "__name__"
        and any(_const_str(c) == "__main__" for c in t.comparators)
    )


# =====================================================================================
# Context access
# =====================================================================================


# Deeper syntax trees are not analysed: the rules walk them recursively. Real DAG files
# stay under 30 levels; ast.parse itself accepts about 3,000.
MAX_AST_DEPTH = 200


def parse_bounded(text: str, filename: str) -> ast.Module:
    """ast.parse, with nesting too deep to walk safely reported as a SyntaxError."""
    try:
        tree = ast.parse(text, filename=filename)
    except (RecursionError, MemoryError):
        raise SyntaxError("nested too deep for Python's own parser") from None
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_AST_DEPTH:
            raise SyntaxError(f"nested more than {MAX_AST_DEPTH} levels deep: not analysed", (filename, getattr(node, "lineno", 1), 1, None))
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree


def dag_files(ctx: StaticContext) -> list[DagFile]:
    def build() -> list[DagFile]:
        texts = {p: (read_text(p) or "") for p in ctx.dag_files}
        shared: dict[str, dict[str, ast.expr]] = {}
        for p, text in texts.items():  # module-level constants of sibling modules (default_args.py)
            try:
                tree = parse_bounded(text, str(p))
            except (SyntaxError, ValueError):
                continue
            assigns = {}
            for stmt in tree.body:
                if isinstance(stmt, ast.Assign):
                    for tg in stmt.targets:
                        if isinstance(tg, ast.Name):
                            assigns[tg.id] = stmt.value
            shared[p.stem] = assigns
        return [DagFile(p, ctx.rel(p), t, shared) for p, t in texts.items()]

    return ctx.cached("dag.files", build)


def _all_dags(ctx: StaticContext) -> list[tuple[DagFile, DagDef]]:
    return [(f, d) for f in dag_files(ctx) for d in f.dags]


def _finding(f: DagFile, line: int | None, message: str) -> Finding:
    return Finding(message=message, file=f.rel, line=line, snippet=f.line_text(line))


def _result(check_id: str, status: str, score: float, message: str, **evidence: Any) -> CheckResult:
    return CheckResult(check_id, status, score, message, evidence=evidence)  # type: ignore[arg-type]


def _skip_without_dags(check_id: str, ctx: StaticContext, need_defs: bool = True) -> CheckResult | None:
    if not ctx.dag_files:
        return _result(check_id, "skipped", 0.0, "skipped: no Airflow DAG files found in the workspace")
    if need_defs and not _all_dags(ctx):
        broken = sum(1 for f in dag_files(ctx) if f.error)
        why = f" ({broken} file(s) do not parse, see dag.parse_error)" if broken else ""
        return _result(
            check_id, "skipped", 0.0, f"skipped: no DAG definition found in {len(ctx.dag_files)} DAG file(s){why}"
        )
    return None


def _per_dag(check_id: str, ctx: StaticContext, findings: list[Finding], extra: dict | None = None) -> CheckResult:
    total = len(_all_dags(ctx))
    failing = len({(f.file, f.message.split(":")[0]) for f in findings})
    score = 1.0 if not findings else max(0.0, (total - failing) / total) if total else 0.0
    ev: dict[str, Any] = {
        "dags_checked": total,
        "files": [f.rel for f in dag_files(ctx)],
        "findings": [x.to_json() for x in findings],
    }
    ev.update(extra or {})
    if not findings:
        return _result(check_id, "pass", 1.0, f"no findings ({total} DAG(s) checked)", **ev)
    return _result(check_id, "fail", score, f"{len(findings)} finding(s): {findings[0].message}", **ev)


def _ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.file or "", f.line or 0, f.message))


def _falsy(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value in (None, False, 0, "", 0.0)


def _default_args(f: DagFile, d: DagDef) -> dict[str, ast.expr] | None:
    da = d.kwargs.get("default_args")
    if da is None:
        return {}
    return f.dict_value(da)


# =====================================================================================
# Rules
# =====================================================================================


@check("dag.parse_error", severity="error")
def parse_error(ctx: StaticContext) -> CheckResult | list[Finding]:
    """Every DAG file is valid Python (checked with ast, without running it)."""
    if r := _skip_without_dags("dag.parse_error", ctx, need_defs=False):
        return r
    out = []
    for f in dag_files(ctx):
        if f.error is not None:
            line = f.error.lineno
            out.append(_finding(f, line, f"{f.rel} does not parse: {f.error.msg}"))
    return out


@check("dag.no_schedule", severity="warning")
def no_schedule(ctx: StaticContext) -> CheckResult:
    """Each DAG states a schedule (cron, timedelta, timetable or assets); None means it only runs when triggered."""
    if r := _skip_without_dags("dag.no_schedule", ctx):
        return r
    findings = []
    for f, d in _all_dags(ctx):
        key = next((k for k in ("schedule", "schedule_interval", "timetable") if k in d.kwargs), None)
        if key is None:
            findings.append(
                _finding(
                    f,
                    d.line,
                    f"{d.name}: no schedule argument (Airflow 3 default: never "
                    "scheduled; Airflow 2: daily), the pipeline's cadence is unstated",
                )
            )
        elif isinstance(d.kwargs[key], ast.Constant) and d.kwargs[key].value is None:
            findings.append(
                _finding(f, d.kwargs[key].lineno, f"{d.name}: {key}=None, the DAG only runs when triggered by hand")
            )
    return _per_dag("dag.no_schedule", ctx, findings)


@check("dag.catchup_implicit", severity="warning")
def catchup_implicit(ctx: StaticContext) -> CheckResult:
    """Each DAG sets catchup explicitly (its default differs between Airflow 2 and 3 and deployments)."""
    if r := _skip_without_dags("dag.catchup_implicit", ctx):
        return r
    findings = []
    for f, d in _all_dags(ctx):
        if "catchup" not in d.kwargs:
            where = (
                " (catchup in default_args is ignored by the DAG)" if "catchup" in (_default_args(f, d) or {}) else ""
            )
            findings.append(_finding(f, d.line, f"{d.name}: catchup left implicit{where}"))
    return _per_dag("dag.catchup_implicit", ctx, findings)


@check("dag.no_retries", severity="warning")
def no_retries(ctx: StaticContext) -> CheckResult:
    """Tasks retry transient failures: retries (and ideally retry_delay) in default_args or on every task."""
    if r := _skip_without_dags("dag.no_retries", ctx):
        return r
    findings, summary = [], []
    for f, d in _all_dags(ctx):
        da = _default_args(f, d)
        if da is None:
            summary.append({"dag": d.name, "retries": "unresolved default_args"})
            continue
        retries = da.get("retries")
        tasks = [f.tasks[k] for k in d.tasks]
        if retries is not None and not _falsy(retries):
            summary.append(
                {
                    "dag": d.name,
                    "retries": ast.unparse(retries),
                    "retry_delay": ast.unparse(da["retry_delay"]) if "retry_delay" in da else "default (300 s)",
                }
            )
            continue
        missing = [t for t in tasks if "retries" not in t.kwargs or _falsy(t.kwargs["retries"])]
        if tasks and not missing:
            summary.append({"dag": d.name, "retries": "set on every task"})
            continue
        line = retries.lineno if retries is not None else d.line
        names = ", ".join((t.task_id or t.key) for t in missing[:6])
        why = "retries=0 in default_args" if retries is not None else "no retries in default_args"
        findings.append(_finding(f, line, f"{d.name}: {why} and not on task(s) {names or '(none defined)'}"))
        summary.append({"dag": d.name, "retries": None})
    return _per_dag("dag.no_retries", ctx, findings, {"dags": summary})


_NOTIFY = re.compile(r"notif|slack|pagerduty|opsgenie|teams|email|alert|chime|discord|sns", re.I)


@check("dag.no_alerting", severity="warning")
def no_alerting(ctx: StaticContext) -> CheckResult:
    """Failures reach a person: on_failure_callback, email on failure, a notifier, an SLA/deadline callback or an alert task."""
    if r := _skip_without_dags("dag.no_alerting", ctx):
        return r
    findings, summary = [], []
    for f, d in _all_dags(ctx):
        how = _alerting(f, d)
        if how:
            summary.append({"dag": d.name, "alerting": how})
        else:
            findings.append(
                _finding(
                    f,
                    d.line,
                    f"{d.name}: no failure alerting (no on_failure_callback, email on failure, notifier or alert task)",
                )
            )
    return _per_dag("dag.no_alerting", ctx, findings, {"dags": summary})


def _alerting(f: DagFile, d: DagDef) -> list[str]:
    how = []
    da = _default_args(f, d)
    for src, kw in (("DAG", d.kwargs), ("DAG attribute", d.attrs), ("default_args", da or {})):
        for k in ("on_failure_callback", "sla_miss_callback", "deadline", "on_retry_callback"):
            if k in kw and not _falsy(kw[k]):
                how.append(f"{src} {k}")
    if da:
        email = da.get("email")
        if email is not None and not _falsy(email) and not _falsy(da.get("email_on_failure", ast.Constant(True))):
            how.append("default_args email (email_on_failure)")
    if da is None:
        how.append("default_args not resolvable (assumed)")
    for k in d.tasks:
        t = f.tasks[k]
        if "on_failure_callback" in t.kwargs and not _falsy(t.kwargs["on_failure_callback"]):
            how.append(f"task {t.task_id or k} on_failure_callback")
        tr = _const_str(t.kwargs.get("trigger_rule")) or (
            ast.unparse(t.kwargs["trigger_rule"]) if "trigger_rule" in t.kwargs else ""
        )
        if re.search(r"one_failed|all_failed|ONE_FAILED|ALL_FAILED", tr):
            how.append(f"alert task {t.task_id or k} (trigger_rule {tr})")
        if _NOTIFY.search(t.kind) and t.kind.endswith("Operator"):
            how.append(f"notification task {t.task_id or k} ({t.kind})")
    if f.tree is not None and not how:
        for node in ast.walk(f.tree):
            if isinstance(node, ast.Call):
                last = f.resolve(dotted(node.func)).split(".")[-1]
                if last.endswith("Notifier") or re.fullmatch(r"send_\w*notification", last):
                    how.append(f"notifier {last}")
                    break
    return how


_LOG_ONLY = re.compile(r"(^|\.)(print|log|logging|logger|getLogger|debug|info|warning|warn|error|exception|critical)$")


@check("dag.alerting_notifies", severity="warning")
def alerting_notifies(ctx: StaticContext) -> CheckResult:
    """The failure alert reaches a person (email, chat, paging, an HTTP alert), not only a log line nobody reads."""
    if r := _skip_without_dags("dag.alerting_notifies", ctx):
        return r
    findings, summary = [], []
    for f, d in _all_dags(ctx):
        how = _alerting(f, d)
        callbacks = _failure_callbacks(f, d)
        notifying = [h for h in how if "callback" not in h and "not resolvable" not in h]
        notifying += [f"callback {name} ({why})" for name, why in callbacks.items() if why]
        logs_only = [name for name, why in callbacks.items() if not why]
        if notifying:
            summary.append({"dag": d.name, "notifies": notifying})
        elif logs_only:
            findings.append(_finding(f, d.line, f"{d.name}: failure callback {', '.join(logs_only)} only logs or "
                                                "prints; nobody is notified"))
        else:
            findings.append(_finding(f, d.line, f"{d.name}: no failure alerting that reaches a person"))
    return _per_dag("dag.alerting_notifies", ctx, findings, {"dags": summary})


def _failure_callbacks(f: DagFile, d: DagDef) -> dict[str, str | None]:
    """Failure callbacks of a DAG and its tasks -> how each notifies (None: only logs, or unknown)."""
    exprs: list[ast.expr] = []
    da = _default_args(f, d) or {}
    for source in (d.kwargs, d.attrs, da):
        for key in ("on_failure_callback", "sla_miss_callback", "on_retry_callback"):
            if key in source and not _falsy(source[key]):
                exprs.append(source[key])
    for k in d.tasks:
        t = f.tasks[k]
        if "on_failure_callback" in t.kwargs and not _falsy(t.kwargs["on_failure_callback"]):
            exprs.append(t.kwargs["on_failure_callback"])
    out: dict[str, str | None] = {}
    for expr in exprs:
        items = expr.elts if isinstance(expr, (ast.List, ast.Tuple)) else [expr]
        for item in items:
            out[ast.unparse(item)[:80]] = _notifies(f, item, depth=0)
    return out


def _notifies(f: DagFile, node: ast.AST, depth: int) -> str | None:
    """How a callback expression (a function name, a lambda, a notifier call) reaches a person."""
    if depth > 3:
        return None
    if isinstance(node, ast.Name) and node.id in f.functions:
        node = f.functions[node.id]
    elif isinstance(node, ast.Call):
        name = f.resolve(dotted(node.func))
        if _NOTIFY.search(name.split(".")[-1]) or name.split(".")[-1].endswith("Notifier"):
            return name.split(".")[-1]
    for call in (c for c in ast.walk(node) if isinstance(c, ast.Call)):
        name = f.resolve(dotted(call.func))
        last = name.split(".")[-1]
        if _LOG_ONLY.search(name):
            continue
        if _NOTIFY.search(name) or _HTTP_CALL.search(name) or last in ("send_email", "send_email_smtp"):
            return last
        if isinstance(call.func, ast.Name) and call.func.id in f.functions and f.functions[call.func.id] is not node:
            found = _notifies(f, call.func, depth + 1)
            if found:
                return found
    return None


_AIRBYTE = re.compile(r"airbyte", re.I)
_AIRBYTE_API = re.compile(r"connections/sync|/jobs\b|/v1/jobs|api/public|airbyte[^\s]*:8000|:8000/api|:8001/api", re.I)
_HTTP_CALL = re.compile(r"(^|\.)(requests|httpx|urllib|aiohttp|http)\.|HttpHook|HttpOperator|urlopen", re.I)


def _airbyte_kind(f: DagFile, t: TaskDef) -> tuple[str, str] | None:
    """(verdict, reason) for a task that is the Airbyte step: real | no_wait | simulated."""
    text = f.task_text(t)
    calls = f.task_calls(t)
    ident = f"{t.task_id or ''} {t.key} {t.kind}"
    mentions = _AIRBYTE.search(ident) or _AIRBYTE.search(text) or any("airbyte" in c.lower() for c in calls)
    if not mentions:
        return None
    if t.kind == "AirbyteTriggerSyncOperator":
        wait = t.kwargs.get("asynchronous")
        if wait is not None and not _falsy(wait):
            return "no_wait", "AirbyteTriggerSyncOperator(asynchronous=True)"
        return "real", "AirbyteTriggerSyncOperator (waits for the job)"
    if t.kind == "AirbyteJobSensor":
        return "sensor", "AirbyteJobSensor"
    if "Airbyte" in t.kind:
        return "real", t.kind
    if any(c.split(".")[-1] == "AirbyteHook" or "AirbyteHook" in c for c in calls):
        waits = any(c.endswith(("wait_for_job", "get_job_status", "get_job_details")) for c in calls)
        return ("real" if waits else "no_wait"), "AirbyteHook" + (" with wait" if waits else " without waiting")
    http = (
        t.kind in ("HttpOperator", "SimpleHttpOperator", "HttpSensor")
        or any(_HTTP_CALL.search(c) for c in calls)
        or re.search(r"\bcurl\b|\bwget\b|\bhttpie\b|\babctl\b|\boctavia\b", text)
    )
    if http and (_AIRBYTE_API.search(text) or mentions):
        if t.kind == "HttpSensor":
            return "sensor", "HttpSensor polling Airbyte"
        polls = (
            bool(re.search(r"\bwhile\b|\buntil\b|for .* in|status", text))
            or t.func is not None
            and any(isinstance(n, (ast.While, ast.For)) for n in ast.walk(t.func))
            or "wait" in text.lower()
        )
        return ("real" if polls else "no_wait"), "HTTP call to the Airbyte API" + (
            " with polling" if polls else " without waiting for the job"
        )
    return "simulated", f"{t.kind} that only " + (
        "echoes/sleeps"
        if re.search(r"\becho\b|\bsleep\b|print|time\.sleep", text + " ".join(calls))
        else "stands in for the sync"
    )


@check("dag.airbyte_simulated", severity="error")
def airbyte_simulated(ctx: StaticContext) -> CheckResult:
    """The Airbyte step really triggers a sync and waits for it (AirbyteTriggerSyncOperator, a job sensor, or the API with polling), instead of echo/sleep."""
    if r := _skip_without_dags("dag.airbyte_simulated", ctx):
        return r
    findings, seen = [], []
    for f in dag_files(ctx):
        verdicts = {k: _airbyte_kind(f, t) for k, t in f.tasks.items()}
        waits = {k for k, v in verdicts.items() if v and v[0] in ("sensor", "real")}
        for k, v in verdicts.items():
            if v is None:
                continue
            t = f.tasks[k]
            seen.append({"file": f.rel, "task": t.task_id or k, "verdict": v[0], "how": v[1], "line": t.line})
            if v[0] == "simulated":
                findings.append(_finding(f, t.line, f"{t.task_id or k}: Airbyte step is simulated ({v[1]})"))
            elif v[0] == "no_wait" and not (f.downstream([k]) & waits):
                findings.append(
                    _finding(
                        f,
                        t.line,
                        f"{t.task_id or k}: Airbyte sync triggered without waiting "
                        f"for the job ({v[1]}); dbt may read a half-loaded raw dataset",
                    )
                )
    if not seen:
        first = dag_files(ctx)[0]
        findings.append(_finding(first, None, "no Airbyte step in any DAG: extraction is not orchestrated"))
    return _per_dag("dag.airbyte_simulated", ctx, findings, {"airbyte_tasks": seen})


_DBT_CMD = re.compile(r"\bdbt\s+(?:--?[\w-]+(?:[ =]\S+)?\s+)*(run|test|build|seed|snapshot)\b")


def _dbt_kind(f: DagFile, t: TaskDef) -> set[str]:
    kinds: set[str] = set()
    k = t.kind
    if k in ("DbtTaskGroup", "DbtDag"):
        text = ast.unparse(ast.Dict(keys=[ast.Constant(x) for x in t.kwargs], values=list(t.kwargs.values())))
        return {"run"} if re.search(r"TestBehavior\.NONE|['\"]none['\"]", text) else {"build"}
    m = re.match(r"Dbt(Run|Test|Build|Seed|Snapshot)\w*Operator", k)
    if m:
        return {m.group(1).lower()}
    if k == "DbtCloudRunJobOperator":
        return {"build"}
    for m2 in _DBT_CMD.finditer(f.task_text(t)):
        kinds.add(m2.group(1))
    return kinds


@check("dag.dbt_without_tests", severity="error")
def dbt_without_tests(ctx: StaticContext) -> CheckResult:
    """dbt acts as a quality gate: `dbt build`, or `dbt test` after `dbt run` with every downstream task waiting for the tests."""
    if r := _skip_without_dags("dag.dbt_without_tests", ctx):
        return r
    findings, summary = [], []
    any_dbt = False
    for f in dag_files(ctx):
        kinds = {k: _dbt_kind(f, t) for k, t in f.tasks.items()}
        if not any(kinds.values()):
            continue
        any_dbt = True
        runs = {k for k, v in kinds.items() if "run" in v and not ({"test", "build"} & v)}
        tests = {k for k, v in kinds.items() if ({"test", "build"} & v)}
        summary.append({"file": f.rel, "tasks": {f.tasks[k].task_id or k: sorted(v) for k, v in kinds.items() if v}})
        if runs and not tests:
            for k in sorted(runs):
                t = f.tasks[k]
                findings.append(
                    _finding(
                        f,
                        t.line,
                        f"{t.task_id or k}: dbt run without dbt test/build, bad data flows downstream unchecked",
                    )
                )
            continue
        for k in sorted(runs):
            t = f.tasks[k]
            down = f.downstream([k])
            gate = down & tests
            if not gate:
                findings.append(_finding(f, t.line, f"{t.task_id or k}: no dbt test runs after this dbt run"))
                continue
            gated = f.downstream(gate) | gate
            ungated = sorted(f.tasks[x].task_id or x for x in down - gated)
            if ungated:
                findings.append(
                    _finding(
                        f,
                        t.line,
                        f"{t.task_id or k}: task(s) {', '.join(ungated)} run after "
                        "dbt run without waiting for dbt test",
                    )
                )
    if not any_dbt:
        findings.append(_finding(dag_files(ctx)[0], None, "no DAG runs dbt"))
    return _per_dag("dag.dbt_without_tests", ctx, findings, {"dbt_tasks": summary})


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
_NOT_A_SECRET = re.compile(
    r"^(\{\{.*|\$.*|%.*|<.*>|\*+|x+|none|null|true|false|str|string|secret|password|token|"
    r"env|var|os\.environ.*|redacted|\.\.\.|)$",
    re.I,
)


def _mask(line: str | None, value: str) -> str | None:
    if line is None or not value:
        return line
    return line.replace(value, "***")


def _docstring_nodes(tree: ast.Module) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and _const_str(body[0].value) is not None:
                out.add(id(body[0].value))
        if isinstance(node, ast.keyword) and node.arg in ("doc_md", "doc", "description", "doc_rst"):
            for sub in ast.walk(node.value):
                out.add(id(sub))
    return out


@check("dag.secrets_in_code", severity="error")
def secrets_in_code(ctx: StaticContext) -> CheckResult | list[Finding]:
    """No passwords, tokens or credentialed connection URIs in DAG code; use Airflow connections, variables or a secrets backend."""
    if r := _skip_without_dags("dag.secrets_in_code", ctx, need_defs=False):
        return r
    out: list[Finding] = []
    for f in dag_files(ctx):
        if f.tree is not None:
            out.extend(_secrets_in_file(f))
    return _ordered(out)


def _secrets_in_file(f: DagFile) -> list[Finding]:
    assert f.tree is not None
    out: list[Finding] = []
    docs = _docstring_nodes(f.tree)
    seen: set[tuple[int, str]] = set()

    def add(line: int, what: str, value: str) -> None:
        if (line, what) in seen:
            return
        seen.add((line, what))
        out.append(
            Finding(message=f"{f.rel}:{line}: {what}", file=f.rel, line=line, snippet=_mask(f.line_text(line), value))
        )

    for node in ast.walk(f.tree):
        pairs: list[tuple[str, ast.expr]] = []
        if isinstance(node, ast.keyword) and node.arg:
            pairs.append((node.arg, node.value))
        elif isinstance(node, ast.Dict):
            pairs.extend(
                (k.value, v)
                for k, v in zip(node.keys, node.values)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            )
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for tg in targets:
                if isinstance(tg, ast.Name):
                    pairs.append((tg.id, node.value))
                elif isinstance(tg, ast.Subscript) and _const_str(tg.slice):
                    pairs.append((_const_str(tg.slice) or "", node.value))
        for name, value in pairs:
            s = _const_str(value)
            if s is not None and _SECRET_NAME.search(name) and not _NOT_A_SECRET.match(s.strip()):
                add(value.lineno, f"literal value for `{name}`", s)
            if name == "auth" and isinstance(value, ast.Tuple) and len(value.elts) == 2:
                pw = _const_str(value.elts[1])
                if pw and not _NOT_A_SECRET.match(pw):
                    add(value.lineno, "literal credentials in auth=(user, password)", pw)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            s = node.value
            for rx, what in (
                (_URI_CREDS, "connection URI with a password"),
                (_TOKEN_SHAPES, "token-shaped literal"),
                (_SECRET_IN_TEXT, "credential inside a string"),
            ):
                for m in rx.finditer(s):
                    val = m.group("val")
                    if _NOT_A_SECRET.match(val) or val.startswith(("{", "$", "%")):
                        continue
                    line = node.lineno + s.count("\n", 0, m.start())
                    add(line, what, val)
    return out


_HEAVY = [
    (re.compile(r"^(requests|httpx|aiohttp|urllib3?)\.|(^|\.)urlopen$|^http\.client\."), "network call"),
    (re.compile(r"^(open|io\.open|builtins\.open|codecs\.open)$"), "file I/O"),
    (re.compile(r"\.(read_text|read_bytes|write_text|write_bytes)$"), "file I/O"),
    (re.compile(r"^subprocess\.|^os\.(system|popen|exec\w*|spawn\w*)$"), "subprocess"),
    (re.compile(r"^time\.sleep$|^sleep$"), "sleep"),
    (re.compile(r"(^|\.)Variable\.get$|(^|\.)Variable\.set$"), "Airflow Variable lookup (metadata DB/API)"),
    (re.compile(r"(^|\.)(BaseHook|Connection)\.get_connection\w*$|Hook$|Hook\.\w+$"), "hook / connection lookup"),
    (
        re.compile(
            r"^(psycopg2?|pymysql|sqlite3|snowflake\.connector|mysql\.connector|duckdb)\.connect$|create_engine$"
        ),
        "database connection",
    ),
    (re.compile(r"(^|\.)(bigquery|storage)\.Client$|^boto3\.(client|resource)$"), "cloud client"),
    (re.compile(r"^(pd|pandas)\.read_\w+$"), "data load"),
    (re.compile(r"^socket\."), "network call"),
]


def _parse_time_calls(f: DagFile) -> Iterable[tuple[ast.Call, str, str]]:
    """Calls evaluated when the file is imported: module level, DAG/with bodies, @dag and
    @task_group bodies, operator arguments; not inside task callables or lambdas."""
    assert f.tree is not None

    def walk_stmts(stmts: list[ast.stmt]) -> Iterable[ast.AST]:
        for s in stmts:
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
                kinds = {f._decorator_kind(d)[0] for d in s.decorator_list}
                for d in s.decorator_list:
                    yield from walk_expr(d)
                if kinds & {"dag", "task_group"}:
                    yield from walk_stmts(s.body)
                continue
            if isinstance(s, ast.ClassDef):
                for sub in s.body:
                    if not isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        yield from walk_stmts([sub])
                continue
            if isinstance(s, ast.If) and _is_main_guard(s):
                continue
            for _field, value in ast.iter_fields(s):
                if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                    yield from walk_stmts(value)
                elif isinstance(value, list):
                    for v in value:
                        if isinstance(v, ast.AST):
                            if isinstance(v, ast.excepthandler):
                                yield from walk_stmts(v.body)
                            else:
                                yield from walk_expr(v)
                elif isinstance(value, ast.AST):
                    yield from walk_expr(value)

    def walk_expr(e: ast.AST) -> Iterable[ast.AST]:
        if isinstance(e, ast.Lambda):
            return
        yield e
        for child in ast.iter_child_nodes(e):
            yield from walk_expr(child)

    for node in walk_stmts(f.tree.body):
        if isinstance(node, ast.Call):
            name = f.resolve(dotted(node.func, through_calls=False))
            if not name:
                continue
            for rx, why in _HEAVY:
                if rx.search(name):
                    yield node, name, why
                    break


@check("dag.parse_time_work", severity="warning")
def parse_time_work(ctx: StaticContext) -> CheckResult | list[Finding]:
    """No I/O or heavy work at import time (network, files, subprocess, sleep, Variable/hook lookups): the scheduler re-parses DAG files constantly."""
    if r := _skip_without_dags("dag.parse_time_work", ctx, need_defs=False):
        return r
    out = []
    for f in dag_files(ctx):
        if f.tree is None:
            continue
        seen = set()
        for call, name, why in _parse_time_calls(f):
            if (call.lineno, name) in seen:
                continue
            seen.add((call.lineno, name))
            out.append(_finding(f, call.lineno, f"{f.rel}:{call.lineno}: {name}() runs at parse time ({why})"))
    return _ordered(out)


_NOW_CALLS = re.compile(
    r"(^|\.)(datetime\.(now|utcnow|today)|date\.today|pendulum\.(now|today)|"
    r"timezone\.(utcnow|now)|arrow\.(now|utcnow)|now|utcnow)$"
)
_NOW_IN_TEXT = re.compile(
    r"\$\(\s*date\b|`date\b|\bcurrent_(date|timestamp|datetime)\b|\bnow\(\)|\bgetdate\(\)|\bsysdate\b", re.I
)


@check("dag.non_idempotent", severity="warning")
def non_idempotent(ctx: StaticContext) -> CheckResult | list[Finding]:
    """Task logic uses the run's data interval (logical_date, data_interval_start, {{ ds }}) instead of the wall clock (now(), today(), $(date), CURRENT_DATE)."""
    if r := _skip_without_dags("dag.non_idempotent", ctx, need_defs=False):
        return r
    out = []
    for f in dag_files(ctx):
        if f.tree is None:
            continue
        skip: set[int] = set()
        for fname in f.callbacks:
            fn = f.functions.get(fname)
            if fn is not None:
                skip.update(id(n) for n in ast.walk(fn))
        seen = set()
        for node in ast.walk(f.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and re.search(
                r"callback|alert|notify", node.name, re.I
            ):
                skip.update(id(n) for n in ast.walk(node))
        for node in ast.walk(f.tree):
            if id(node) in skip or not isinstance(node, ast.Call):
                continue
            name = f.resolve(dotted(node.func))
            if _NOW_CALLS.search(name) and (name.count(".") >= 1 or name in ("now", "utcnow")):
                if node.lineno in seen:
                    continue
                seen.add(node.lineno)
                out.append(
                    _finding(
                        f,
                        node.lineno,
                        f"{f.rel}:{node.lineno}: {dotted(node.func)}() makes the run depend "
                        "on when it executes; use the data interval / logical_date / {{ ds }}",
                    )
                )
        for t in f.tasks.values():
            for k in ("bash_command", "sql", "command", "cmds", "arguments", "query", "env"):
                v = t.kwargs.get(k)
                for s in f.strings(v) if v is not None else []:
                    m = _NOW_IN_TEXT.search(s)
                    if m and (t.line, m.group(0)) not in seen:
                        seen.add((t.line, m.group(0)))  # type: ignore[arg-type]
                        line = getattr(v, "lineno", t.line)
                        out.append(
                            _finding(
                                f,
                                line,
                                f"{t.task_id or t.key}: `{m.group(0)}` in {k} reads the wall clock; "
                                "template the data interval ({{ ds }}, {{ data_interval_end }})",
                            )
                        )
    return _ordered(out)


@check("dag.no_doc_md", severity="info")
def no_doc_md(ctx: StaticContext) -> CheckResult:
    """Each DAG carries doc_md for on-call (what it does, what to do when it fails)."""
    if r := _skip_without_dags("dag.no_doc_md", ctx):
        return r
    findings = []
    for f, d in _all_dags(ctx):
        doc = d.kwargs.get("doc_md") or d.attrs.get("doc_md")
        has_module_doc = f.tree is not None and ast.get_docstring(f.tree) is not None
        if doc is not None and not _falsy(doc):
            if isinstance(doc, ast.Name) and doc.id == "__doc__" and not has_module_doc:
                findings.append(_finding(f, d.line, f"{d.name}: doc_md=__doc__ but the file has no docstring"))
            continue
        if d.style == "decorator" and d.docstring:
            continue  # @dag uses the function docstring as doc_md
        extra = " (only a one-line description)" if "description" in d.kwargs else ""
        findings.append(_finding(f, d.line, f"{d.name}: no doc_md for on-call{extra}"))
    return _per_dag("dag.no_doc_md", ctx, findings)


@check("dag.airflow_import_errors", severity="error")
def airflow_import_errors(ctx: StaticContext) -> CheckResult:
    """Optional: Airflow's own loader (DagBag), in a sandboxed time-limited subprocess, imports every DAG without errors."""
    cid = "dag.airflow_import_errors"
    if r := _skip_without_dags(cid, ctx, need_defs=False):
        return r
    if ctx.airflow_python is None:
        return _result(
            cid,
            "skipped",
            0.0,
            "skipped: the Airflow loader is off (it executes candidate code; "
            "enable it by giving an Airflow interpreter)",
        )
    from grader.airflow_parse import parse_dags

    rep = parse_dags(ctx.dag_files, python=ctx.airflow_python, root=ctx.root)
    loader_status = rep.pop("status", None)
    ev = {k: v for k, v in rep.items() if k != "message"}
    ev["loader_status"] = loader_status
    if loader_status != "ok":
        return _result(cid, "error", 0.0, f"Airflow loader failed ({loader_status}): {rep.get('message')}", **ev)
    errors = rep.get("import_errors") or {}
    ev["findings"] = [
        Finding(
            message=msg.strip().splitlines()[-1][:300] if msg.strip() else "import error",
            file=ctx.rel(path),
            line=_error_line(msg),
            snippet=None,
        ).to_json()
        for path, msg in sorted(errors.items())
    ]
    if errors:
        return _result(cid, "fail", 0.0, f"{len(errors)} DAG file(s) fail to import in Airflow", **ev)
    return _result(
        cid, "pass", 1.0, f"Airflow loaded {len(rep.get('dag_ids') or [])} DAG(s) without import errors", **ev
    )


def _error_line(msg: str) -> int | None:
    found = re.findall(r'File "[^"]*", line (\d+)', msg or "")
    return int(found[-1]) if found else None
