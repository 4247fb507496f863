"""Engine faults are not the candidate's fault: recognise, from an error message, a failure of the
grading engine (bqemulator over DuckDB) rather than of the candidate's BigQuery SQL.

The grader runs the candidate's project on an emulator, not on BigQuery. When a dbt node or a
check fails with an error only the emulator gives (an unsupported BigQuery function or
statement, a DuckDB parser or binder error on SQL the translation produced, an internal
error), the failure says nothing certain about the candidate. `explain` names the reason;
the dbt node and the check carry it (`engine_fault`), the report shows it beside the failure,
the criteria those checks inform are provisional, and the summary line asks the interviewer
to look. The score is not changed silently: it is computed as always and flagged.

Messages the real BigQuery would also give (an unknown column, a syntax error BigQuery's own
parser rejects) are not recognised: they are the candidate's.
"""

from __future__ import annotations

import re
from typing import Any

# What the emulator says only about itself. (pattern, reason shown in the report)
_ENGINE_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.IGNORECASE), reason) for p, reason in (
    (r"unsupported feature|is not supported by (the )?(emulator|bqemulator)|not supported in the emulator|\b501\b",
     "the emulator does not support this BigQuery feature"),
    (r"Not implemented Error", "the engine (DuckDB) does not implement this operation"),
    (r"INTERNAL Error|An internal error occurred|Unexpected translation error",
     "the engine failed internally"),
    (r"Query execution failed: Parser Error",
     "the emulator translated valid BigQuery SQL into SQL its engine (DuckDB) cannot parse"),
    (r"Required keyword: '\w+' missing for <class 'sqlglot",
     "the emulator's SQL translation (sqlglot) failed on this statement"),
    (r"Could not choose a best candidate function",
     "the engine could not type a call BigQuery accepts (implicit coercion)"),
    (r"extract specifier \"?\w+\"? not recognized|Conversion Error: .*specifier",
     "the engine does not know this date part"),
    (r"Binder Error: Referenced column \"?(MONDAY|TUESDAY|WEDNESDAY|THURSDAY|FRIDAY|SATURDAY|SUNDAY|ISOWEEK|ISOYEAR)\"?",
     "the emulator's translation lost a date part"),
    (r"Catalog Error: (Scalar|Aggregate|Table) Function with name bqx_",
     "the exercise warehouse's own helper functions are missing (engine set-up)"),
))

# BigQuery functions the emulator reports as "Function not found" (names as BigQuery spells them).
BIGQUERY_FUNCTIONS_MISSING = frozenset({
    "net.host", "net.reg_domain", "net.public_suffix", "net.ip_from_string", "net.safe_ip_from_string",
    "net.ip_to_string", "net.ipv4_from_int64", "net.ipv4_to_int64", "net.ip_net_mask", "net.ip_trunc",
    "hll_count.init", "hll_count.merge", "hll_count.merge_partial", "hll_count.extract",
    "keys.new_keyset", "keys.add_key_from_raw_bytes", "keys.keyset_chain", "keys.keyset_from_json",
    "keys.keyset_to_json", "keys.rotate_keyset", "keys.keyset_length",
    "aead.encrypt", "aead.decrypt_string", "aead.decrypt_bytes", "deterministic_encrypt", "deterministic_decrypt_string",
    "date_bucket", "datetime_bucket", "timestamp_bucket", "gap_fill", "contains_substr", "search", "vector_search",
    "ml.predict", "ml.evaluate", "ml.forecast", "ml.generate_text", "ml.generate_embedding",
    "approx_top_sum", "kll_quantiles.init_int64", "kll_quantiles.merge_int64", "obj.make_ref", "obj.fetch_metadata",
    "external_query", "session_user", "append", "differential_privacy",
})
_FUNCTION_NOT_FOUND = re.compile(r"Function not found: ([A-Za-z0-9_.]+)")
_MANGLED = re.compile(r"^[a-z0-9_]+?__([a-z0-9_]+?)__([a-z0-9_]+)$")  # project__namespace__name


def explain(message: str | None) -> str | None:
    """Why `message` shows an engine limitation rather than the candidate's error, or None."""
    if not message:
        return None
    for pattern, reason in _ENGINE_MESSAGES:
        if pattern.search(message):
            return reason
    found = _FUNCTION_NOT_FOUND.search(message)
    if found:
        name = _bigquery_name(found.group(1))
        if name in BIGQUERY_FUNCTIONS_MISSING:
            return f"the emulator lacks the BigQuery function {name.upper()}"
    return None


def _bigquery_name(reported: str) -> str:
    """`marketplace_h_analytics__net__host` (how the emulator reports NET.HOST) -> `net.host`."""
    name = reported.lower()
    mangled = _MANGLED.match(name)
    return f"{mangled.group(1)}.{mangled.group(2)}" if mangled else name


def check_fault(status: str, message: str, evidence: dict[str, Any]) -> str | None:
    """The engine fault behind a failed or errored check: its own message, or (dbt.build) its nodes'."""
    if status not in ("fail", "error"):
        return None
    own = explain(message)
    if own:
        return own
    nodes = [n for n in evidence.get("not_passing", []) if isinstance(n, dict) and n.get("engine_fault")]
    if nodes:
        listed = "; ".join(f"{n['node'].rsplit('.', 1)[-1]}: {n['engine_fault']}" for n in nodes[:5])
        return f"{len(nodes)} node(s) failed on engine limitations ({listed})"
    return None


def affected(report: dict[str, Any]) -> dict[str, Any]:
    """{checks: {id: reason}, criteria: [ids]} of a report (report.json's dicts).

    A check is affected when it carries an engine fault. When dbt.build does, the failing checks
    that read what dbt built (every family but the static ones) are affected too: a model the
    engine could not build leaves the marts they read missing or stale.
    """
    checks = {c["id"]: c["engine_fault"] for c in report.get("checks", []) if c.get("engine_fault")}
    if "dbt.build" in checks:
        for c in report.get("checks", []):
            if c["status"] in ("fail", "error") and c["id"].split(".", 1)[0] not in ("lint", "dag", "history") \
                    and c["id"] not in checks:
                checks[c["id"]] = "reads models dbt could not build on the engine (see dbt.build)"
    criteria = sorted({cr["id"] for cr in report.get("rubric", {}).get("criteria", [])
                       if any(check in checks for check in cr.get("checks", []))})
    return {"checks": dict(sorted(checks.items())), "criteria": criteria}


def summary_line(report: dict[str, Any]) -> str | None:
    """The summary's line asking the interviewer to look, or None when no engine fault was seen."""
    found = affected(report)
    if not found["checks"]:
        return None
    return (f"  ! engine: {len(found['checks'])} check(s) failed on what looks like a grading-engine limitation, not "
            f"the candidate's SQL; provisional criteria: {', '.join(found['criteria']) or 'none'}. Look at the "
            f"failures marked 'engine limitation' in the report (run the SQL on BigQuery if in doubt)")


def mark(report: dict[str, Any]) -> None:
    """Record the engine faults in report.json: `engine_faults` {checks, criteria}, each affected
    criterion `provisional: true`, and the rubric provisional when any criterion is."""
    found = affected(report)
    report["engine_faults"] = found
    rubric = report.get("rubric", {})
    for criterion in rubric.get("criteria", []):
        criterion["provisional"] = criterion["id"] in found["criteria"]
    if found["criteria"]:
        rubric["provisional"] = True
        rubric.setdefault("provisional_because", []).append(
            f"engine limitation behind {', '.join(sorted(found['checks']))}")
