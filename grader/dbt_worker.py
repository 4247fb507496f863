"""The dbt worker: one long-lived dbt process per grading, run inside the grading's jail.

Starting dbt costs seconds (Python, dbt, the BigQuery client libraries) before it does any
work, and a full grading runs dbt a dozen times. This program imports dbt once and then runs
the commands the grader sends, one at a time, with dbt's own programmatic runner.

Protocol (the grader's side is `grader.dbt_run.DbtSession`):

* stdin: one JSON object per line, ``{"args": [...], "log": "<file>", "env": {...}}``: the dbt
  command line, the file that gets everything it prints, and environment variables to set
  for it (the warehouse's address, known only once the warehouse runs). End of input ends
  the worker.
* stdout: one JSON object per line, ``{"ready": true}`` once dbt is imported, then
  ``{"exit_code": N}`` after each command, with dbt's own exit codes (0 success, 1 a node
  failed, 2 dbt could not run). Nothing else is ever written there: while a command runs,
  file descriptors 1 and 2 point at its log, and this channel is a private duplicate.

It imports only the standard library and dbt, so it runs from the grader's virtualenv
without the grader's own source on its path. The candidate's Jinja runs in dbt's sandboxed
template environment, which has no way to reach this process's file descriptors.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def main() -> int:
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    from dbt.cli.main import dbtRunner  # the seconds this worker exists to pay once

    channel.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        os.environ.update(command.get("env") or {})
        channel.write(json.dumps({"exit_code": run(dbtRunner, command["args"], command["log"])}) + "\n")
    return 0


def run(runner_class, args: list[str], log_path: str) -> int:
    """One dbt command with its output in `log_path`; dbt's exit code for it."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    saved = os.dup(2)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    try:
        result = runner_class().invoke(args)
        code = 0 if result.success else 2 if result.exception is not None else 1  # dbt's printed its error
    except Exception:  # noqa: BLE001 — a usage error or dbt's own fault: reported, and the next command still runs
        traceback.print_exc()
        code = 2
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    return code


if __name__ == "__main__":
    sys.exit(main())
