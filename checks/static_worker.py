"""The static analysis worker: `python -m checks.static_worker` reads a JSON payload
(root, dbt_project_dir, manifest_path, compiled_dir, commits, ids) on stdin and writes one
JSON line per check result on stdout, in the order of `ids`. checks.static starts it with
limits and stops it when one is exceeded; nothing here trusts that anyone else will."""

from __future__ import annotations

import json
import os
import sys

from checks.registry import REGISTRY, run_check
from checks.static import READY, bounded
from checks.static_context import StaticContext, load_manifest


def main() -> None:
    results = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything a check prints (Python or C) goes to stderr, never among the results
    payload = json.load(sys.stdin)
    _limit_memory(payload.get("memory_bytes"))
    manifest = load_manifest(payload["manifest_path"]) if payload.get("manifest_path") else None
    ctx = StaticContext.build(payload["root"], dbt_project_dir=payload.get("dbt_project_dir"), manifest=manifest,
                              compiled_dir=payload.get("compiled_dir"), commits=payload.get("commits") or [])
    results.write(json.dumps(READY) + "\n")
    results.flush()
    for check_id in payload["ids"]:
        result = bounded(run_check(REGISTRY[check_id], ctx))
        results.write(json.dumps(result.to_json(), default=str) + "\n")
        results.flush()


def _limit_memory(memory_bytes: int | None) -> None:
    """Cap the address space once our own code is loaded (a fresh checkout compiles its modules
    on import, which must not count against what parsing the candidate's SQL may use)."""
    if not memory_bytes:
        return
    import resource

    import sqlglot
    import yaml  # noqa: F401  (imported lazily by the context and the runner: loaded, and compiled, before the cap)

    import grader.engine_faults  # noqa: F401
    import grader.resources  # noqa: F401

    sqlglot.parse_one("select 1 as x", read="bigquery")  # load the dialect before the cap
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


if __name__ == "__main__":
    main()
