"""Run every static check (lint.*, dag.*, history.*) over a snapshot, without executing
candidate code, within bounds the candidate's files cannot push.

The checks run in a worker process (`python -m checks.static_worker`) with an address-space
limit, one check after another, each result sent back as one JSON line. The grader stops
the worker when a check exceeds its time (CHECK_TIME_LIMIT_S) or the stage its total
(STAGE_TIME_LIMIT_S), or when the worker dies (out of memory); that check is an `error`
saying so, and a fresh worker carries on with the checks left while time remains. Inside
the worker, each model's SQL is parsed within a size, time and depth limit
(static_context.parse_sql): a model beyond them is named by lint.models_analysed. Regular
expressions over candidate text cannot be interrupted from inside a process; killing the
worker can. Evidence lists and strings are capped so that report.json stays small.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import checks.dag  # noqa: F401  (registers dag.*)
import checks.history  # noqa: F401  (registers history.*)
import checks.lint  # noqa: F401  (registers lint.*)
from checks.registry import REGISTRY, CheckResult, CheckSpec, run_check, specs
from checks.static_context import StaticContext

STAGES_RUN_HERE = ("static", "history")
PARSES_EVERY_MODEL = "lint.models_analysed"
RUN_ORDER = ("history", "dag", "lint")  # the order they are run in
STAGE_TIME_LIMIT_S = 300.0
CHECK_TIME_LIMIT_S = 120.0
WORKER_MEMORY_BYTES = 3 * 1024**3
# Workers started again after one was stopped, before the remaining checks are given up.
MAX_WORKER_STOPS = 3
# Checks that start their own sandboxed, time-limited process: they run from the grader's.
OWN_PROCESS_CHECKS = frozenset({"dag.airflow_loads"})
# Evidence bounds: items per list, characters per string, nesting followed.
MAX_EVIDENCE_ITEMS = 100
MAX_EVIDENCE_CHARS = 2_000
MAX_EVIDENCE_DEPTH = 12
# The worker's first line: imports done, context built (its own time, also check_s at most).
READY = {"ready": True}


@dataclass(frozen=True)
class StaticLimits:
    """Wall time of the whole static stage and of each check; address space of the worker."""

    stage_s: float = STAGE_TIME_LIMIT_S
    check_s: float = CHECK_TIME_LIMIT_S
    memory_bytes: int = WORKER_MEMORY_BYTES


def static_context(snapshot: Any, dbt_run: Any, airflow_python: Path | None = None) -> StaticContext:
    """The context the checks read, built in this process (the worker builds its own)."""
    manifest = dbt_run.manifest() if dbt_run is not None else None
    return StaticContext.build(
        snapshot.root,
        dbt_project_dir=getattr(dbt_run, "project_dir", None),
        manifest=manifest,
        compiled_dir=getattr(dbt_run, "compiled_dir", None),
        commits=[c.to_json() for c in snapshot.commits],
        airflow_python=airflow_python,
    )


def static_specs() -> list[CheckSpec]:
    """The catalogue's checks this stage runs (its static and history stages), by id."""
    return [spec for spec in specs() if spec.stage in STAGES_RUN_HERE]


def run_static_checks(
    snapshot: Any, dbt_run: Any, airflow_python: Path | None = None, limits: StaticLimits = StaticLimits()
) -> list[CheckResult]:
    """Every static check's result, in family then id order."""
    ids = [spec.id for spec in static_specs()]
    manifest_path = getattr(dbt_run, "manifest_path", None)
    payload = {
        "root": str(snapshot.root),
        "dbt_project_dir": _path_or_none(getattr(dbt_run, "project_dir", None)),
        "manifest_path": _path_or_none(manifest_path),
        "compiled_dir": _path_or_none(getattr(dbt_run, "compiled_dir", None)),
        "commits": [c.to_json() for c in snapshot.commits],
    }
    # The cheap families first: a model that stalls lint.* must not starve dag.* and history.*.
    # Within lint, the coverage check first: it parses every model within the parse guards, so a
    # model too big to analyse is named there and the rules after it read cached trees.
    in_worker = sorted((i for i in ids if i not in OWN_PROCESS_CHECKS),
                       key=lambda i: (RUN_ORDER.index(i.split(".")[0]), i != PARSES_EVERY_MODEL))
    results = _run_in_workers(payload, in_worker, limits)
    own = [i for i in ids if i in OWN_PROCESS_CHECKS]
    if own:
        ctx = static_context(snapshot, None, airflow_python)
        results.update({i: run_check(REGISTRY[i], ctx) for i in own})
    return [bounded(results[i]) for i in ids]


def _path_or_none(path: Any) -> str | None:
    return None if path is None else str(path)


