"""What hostile workspaces cost the grader's own stages: time, peak memory, report size.

Two cases from issue 10, each measured in a fresh process (peak RSS is the process's own):

* ``history``: 500 commits alternating two 5,000-file trees. Measures the snapshot (history
  and copy) plus the history.* checks, and the JSON of the snapshot and those checks (the
  part of report.json they make).
* ``static``: a dbt model whose compiled SQL is 6.8 MB (a Jinja loop of 100,000 UNION ALL
  branches), given to the static stage as dbt's manifest would give it. Measures
  ``run_static_checks`` (lint.*, dag.*, history.*).

    .venv/bin/python benchmarks/bench_hostile_inputs.py [history|static ...]

``--code DIR`` measures another checkout of the grader (e.g. a worktree of an older commit)
with this same script, for before/after figures.

Measured 2026-11-30 on a loaded 2-core machine, before (f7c96a2) -> after (branch hardening):

    history  snapshot 670 s -> 13 s; static checks 136 s -> 1.3 s; snapshot + history JSON
             81.5 MB -> 0.26 MB; peak RSS 429 MB -> 42 MB (grader) + 38 MB (largest child)
    static   static checks 248 s -> 2.8 s; peak RSS 700 MB -> 36 MB (grader) + 50 MB (worker);
             four lint checks ended in "error" -> none
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HISTORY_COMMITS = 500
HISTORY_FILES = 5_000
STATIC_BRANCHES = 100_000


def build_alternating_history(ws: Path) -> None:
    """A repository whose commits alternate between two trees of HISTORY_FILES files each
    (every commit changes every file), written with git fast-import in a few seconds."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(ws)], check=True)
    lines: list[bytes] = []
    for variant in (0, 1):
        for i in range(HISTORY_FILES):
            data = f"select {i} as id, {variant} as v\n".encode()
            lines += [b"blob", f"mark :{variant * HISTORY_FILES + i + 1}".encode(), f"data {len(data)}".encode(), data]
    for n in range(HISTORY_COMMITS):
        variant = n % 2
        message = f"step {n}: swap all models".encode()
        lines += [b"commit refs/heads/main", f"mark :{2 * HISTORY_FILES + n + 1}".encode(),
                  f"author C <c@example.com> {1_700_000_000 + 60 * n} +0000".encode(),
                  f"committer C <c@example.com> {1_700_000_000 + 60 * n} +0000".encode(),
                  f"data {len(message)}".encode(), message]
        if n:
            lines.append(f"from :{2 * HISTORY_FILES + n}".encode())
        lines += [f"M 100644 :{variant * HISTORY_FILES + i + 1} dbt/models/m{i // 100}/model_{i}.sql".encode()
                  for i in range(HISTORY_FILES)]
    subprocess.run(["git", "-C", str(ws), "fast-import", "--quiet"], input=b"\n".join(lines) + b"\n", check=True)
    subprocess.run(["git", "-C", str(ws), "checkout", "-q", "-f", "main"], check=True)


def build_huge_model(ws: Path) -> Path:
    """A dbt project with one model looping 100,000 times; returns the manifest path."""
    project = ws / "dbt"
    (project / "models" / "marts").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: analytics\nversion: '1.0'\nprofile: analytics\n")
    raw = ("{% for i in range(100000) %}select {{ i }} as order_id, 'padding-padding-padding-padding' as v "
           "union all\n{% endfor %}select 0 as order_id, 'x' as v\n")
    (project / "models" / "marts" / "fct_orders.sql").write_text(raw)
    compiled = "".join(f"select {i} as order_id, 'padding-padding-padding-padding' as v union all\n"
                       for i in range(STATIC_BRANCHES)) + "select 0 as order_id, 'x' as v\n"
    node = {"resource_type": "model", "package_name": "analytics", "name": "fct_orders",
            "unique_id": "model.analytics.fct_orders", "original_file_path": "models/marts/fct_orders.sql",
            "raw_code": raw, "compiled_code": compiled, "config": {"materialized": "table"},
            "refs": [], "sources": [], "depends_on": {"nodes": []}, "columns": {}, "description": ""}
    manifest = ws.parent / "manifest.json"
    manifest.write_text(json.dumps({"metadata": {"project_name": "analytics"},
                                    "nodes": {node["unique_id"]: node}, "sources": {}}))
    return manifest


def peak_rss_mb() -> int:
    """This process's own peak (VmHWM): getrusage's maxrss would include the parent's
    peak, which Linux carries across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(case: str, tmp: Path) -> dict:
    """Runs inside the measured process (the code under test is on sys.path)."""
    from types import SimpleNamespace

    from checks.static import run_static_checks
    from grader.snapshot import take_snapshot

    ws = tmp / "ws"
    started = time.monotonic()
    if case == "history":
        snapshot = take_snapshot(ws, tmp / "work")
        snapshot_s = time.monotonic() - started
        dbt_run = None
    else:
        snapshot = take_snapshot(ws, tmp / "work")
        snapshot_s = time.monotonic() - started
        manifest_path = tmp / "manifest.json"
        dbt_run = SimpleNamespace(project_dir=snapshot.root / "dbt", compiled_dir=None, manifest_path=manifest_path,
                                  manifest=lambda: json.loads(manifest_path.read_text()))
    checks_started = time.monotonic()
    results = run_static_checks(snapshot, dbt_run)
    checks_s = time.monotonic() - checks_started
    wanted = [r for r in results if case == "static" or r.id.startswith("history.")]
    report_part = json.dumps({"snapshot": snapshot.to_json(), "checks": [r.to_json() for r in wanted]}, default=str)
    return {
        "case": case,
        "snapshot_s": round(snapshot_s, 2),
        "checks_s": round(checks_s, 2),
        "report_json_bytes": len(report_part.encode()),
        "peak_rss_mb": peak_rss_mb(),
        # the largest process it waited for: the static worker, or a git command
        "children_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "statuses": {r.id: r.status for r in wanted
                     if r.status == "error" or case == "history" or r.id == "lint.models_analysed"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=["history", "static"], help="history, static (default: both)")
    parser.add_argument("--code", type=Path, default=REPO, help="grader checkout to measure (default: this one)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: CASE:TMP, run in the child
    args = parser.parse_args()
    if set(args.cases) - {"history", "static"}:
        parser.error("cases are: history, static")
    if args.measure:
        case, tmp = args.measure.split(":", 1)
        print(json.dumps(measure(case, Path(tmp))))
        return
    for case in args.cases:
        with tempfile.TemporaryDirectory(prefix=f"bench-{case}-") as tmp:
            ws = Path(tmp) / "ws"
            build_alternating_history(ws) if case == "history" else build_huge_model(ws)
            env = {**os.environ, "PYTHONPATH": str(args.code.resolve())}
            done = subprocess.run([sys.executable, __file__, "--measure", f"{case}:{tmp}"], env=env,
                                  capture_output=True, text=True, cwd=args.code)
            print(done.stdout.strip() or done.stderr.strip()[-2000:])


if __name__ == "__main__":
    main()
