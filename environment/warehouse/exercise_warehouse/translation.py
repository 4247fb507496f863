"""BigQuery SQL translation fixes: where bqemulator's sqlglot translation differs from BigQuery.

`before(sql)` rewrites BigQuery SQL before bqemulator translates it; `install()` adds what
lives below that (helper macros in DuckDB, the NUMERIC type's precision in sqlglot's DuckDB
generator, the catalog's JSON columns for field access) once per process. Each fix names the
BigQuery behaviour it restores; tests/fidelity_cases.yaml holds the cases, the README's
"Engine differences" table what is still different.

Rewrites stay in BigQuery SQL where BigQuery itself can say it (a week truncation is a date
minus its weekday offset), so bqemulator's own translation does the rest; where DuckDB needs
a function BigQuery lacks, they call a `bqx_*` macro registered at engine start (MACROS).
"""

from __future__ import annotations

import contextvars
import re

import sqlglot
from sqlglot import exp

# Columns of JSON type in the tables the statement reads (set per translation by install()).
_json_columns: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("json_columns", default=frozenset())

# DuckDB macros the rewrites call. Names start with bqx_ so they never meet a candidate's name.
MACROS = {
    # TIMESTAMP_DIFF counts whole units (truncated toward zero), not unit boundaries.
    "bqx_timestamp_diff": "(a, b, unit_us) AS ((epoch_us(a) - epoch_us(b)) - ((epoch_us(a) - epoch_us(b)) % unit_us)) // unit_us",
    # TIMESTAMP(civil, zone): a repeated local hour resolves to its first occurrence, as BigQuery does.
    "bqx_local_to_utc": ("(civil, zone) AS CASE WHEN timezone(zone, timezone(zone, civil) - INTERVAL 1 HOUR) = civil "
                         "THEN timezone(zone, civil) - INTERVAL 1 HOUR ELSE timezone(zone, civil) END"),
    # CAST(x AS STRING): NUMERIC without trailing zeros ('1.5', '10'); anything else as DuckDB casts it.
    "bqx_to_string": ("(x) AS CASE WHEN typeof(x) LIKE 'DECIMAL%' AND CAST(x AS VARCHAR) LIKE '%.%' "
                      "THEN rtrim(rtrim(CAST(x AS VARCHAR), '0'), '.') ELSE CAST(x AS VARCHAR) END"),
    # JSON_QUERY on JSON returns JSON (not STRING).
    "bqx_json_query": "(j, path) AS json_extract(CAST(j AS JSON), path)",
    # CAST(FLOAT64 AS INT64) rounds halfway cases away from zero (DuckDB rounds them to even).
    "bqx_to_int64": ("(x) AS CASE WHEN typeof(x) IN ('DOUBLE', 'FLOAT') THEN CAST(round(TRY_CAST(x AS DOUBLE)) AS BIGINT) "
                     "ELSE CAST(x AS BIGINT) END"),
    # JSON_TYPE names BigQuery's JSON types (DuckDB says VARCHAR, UBIGINT, ...).
    "bqx_json_type": ("(j) AS CASE json_type(CAST(j AS JSON)) WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'boolean' "
                      "WHEN 'OBJECT' THEN 'object' WHEN 'ARRAY' THEN 'array' WHEN 'NULL' THEN 'null' ELSE 'number' END"),
    # STRING(json): a JSON string's text without its quotes (bqemulator kept them on field access).
    "bqx_json_string": ("(j) AS CASE WHEN typeof(j) = 'JSON' THEN json_extract_string(CAST(j AS JSON), '$') "
                        "ELSE CAST(j AS VARCHAR) END"),
    # IGNORE NULLS on an ARRAY_AGG.
    "bqx_drop_nulls": "(l) AS list_filter(l, e -> e IS NOT NULL)",
}

_WEEKDAYS = {"SUNDAY": 1, "MONDAY": 2, "TUESDAY": 3, "WEDNESDAY": 4, "THURSDAY": 5, "FRIDAY": 6, "SATURDAY": 7}
_UNIT_MICROS = {"MICROSECOND": 1, "MILLISECOND": 1_000, "SECOND": 1_000_000, "MINUTE": 60_000_000,
                "HOUR": 3_600_000_000, "DAY": 86_400_000_000}