def _run_in_workers(payload: dict[str, Any], ids: list[str], limits: StaticLimits) -> dict[str, CheckResult]:
    """Results of `ids`, a worker at a time; a check a worker did not finish is an error."""
    stage_ends = time.monotonic() + limits.stage_s
    results: dict[str, CheckResult] = {}
    pending = list(ids)
    stops = 0
    while pending:
        if time.monotonic() >= stage_ends or stops >= MAX_WORKER_STOPS:
            why = (f"the static analysis stage's time limit ({limits.stage_s:g} s) was spent on earlier checks"
                   if stops < MAX_WORKER_STOPS else f"the static analysis process was stopped {stops} times")
            results.update({i: _not_run(i, f"not run: {why}") for i in pending})
            break
        done, stopped = _one_worker({**payload, "ids": pending}, limits, stage_ends)
        results.update(done)
        pending = [i for i in pending if i not in done]
        if pending and stopped is not None:
            results[pending[0]] = _not_run(pending[0], stopped)
            pending = pending[1:]
            stops += 1
    return results


def _not_run(check_id: str, message: str) -> CheckResult:
    spec = REGISTRY[check_id]
    return CheckResult(check_id, "error", 0.0, message, severity=spec.severity, purpose=spec.title)


def _one_worker(payload: dict[str, Any], limits: StaticLimits, stage_ends: float) -> tuple[dict[str, CheckResult], str | None]:
    """Run a worker over payload["ids"] until it ends or a limit stops it: the results it
    sent, and why the check it was running did not finish (None when all finished)."""
    from grader.sandbox import Limits, limited

    command = limited([sys.executable, "-m", "checks.static_worker"], Limits(memory_bytes=None))
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done: dict[str, CheckResult] = {}
    with tempfile.TemporaryFile() as errors:  # a file: a chatty worker cannot block on a full pipe
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                                env=env, cwd=root)
        try:
            return _read_results(proc, payload, limits, stage_ends, errors, done)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()


def _read_results(proc: subprocess.Popen[bytes], payload: dict[str, Any], limits: StaticLimits, stage_ends: float,
                  errors: Any, done: dict[str, CheckResult]) -> tuple[dict[str, CheckResult], str | None]:
    """Send the payload, collect result lines, each check within its time; see _one_worker."""
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps({**payload, "memory_bytes": limits.memory_bytes}).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    buffer = b""
    check_ends = min(stage_ends, time.monotonic() + limits.check_s)
    while True:
        left = check_ends - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            if check_ends >= stage_ends:
                return done, f"did not finish within the static analysis stage's time limit ({limits.stage_s:g} s)"
            return done, f"did not finish within its time limit ({limits.check_s:g} s)"
        chunk = os.read(proc.stdout.fileno(), 1 << 16)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            try:
                data = json.loads(line)
                if data != READY:
                    result = _result_from_json(data)
                    done[result.id] = result
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # not a result line; the worker writes nothing else there
            # the next check's time starts now (the first one's once the worker is ready)
            check_ends = min(stage_ends, time.monotonic() + limits.check_s)
    code = proc.wait()
    if len(done) == len(payload["ids"]):
        return done, None
    errors.seek(max(0, errors.seek(0, os.SEEK_END) - 2000))
    last_words = errors.read().decode("utf-8", "replace").strip()
    tail = last_words.splitlines()[-1:]
    # a MemoryError can surface anywhere, even as an "Exception ignored" line before the last
    died = "ran out of memory" if "MemoryError" in last_words else f"exit status {code}"
    return done, f"the static analysis process stopped while running this check ({died}: {' '.join(tail)[:300]})"


def _result_from_json(data: dict[str, Any]) -> CheckResult:
    return CheckResult(data["id"], data["status"], data["score"], data["message"], data["evidence"],
                       severity=data["severity"], purpose=data["purpose"])


def bounded(result: CheckResult) -> CheckResult:
    """The result with its message and evidence capped: at most MAX_EVIDENCE_ITEMS per
    list (the count left out beside it, as `<key>_omitted`), MAX_EVIDENCE_CHARS per string."""
    result.message = _bounded(result.message, 0)
    result.evidence = _bounded(result.evidence, 0)
    return result


def _bounded(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_EVIDENCE_CHARS else value[:MAX_EVIDENCE_CHARS] + " …(cut)"
    if depth >= MAX_EVIDENCE_DEPTH and isinstance(value, (list, dict)):
        return "…(nested too deep)"
    if isinstance(value, list):
        return [_bounded(item, depth + 1) for item in value[:MAX_EVIDENCE_ITEMS]]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in list(value.items())[:MAX_EVIDENCE_ITEMS]:
            out[str(key)] = _bounded(item, depth + 1)
            if isinstance(item, list) and len(item) > MAX_EVIDENCE_ITEMS:
                out[f"{key}_omitted"] = len(item) - MAX_EVIDENCE_ITEMS
        if len(value) > MAX_EVIDENCE_ITEMS:
            out["keys_omitted"] = len(value) - MAX_EVIDENCE_ITEMS
        return out
    return value
