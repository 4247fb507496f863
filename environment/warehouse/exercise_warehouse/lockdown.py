"""Close the engine's doors to the host: BigQuery has no file system, neither does ours.

bqemulator's DuckDB starts with external access on, so SQL sent through the REST API could
read and write any file the process can (`COPY ... TO`, `read_text`, `ATTACH`, `INSTALL`).
Two layers close that:

* `lock_connection`: once the extensions are loaded, DuckDB itself refuses file system access
  outside one private staging folder (where load jobs stage their uploads), will not install
  or autoload extensions, and its configuration is locked so no later `SET` reopens it.
* `refusal`: statements and table functions that only make sense on a host are refused
  before translation with a BigQuery-style message that the candidate's dbt log shows, rather
  than DuckDB's "disabled by configuration".
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

# DuckDB statements a BigQuery client has no business sending.
_HOST_STATEMENTS = re.compile(
    r"^\s*(COPY|ATTACH|DETACH|INSTALL|FORCE\s+INSTALL|LOAD|PRAGMA|EXPORT\s+DATABASE|IMPORT\s+DATABASE|"
    r"CHECKPOINT|FORCE\s+CHECKPOINT|CREATE\s+(OR\s+REPLACE\s+)?(PERSISTENT\s+|TEMP\s+|TEMPORARY\s+)?SECRET|"
    r"SET\s+(GLOBAL\s+|SESSION\s+|LOCAL\s+)?(enable_|allowed_|lock_|autoload|autoinstall|custom_extension|"
    r"extension_directory|home_directory|temp_directory|secret_directory|memory_limit|max_memory|threads|"
    r"allow_unsigned|allow_community|external_threads|duckdb_api|custom_user_agent)|RESET)\b",
    re.IGNORECASE,
)
# Table and scalar functions that reach files, the network or the engine's own settings.
_HOST_FUNCTION_PREFIXES = ("read_", "parquet_", "st_read", "st_write", "sqlite_", "postgres_", "mysql_",
                           "iceberg_", "delta_", "duckdb_secret", "which_secret", "load_aws", "sniff_csv")
_HOST_FUNCTIONS = frozenset({"glob", "getenv", "current_setting", "duckdb_settings", "duckdb_extensions",
                             "st_drivers", "st_readosm", "st_read_meta", "query_table", "query", "csv_scan",
                             "json_scan", "parquet_scan", "ndjson_scan", "read_text", "read_blob"})


class HostAccessRefused(Exception):
    """The statement would touch the host; the message is what the client is told."""


def refusal(bq_sql: str) -> str | None:
    """Why `bq_sql` is refused, or None when it may run (host-touching statements and functions)."""
    match = _HOST_STATEMENTS.match(_strip_comments(bq_sql))
    if match:
        keyword = " ".join(match.group(1).split()).upper()
        return (f"Access Denied: {keyword} statements are not available in the exercise warehouse "
                f"(BigQuery has no file system or engine settings to reach)")
    try:
        statements = sqlglot.parse(bq_sql, read="bigquery")
    except Exception:  # noqa: BLE001 — let the translator report its own syntax error
        return None
    for statement in statements:
        if statement is None:
            continue
        for node in statement.walk():
            name = _function_name(node)
            if name and (name in _HOST_FUNCTIONS or name.startswith(_HOST_FUNCTION_PREFIXES)):
                return (f"Function not found: {name}; the exercise warehouse has no access to files "
                        f"or engine settings")
            if isinstance(node, exp.Table) and _looks_like_path(node.name):
                return (f"Not found: Table {node.name} (the exercise warehouse does not read files)")
    return None


def lock_connection(connection, allowed_dir: str | None, memory_limit: str | None = None) -> None:
    """Turn off every route from SQL to the host, then lock the configuration.

    Call after the extensions the engine needs are loaded: nothing can be installed or loaded
    afterwards. `allowed_dir` (a folder private to this engine) stays readable and writable so
    load jobs can stage their uploads; it also holds DuckDB's spill files.
    """
    if allowed_dir:
        folder = allowed_dir.rstrip("/") + "/"
        connection.execute(f"SET allowed_directories = [{_quote(folder)}]")
        connection.execute(f"SET temp_directory = {_quote(folder + 'duckdb-spill')}")
    if memory_limit:
        connection.execute(f"SET memory_limit = {_quote(memory_limit)}")
    connection.execute("SET enable_external_access = false")
    connection.execute("SET autoinstall_known_extensions = false")
    connection.execute("SET autoload_known_extensions = false")
    connection.execute("SET lock_configuration = true")


def _function_name(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return None


def _looks_like_path(name: str) -> bool:
    return "/" in name or "\\" in name or bool(re.search(r"\.(csv|tsv|parquet|json|ndjson|jsonl|txt|gz|zst|db|duckdb)$",
                                                        name, re.IGNORECASE))


def _strip_comments(sql: str) -> str:
    return re.sub(r"^(\s*(--[^\n]*\n|#[^\n]*\n|/\*.*?\*/))*", "", sql, flags=re.DOTALL)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