_FIXED_OFFSET = re.compile(r"^(?:UTC)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def before(bq_sql: str) -> str:
    """The BigQuery SQL bqemulator should translate (unchanged when no fix applies)."""
    try:
        statements = sqlglot.parse(bq_sql, read="bigquery")
    except Exception:  # noqa: BLE001 — bqemulator reports its own syntax error
        return bq_sql
    changed = False
    rewritten = []
    for statement in statements:
        if statement is None:
            continue
        new, did = _rewrite(statement, _json_columns.get())
        changed |= did
        rewritten.append(new)
    if not changed:
        return bq_sql
    return ";\n".join(s.sql(dialect="bigquery") for s in rewritten)


def _rewrite(tree: exp.Expr, json_columns: frozenset[str]) -> tuple[exp.Expr, bool]:
    changed = False
    if json_columns:
        for column in list(tree.find_all(exp.Column)):
            changed |= _json_field_access(column, json_columns)
    for create in list(tree.find_all(exp.Create)):
        changed |= _ctas_with_columns(create)

    def fix(node: exp.Expression) -> exp.Expression:
        nonlocal changed
        for _ in range(4):  # a fix may leave a node another fix applies to (a coerced literal, then the week)
            new = _fix_node(node)
            if new is node:
                break
            changed, node = True, new
        return node

    tree = tree.transform(fix)
    return tree, changed


def _fix_node(node: exp.Expression) -> exp.Expression:  # noqa: C901, PLR0911 — one dispatch over node types
    if isinstance(node, exp.TimestampDiff):
        unit = _unit_name(node.args.get("unit"))
        if unit in _UNIT_MICROS:
            return _call("bqx_timestamp_diff", node.this, node.expression, exp.Literal.number(_UNIT_MICROS[unit]))
    if isinstance(node, (exp.DateTrunc, exp.DateDiff)) and _is_string_literal(node.this):
        # BigQuery coerces a string literal to DATE here; DuckDB cannot choose an overload.
        return node.__class__(**{**node.args, "this": exp.Cast(this=node.this.copy(), to=exp.DataType.build("DATE"))})
    if isinstance(node, exp.DateDiff) and _is_string_literal(node.expression):
        return exp.DateDiff(**{**node.args, "expression": exp.Cast(this=node.expression.copy(), to=exp.DataType.build("DATE"))})
    if isinstance(node, (exp.DateTrunc, exp.TimestampTrunc, exp.DatetimeTrunc)):
        start = _week_start(node.args.get("unit"))
        if start is not None:
            return _truncate_to_week(node, start)
    if isinstance(node, exp.Extract):
        start = _week_start(node.this)
        if start is not None and _unit_name(node.this) != "ISOWEEK":
            return _week_number(node.expression, start)
    if isinstance(node, exp.DateDiff):
        start = _week_start(node.args.get("unit"))
        if start is not None:
            later = _date_minus_weekday(node.this, start)
            earlier = _date_minus_weekday(node.expression, start)
            days = exp.DateDiff(this=later, expression=earlier, unit=exp.var("DAY"))
            return exp.IntDiv(this=exp.Paren(this=days), expression=exp.Literal.number(7))
    if isinstance(node, exp.Timestamp) and node.args.get("zone") is not None:
        return _timestamp_in_zone(node.this, node.args["zone"])
    if isinstance(node, exp.Datetime) and node.expression is not None:
        offset = _offset_minutes(node.expression)
        if offset is not None:
            shifted = exp.TimestampAdd(this=node.this.copy(), expression=exp.Literal.number(offset), unit=exp.var("MINUTE"))
            return exp.Datetime(this=shifted)
    if isinstance(node, exp.StrToTime) and node.args.get("zone") is not None:
        fmt = node.args.get("format")
        if isinstance(fmt, exp.Literal) and not re.search(r"%[zZsQ]|%E[0-9*]*[zZ]", fmt.this):
            civil = exp.Anonymous(this="PARSE_DATETIME", expressions=[fmt.copy(), node.this.copy()])
            return _timestamp_in_zone(civil, node.args["zone"])
    if isinstance(node, exp.Cast) and _is_string_type(node.to) and not node.args.get("format"):
        if not (isinstance(node.this, exp.Literal) and node.this.is_string):
            return _call("bqx_to_string", node.this)
    if type(node) is exp.Cast and _is_type(node.to, exp.DataType.Type.BIGINT):  # not SAFE_CAST: it must not raise
        return _call("bqx_to_int64", node.this)
    if isinstance(node, exp.JSONType):
        return _call("bqx_json_type", node.this)
    if isinstance(node, exp.JSONExtract) and _is_json_valued(node.this):
        return _call("bqx_json_query", node.this, exp.Literal.string(node.expression.sql(dialect="bigquery").strip("'")))
    if isinstance(node, exp.String) and isinstance(node.this, exp.Anonymous) and node.this.name.lower() == "bqx_json_query":
        return exp.Anonymous(this="JSON_VALUE", expressions=[a.copy() for a in node.this.expressions])
    if isinstance(node, exp.String) and node.args.get("zone") is None and isinstance(node.this, (exp.Dot, exp.Column, exp.Bracket)):
        return _call("bqx_json_string", node.this)
    if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.ArrayAgg):
        return _array_agg_ignore_nulls(node.this)
    if isinstance(node, exp.Struct):
        named = _struct_with_inferred_names(node)
        if named is not None:
            return named
    if isinstance(node, exp.Substring):
        first = node.args.get("start")
        if isinstance(first, exp.Literal) and not first.is_string and first.this == "0":
            return exp.Substring(this=node.this.copy(), start=exp.Literal.number(1),
                                 length=node.args["length"].copy() if node.args.get("length") else None)
    if isinstance(node, exp.Like) and not isinstance(node.parent, exp.Escape):
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string and "\\" in pattern.this:
            return exp.Escape(this=node.copy(), expression=exp.Literal.string("\\"))
    return node


# ---------------------------------------------------------------- weeks

def _unit_name(unit: exp.Expression | None) -> str | None:
    if unit is None:
        return None
    if isinstance(unit, exp.WeekStart):
        return "WEEK"
    return (unit.name or "").upper() or None


def _week_start(unit: exp.Expression | None) -> int | None:
    """BigQuery's DAYOFWEEK number of the day a WEEK unit starts on (WEEK = Sunday, ISOWEEK = Monday)."""
    if isinstance(unit, exp.WeekStart):
        return _WEEKDAYS.get(unit.this.name.upper())
    name = _unit_name(unit)
    return {"WEEK": 1, "ISOWEEK": 2}.get(name or "")


def _days_into_week(value: exp.Expression, start: int) -> exp.Expression:
    """MOD(EXTRACT(DAYOFWEEK FROM value) - start + 7, 7): 0 on the week's first day."""
    dow = exp.Extract(this=exp.var("DAYOFWEEK"), expression=value.copy())
    return exp.Mod(this=exp.Paren(this=exp.Add(this=exp.Sub(this=dow, expression=exp.Literal.number(start)),
                                              expression=exp.Literal.number(7))),
                   expression=exp.Literal.number(7))


def _date_minus_weekday(value: exp.Expression, start: int) -> exp.Expression:
    date = exp.Date(this=value.copy())
    return exp.DateSub(this=date, expression=_days_into_week(date, start), unit=exp.var("DAY"))


def _truncate_to_week(node: exp.Expression, start: int) -> exp.Expression:
    zone = node.args.get("zone")
    if isinstance(node, exp.TimestampTrunc):
        local = exp.Date(this=node.this.copy(), zone=zone.copy()) if zone is not None else exp.Date(this=node.this.copy())
        week: exp.Expression = exp.DateSub(this=local, expression=_days_into_week(local, start), unit=exp.var("DAY"))
        return exp.Timestamp(this=week, zone=zone.copy(), with_tz=True) if zone is not None else exp.Timestamp(this=week)
    week = _date_minus_weekday(node.this, start)
    if isinstance(node, exp.DatetimeTrunc):
        return exp.Datetime(this=week)
    return week


def _week_number(value: exp.Expression, start: int) -> exp.Expression:
    """EXTRACT(WEEK(<start>) FROM value): weeks begin on `start`; days before the year's first such day are week 0."""
    date = exp.Date(this=value.copy())
    day_of_year = exp.Extract(this=exp.var("DAYOFYEAR"), expression=date)
    position = exp.Add(this=_days_into_week(date, start), expression=exp.Literal.number(1))
    numerator = exp.Add(this=exp.Sub(this=day_of_year, expression=exp.Paren(this=position)), expression=exp.Literal.number(7))
    return exp.IntDiv(this=exp.Paren(this=numerator), expression=exp.Literal.number(7))


# ---------------------------------------------------------------- time zones

def _offset_minutes(zone: exp.Expression) -> int | None:
    """Minutes to add to a civil time at a fixed offset ('-05:00', '+03', 'UTC+3') to get UTC."""
    if not (isinstance(zone, exp.Literal) and zone.is_string):
        return None
    match = _FIXED_OFFSET.match(zone.this.strip())
    if not match:
        return None
    minutes = int(match.group(2)) * 60 + int(match.group(3) or 0)
    return -minutes if match.group(1) == "+" else minutes


