"""What a Python module's code says without running it: its imports, module-level constants,
functions, and the value of string and dict expressions (literals, module constants, also
those of sibling modules, f-strings, `+`, str.format() and `{**base, ...}`).

The module is parsed with `ast`, bounded in depth; it is never imported, compiled to
bytecode or executed. What is computed at run time (function results, loops, anything read
from the environment) is not modelled: such a value is None ("unknown"), never a guess.
The Airflow DAG interpreter (checks/airflow_dags.py) builds on it.
"""

from __future__ import annotations

import ast
import string
from pathlib import Path

# Deeper syntax trees are not analysed: the rules walk them recursively. Real DAG files
# stay under 30 levels; ast.parse itself accepts about 3,000.
MAX_AST_DEPTH = 200

Function = ast.FunctionDef | ast.AsyncFunctionDef


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


def const_str(node: ast.AST | None) -> str | None:
    """The value of a string literal, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def falsy(node: ast.expr | None) -> bool:
    """A literal None, False, 0 or empty string."""
    return isinstance(node, ast.Constant) and node.value in (None, False, 0, "", 0.0)


def names_in(node: ast.AST) -> set[str]:
    return {name.id for name in ast.walk(node) if isinstance(name, ast.Name)}


def is_main_guard(stmt: ast.If) -> bool:
    """`if __name__ == "__main__":` (not run when Airflow imports the file)."""
    test = stmt.test
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(const_str(operand) == "__main__" for operand in test.comparators)
    )


class PythonModule:
    """One Python file, parsed (never executed): its imports, module-level assignments and functions."""

    def __init__(self, path: Path, rel: str, text: str, shared_assigns: dict[str, dict[str, ast.expr]] | None = None):
        self.path, self.rel, self.text = path, rel, text
        self.lines = text.splitlines()
        self.error: SyntaxError | None = None
        self.tree: ast.Module | None = None
        self.imports: dict[str, str] = {}
        self.assigns: dict[str, ast.expr] = {}
        self.functions: dict[str, Function] = {}
        self._shared = shared_assigns or {}  # module-level assignments of sibling modules, by module name
        try:
            self.tree = parse_bounded(text, str(path))
        except (SyntaxError, ValueError) as exc:  # ValueError: null bytes
            self.error = exc if isinstance(exc, SyntaxError) else SyntaxError(str(exc))
            return
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0]
                    )
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.setdefault(node.name, node)
        self.assigns = module_assigns(self.tree, annotated=True)

    def line_text(self, line: int | None) -> str | None:
        if not line or line > len(self.lines):
            return None
        return self.lines[line - 1].strip()[:240]

    def resolve(self, name: str) -> str:
        """A dotted name with its head replaced by what it was imported as."""
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
            module, _, attr = self.imports.get(node.id, "").rpartition(".")
            shared = self._shared.get(module.rsplit(".", 1)[-1], {})
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
        out: dict[str, ast.expr] = {}
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if key is None:
                    inner = self.dict_value(value, depth + 1)
                    if inner is None:
                        return None
                    out.update(inner)
                elif (name := const_str(key)) is not None:
                    out[name] = value
            return out
        if isinstance(node, ast.Call) and dotted(node.func) == "dict":
            for arg in node.args:
                inner = self.dict_value(arg, depth + 1)
                if inner is None:
                    return None
                out.update(inner)
            for keyword in node.keywords:
                if keyword.arg is None:
                    inner = self.dict_value(keyword.value, depth + 1)
                    if inner is None:
                        return None
                    out.update(inner)
                else:
                    out[keyword.arg] = keyword.value
            return out
        return None

    def render(self, node: ast.AST | None, depth: int = 0) -> str | None:
        """Best-effort value of a string expression: literals, module constants, f-strings,
        `+` concatenation and str.format() with literal arguments (no code is run)."""
        if node is None or depth > 6:
            return None
        if (text := const_str(node)) is not None:
            return text
        if isinstance(node, ast.Name):
            value = self.module_value(node)
            return self.render(value, depth + 1) if value is not node else None
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    rendered = self.render(value.value, depth + 1)
                    parts.append(rendered if rendered is not None else "{" + ast.unparse(value.value) + "}")
                else:
                    parts.append(const_str(value) or "")
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.render(node.left, depth + 1), self.render(node.right, depth + 1)
            if left is not None or right is not None:
                return (left or "") + (right or "")
            return None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            return self._render_format(node, depth)
        return None

    def _render_format(self, call: ast.Call, depth: int) -> str | None:
        base = self.render(call.func.value, depth + 1) if isinstance(call.func, ast.Attribute) else None
        if base is None:
            return None
        named = {keyword.arg: self.render(keyword.value, depth + 1) for keyword in call.keywords if keyword.arg}
        positional = [self.render(arg, depth + 1) for arg in call.args]

        class KeepUnknown(dict):
            def __missing__(self, key: str) -> str:
                return "{" + key + "}"

        try:
            return string.Formatter().vformat(
                base,
                [value if value is not None else "{}" for value in positional],
                KeepUnknown({key: value for key, value in named.items() if value is not None}),
            )
        except (ValueError, IndexError, KeyError, AttributeError):
            return base

    def strings(self, node: ast.AST | None, depth: int = 0) -> list[str]:
        """String constants in an expression (lists joined by spaces, names followed once)."""
        if node is None or depth > 4:
            return []
        if isinstance(node, (ast.JoinedStr, ast.BinOp, ast.Call)):
            rendered = self.render(node)
            if rendered is not None:
                return [rendered]
        if isinstance(node, ast.Name):
            value = self.module_value(node)
            return self.strings(value, depth + 1) if value is not node else []
        if isinstance(node, (ast.List, ast.Tuple)):
            parts = [" ".join(self.strings(element, depth + 1)) for element in node.elts]
            return [" ".join(part for part in parts if part)]
        out = []
        for sub in ast.walk(node):
            text = const_str(sub)
            if text is not None:
                out.append(text)
            elif isinstance(sub, (ast.List, ast.Tuple)) and sub is not node:
                joined = " ".join(const_str(element) or "" for element in sub.elts).strip()
                if joined:
                    out.append(joined)
            elif isinstance(sub, ast.Name) and sub is not node and sub.id in self.assigns:
                value = self.assigns[sub.id]
                if isinstance(value, (ast.Constant, ast.List, ast.Tuple, ast.JoinedStr)):
                    out.extend(self.strings(value, depth + 1))
        return out

    def function_strings(self, function: ast.AST, seen: set[str]) -> list[str]:
        body = list(getattr(function, "body", []))
        if body and isinstance(body[0], ast.Expr) and const_str(body[0].value) is not None:
            body = body[1:]  # not the docstring
        out: list[str] = []
        for stmt in body:
            out.extend(self.strings(stmt))
            for call in ast.walk(stmt):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Name)
                    and call.func.id in self.functions
                    and call.func.id not in seen
                ):
                    seen.add(call.func.id)
                    out.extend(self.function_strings(self.functions[call.func.id], seen))
        return out

    def calls_in(self, function: ast.AST) -> list[str]:
        """Dotted names of everything `function` calls (resolved through imports), and of what
        the module's own functions it calls call in turn (one level)."""
        out = []
        functions: list[ast.AST] = [function]
        for current in list(functions):
            for call in ast.walk(current):
                if not isinstance(call, ast.Call):
                    continue
                out.append(self.resolve(dotted(call.func)))
                if (
                    isinstance(call.func, ast.Name)
                    and call.func.id in self.functions
                    and self.functions[call.func.id] not in functions
                ):
                    functions.append(self.functions[call.func.id])
                    for inner in ast.walk(self.functions[call.func.id]):
                        if isinstance(inner, ast.Call):
                            out.append(self.resolve(dotted(inner.func)))
        return out


def module_assigns(tree: ast.Module, annotated: bool = False) -> dict[str, ast.expr]:
    """{name: value} of the module-level assignments (`x = ...`; also `x: T = ...` when annotated)."""
    out: dict[str, ast.expr] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            named = [(target, stmt.value) for target in stmt.targets]
        elif annotated and isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            named = [(stmt.target, stmt.value)]
        else:
            continue
        for target, value in named:
            if isinstance(target, ast.Name):
                out[target.id] = value
    return out


def parse_bounded(text: str, filename: str) -> ast.Module:
    """ast.parse, with nesting too deep to walk safely reported as a SyntaxError."""
    try:
        tree = ast.parse(text, filename=filename)
    except (RecursionError, MemoryError):
        raise SyntaxError("nested too deep for Python's own parser") from None
    pending: list[tuple[ast.AST, int]] = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_AST_DEPTH:
            raise SyntaxError(f"nested more than {MAX_AST_DEPTH} levels deep: not analysed",
                              (filename, getattr(node, "lineno", 1), 1, None))
        pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree
