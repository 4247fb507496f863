"""A dbt model's SQL as the lint rules read it: Jinja replaced by SQL placeholders the parser
accepts (`ref('x')` -> `__dbt_ref__x`, `source('s', 't')` -> `__dbt_source__s__t`), and
shape queries over its sqlglot tree (CTEs, UNION branches, what a SELECT reads, its output
columns).

Jinja is never rendered: the first branch of an `{% if %}` is kept, set/call/macro blocks
dropped, other expressions become opaque placeholders. Column types and macros' SQL are not
modelled (the compiled SQL, when dbt wrote it, has them expanded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlglot import exp


_JINJA_TOKEN = re.compile(r"\{#.*?#\}|\{%-?(.*?)-?%\}|\{\{-?(.*?)-?\}\}", re.S)
_REF_CALL = re.compile(r"^\s*ref\s*\(\s*(?:['\"][\w.-]+['\"]\s*,\s*)?['\"]([\w.-]+)['\"]\s*(?:,[^)]*)?\)\s*$", re.S)
_SOURCE_CALL = re.compile(r"^\s*source\s*\(\s*['\"]([\w.-]+)['\"]\s*,\s*['\"]([\w.-]+)['\"]\s*\)\s*$", re.S)
# Blocks whose body renders to no SQL, and the tag that ends each.
_BLOCK_DROP = {
    "set": "endset",
    "call": "endcall",
    "macro": "endmacro",
    "docs": "enddocs",
    "test": "endtest",
    "materialization": "endmaterialization",
    "snapshot": None,
}


@dataclass
class Stripped:
    """A model's SQL with its Jinja replaced, and what each placeholder stood for."""

    sql: str
    placeholders: dict[str, str] = field(default_factory=dict)  # placeholder -> Jinja text


def _identifier(text: str) -> str:
    return re.sub(r"\W", "_", text)


def _drops_block(word: str, body: str) -> bool:
    """A block tag whose body renders to nothing (`{% set x = 1 %}` is a statement, not a block)."""
    return word in _BLOCK_DROP and bool(_BLOCK_DROP[word]) and not (word == "set" and "=" in body)


def strip_jinja(raw: str) -> Stripped:
    """Replace Jinja with SQL the parser accepts: ref('x') → __dbt_ref__x,
    source('s','t') → __dbt_source__s__t, {{ this }} → __dbt_this__, other
    expressions → __dbt_expr_N__; keep the first branch of if/else, drop set/call blocks."""
    out: list[str] = []
    placeholders: dict[str, str] = {}
    pos = 0
    skip_until: list[str] = []  # end tags of dropped blocks
    if_stack: list[bool] = []  # per open {% if %}: are we past its first branch?
    for token in _JINJA_TOKEN.finditer(raw):
        chunk = raw[pos : token.start()]
        pos = token.end()
        active = not skip_until and not any(if_stack)
        if active:
            out.append(chunk)
        text = token.group(0)
        if text.startswith("{#"):
            continue
        if text.startswith("{%"):
            body = (token.group(1) or "").strip()
            word = body.split(None, 1)[0] if body else ""
            if skip_until:
                if word == skip_until[-1]:
                    skip_until.pop()
                elif _drops_block(word, body):
                    skip_until.append(str(_BLOCK_DROP[word]))
                continue
            if word == "if":
                if_stack.append(False)
            elif word in ("elif", "else") and if_stack:
                if_stack[-1] = True
            elif word == "endif" and if_stack:
                if_stack.pop()
            elif _drops_block(word, body) and active:
                skip_until.append(str(_BLOCK_DROP[word]))
            continue
        if not active:
            continue
        expr = (token.group(2) or "").strip()
        if ref := _REF_CALL.match(expr):
            out.append(f"__dbt_ref__{_identifier(ref.group(1))}")
        elif src := _SOURCE_CALL.match(expr):
            out.append(f"__dbt_source__{_identifier(src.group(1))}__{_identifier(src.group(2))}")
        elif re.fullmatch(r"this(\.\w+)?", expr):
            out.append("__dbt_this__")
        else:
            before = re.sub(r"--[^\n]*|/\*.*?\*/", "", "".join(out), flags=re.S).rstrip()
            after = _JINJA_TOKEN.sub("", raw[pos:]).lstrip()
            is_call = "(" in expr
            if re.match(r"(config|log|print|do|set|return|exceptions\.\w+)\s*\(", expr):
                continue  # renders to nothing
            if is_call and (not before or before.endswith(";")) and after and after[0] not in ");":
                continue  # a macro call before the query (config-like, hooks, logging)
            name = f"__dbt_expr_{len(placeholders) + 1}__"
            placeholders[name] = text
            if is_call and (not before or before.endswith(("(", ";"))) and (not after or after[0] in ");"):
                out.append(f"select * from {name}")  # a macro that returns a whole query
            else:
                out.append(name)
    if not skip_until and not any(if_stack):
        out.append(raw[pos:])
    return Stripped("".join(out), placeholders)


def pretty(sql: str) -> str:
    """Placeholders back to the Jinja the candidate wrote."""
    sql = re.sub(r"__dbt_source__(\w+?)__(\w+)", r"source('\1', '\2')", sql)
    sql = re.sub(r"__dbt_ref__(\w+)", r"ref('\1')", sql)
    return sql.replace("__dbt_this__", "this")


def column_name(node: exp.Expr) -> str | None:
    return node.name.lower() if isinstance(node, exp.Column) else None


def columns_in(node: exp.Expr) -> set[str]:
    return {column.name.lower() for column in node.find_all(exp.Column) if column.name}


def ctes(tree: exp.Expr) -> dict[str, exp.Expr]:
    """{CTE name: its query} of a statement."""
    return {cte.alias.lower(): cte.this for cte in tree.find_all(exp.CTE) if cte.alias}


def branches(query: exp.Expr) -> list[exp.Select]:
    """The SELECTs a query's rows come from (each side of a UNION)."""
    if isinstance(query, exp.Select):
        return [query]
    if isinstance(query, exp.SetOperation):
        return branches(query.left) + branches(query.right)
    if isinstance(query, exp.Subquery):
        return branches(query.this)
    return []


def from_sources(select: exp.Select) -> list[exp.Expr]:
    """What a SELECT reads: its FROM and each JOIN."""
    out = []
    from_clause = select.args.get("from") or select.args.get("from_")
    if from_clause is not None:
        out.append(from_clause.this)
    for join in select.args.get("joins") or []:
        out.append(join.this)
    return out


def is_star(projection: exp.Expr) -> bool:
    """`*` or `alias.*`."""
    return isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star))


def output_columns(tree: exp.Expr | None) -> list[str] | None:
    """Names of the model's output columns, resolved through `select * from <cte>`;
    None when a star reaches a physical relation."""
    if tree is None:
        return None
    named = ctes(tree)

    def columns(query: exp.Expr, depth: int) -> list[str] | None:
        selects = branches(query)
        if not selects or depth > 20:
            return None
        select = selects[0]
        out: list[str] = []
        for projection in select.expressions:
            if is_star(projection):
                read = from_sources(select)
                if len(read) != 1 or not isinstance(read[0], (exp.Table, exp.Subquery)):
                    return None
                relation = read[0]
                if isinstance(relation, exp.Subquery):
                    inner = columns(relation.this, depth + 1)
                elif not relation.args.get("db") and relation.name.lower() in named:
                    inner = columns(named[relation.name.lower()], depth + 1)
                else:
                    inner = None
                if inner is None:
                    return None
                out.extend(inner)
            elif projection.alias_or_name:
                out.append(projection.alias_or_name.lower())
        return out

    return columns(tree, 0)