def _timestamp_in_zone(civil: exp.Expression, zone: exp.Expression) -> exp.Expression:
    offset = _offset_minutes(zone)
    if offset is not None:
        return exp.TimestampAdd(this=exp.Timestamp(this=exp.Cast(this=civil.copy(), to=exp.DataType.build("DATETIME"))),
                                expression=exp.Literal.number(offset), unit=exp.var("MINUTE"))
    if isinstance(civil, exp.Literal) and civil.is_string and re.search(r"([+-]\d\d(:?\d\d)?|Z|UTC)\s*$", civil.this):
        return exp.Timestamp(this=civil.copy())  # the string names its own offset: the zone argument is ignored
    return _call("bqx_local_to_utc", exp.Cast(this=civil.copy(), to=exp.DataType.build("DATETIME")), zone.copy())


# ---------------------------------------------------------------- strings, JSON, structs, aggregates

def _is_string_literal(node: exp.Expression | None) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _is_type(to: exp.DataType | None, kind: exp.DType) -> bool:
    return isinstance(to, exp.DataType) and to.this == kind and not to.expressions


def _is_string_type(to: exp.DataType | None) -> bool:
    return isinstance(to, exp.DataType) and to.this in (exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR) \
        and not to.expressions


def _is_json_valued(node: exp.Expression) -> bool:
    if isinstance(node, exp.Column):
        return node.name.lower() in _json_columns.get()
    if isinstance(node, exp.ParseJSON):
        return True
    if isinstance(node, exp.Cast):
        return node.to.this == exp.DataType.Type.JSON
    return isinstance(node, exp.Anonymous) and node.name.lower() == "bqx_json_query"


def _json_field_access(column: exp.Column, json_columns: frozenset[str]) -> bool:
    """`meta.changes[0].field` on a JSON column `meta` -> JSON_QUERY(meta, '$.changes[0].field')."""
    parts = [p for p in (column.args.get("catalog"), column.args.get("db"), column.args.get("table"), column.this) if p]
    names = [p.name for p in parts]
    index = next((i for i, name in enumerate(names[:-1]) if name.lower() in json_columns), None)
    if index is None:
        return False
    base = exp.Column(this=parts[index].copy(), table=parts[index - 1].copy() if index else None)
    path = "$" + "".join(f".{name}" for name in names[index + 1:])
    outer: exp.Expression = column
    while True:
        parent = outer.parent
        if isinstance(parent, exp.Bracket) and parent.this is outer and len(parent.expressions) == 1 \
                and isinstance(parent.expressions[0], exp.Literal) and not parent.expressions[0].is_string:
            path += f"[{parent.expressions[0].this}]"
        elif isinstance(parent, exp.Dot) and parent.this is outer and isinstance(parent.expression, exp.Identifier):
            path += f".{parent.expression.name}"
        else:
            break
        outer = parent
    outer.replace(_call("bqx_json_query", base, exp.Literal.string(path)))
    return True


def _struct_with_inferred_names(node: exp.Struct) -> exp.Struct | None:
    """STRUCT(a, t.b) -> STRUCT(a AS a, t.b AS b): BigQuery names fields after the columns."""
    if not any(isinstance(e, exp.Column) for e in node.expressions):
        return None
    fields = []
    for e in node.expressions:
        if isinstance(e, exp.Column):
            fields.append(exp.PropertyEQ(this=exp.to_identifier(e.name), expression=e.copy()))
        else:
            fields.append(e.copy())
    return exp.Struct(expressions=fields)


def _array_agg_ignore_nulls(agg: exp.ArrayAgg) -> exp.Expression:
    """ARRAY_AGG(x IGNORE NULLS [ORDER BY ...] [LIMIT n]): order the NULLs last, then drop them."""
    inner = agg.this.copy()
    limit = inner if isinstance(inner, exp.Limit) else None
    body = limit.this if limit is not None else inner
    order = body if isinstance(body, exp.Order) else None
    value = order.this if order is not None else body
    if limit is not None:
        keys = [exp.Ordered(this=exp.Is(this=_bare(value).copy(), expression=exp.Null()), nulls_first=True)]
        keys += [k.copy() for k in order.expressions] if order is not None else []
        body = exp.Order(this=value.copy(), expressions=keys)
        inner = exp.Limit(this=body, expression=limit.expression.copy())
    return _call("bqx_drop_nulls", exp.ArrayAgg(this=inner))


def _bare(value: exp.Expression) -> exp.Expression:
    return value.expressions[0] if isinstance(value, exp.Distinct) and value.expressions else value


def _ctas_with_columns(create: exp.Create) -> bool:
    """CREATE TABLE t (columns) ... AS (SELECT ...), as dbt emits for a model contract -> a CTAS
    casting each selected column to its declared type (DuckDB takes one form or the other)."""
    schema = create.this
    if (create.args.get("kind") or "").upper() != "TABLE" or not isinstance(schema, exp.Schema) \
            or create.expression is None:
        return False
    columns = [c for c in schema.expressions if isinstance(c, exp.ColumnDef)]
    query = create.expression.unnest() if isinstance(create.expression, exp.Subquery) else create.expression
    select = query if isinstance(query, exp.Select) else None
    if not columns or select is None or len(select.expressions) != len(columns):
        return False
    projections = []
    for column, projection in zip(columns, select.expressions):
        value = projection.this if isinstance(projection, exp.Alias) else projection
        if column.kind is None:
            projections.append(projection.copy())
        else:
            projections.append(exp.alias_(exp.Cast(this=value.copy(), to=column.kind.copy()), column.this.copy()))
    select.set("expressions", projections)
    create.set("this", schema.this.copy())
    create.set("expression", select.copy() if query is not create.expression else select)
    return True


def _call(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=[a.copy() for a in args])


# ---------------------------------------------------------------- install

_installed = False


def install() -> None:
    """Register the fixes below the SQL text (idempotent): NUMERIC as DECIMAL(38, 9) in sqlglot's
    DuckDB output, the bqx_* macros at engine start, and the catalog's JSON columns per statement."""
    global _installed
    if _installed:
        return
    _installed = True
    from bqemulator.sql.translator import SQLTranslator
    from bqemulator.storage.engine import DuckDBEngine
    from sqlglot.dialects.duckdb import DuckDB

    # Through the generator's TRANSFORMS table, which compiled sqlglot (sqlglotc) consults as the
    # pure-Python one does; its methods cannot be replaced, nor its classes subclassed.
    transforms = DuckDB.generator_class.TRANSFORMS
    original_datatype = transforms.get(exp.DataType)

    def datatype_sql(self, expression: exp.DataType) -> str:
        # BigQuery's NUMERIC is DECIMAL(38, 9); DuckDB's bare DECIMAL is (18, 3).
        if expression.this == exp.DataType.Type.DECIMAL and not expression.expressions:
            return "DECIMAL(38, 9)"
        return original_datatype(self, expression) if original_datatype else self.datatype_sql(expression)

    transforms[exp.DataType] = datatype_sql

    original_start = DuckDBEngine.start

    async def start(self: DuckDBEngine) -> None:
        await original_start(self)
        for name, body in MACROS.items():
            self.connection.execute(f"CREATE OR REPLACE MACRO {name}{body}")

    DuckDBEngine.start = start  # type: ignore[method-assign]

    translate = SQLTranslator.translate

    def translate_with_json_columns(self: SQLTranslator, bq_sql: str, **kwargs):
        schema = kwargs.get("schema") or {}
        names = frozenset(column.lower() for columns in schema.values() if isinstance(columns, dict)
                          for column, kind in columns.items() if str(kind).upper() == "JSON")
        token = _json_columns.set(names)
        try:
            return translate(self, bq_sql, **kwargs)
        finally:
            _json_columns.reset(token)

    SQLTranslator.translate = translate_with_json_columns  # type: ignore[method-assign]
    _install_set_from_struct()


_SELECT_AS_STRUCT = re.compile(r"^\s*\(\s*SELECT\s+AS\s+STRUCT\s", re.IGNORECASE)


def _install_set_from_struct() -> None:
    """`SET (a, ...) = (SELECT AS STRUCT x, ...)` assigns the struct's fields to the variables, as
    in BigQuery (dbt-bigquery's insert_overwrite sets its partition list this way); bqemulator
    assigned the whole struct to a single target."""
    from bqemulator.scripting.interpreter import ScriptInterpreter

    original_set = ScriptInterpreter._exec_set

    async def exec_set(self, stmt) -> None:
        match = _SELECT_AS_STRUCT.match(stmt.source_expr)
        if match is None:
            return await original_set(self, stmt)
        row = await self._eval_expr_row("(SELECT " + stmt.source_expr[match.end():])
        if len(row) != len(stmt.targets):
            return await original_set(self, stmt)
        for name, value in zip(stmt.targets, row, strict=True):
            self._frames.set(name, value)
        return None

    ScriptInterpreter._exec_set = exec_set  # type: ignore[method-assign]
