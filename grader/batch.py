"""Batch grading: every workspace in a folder, each in its own `grade` process, then a ranking.

A candidate whose grading crashes or times out gets a row saying so; the others go on.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any
from collections.abc import Callable

from grader.options import GradeOptions, add_option_arguments
from grader.pipeline import candidate_name

GIB = 1024 ** 3
# A grading keeps about one core busy: dbt and the engine are one Python process each and mostly
# take turns (1.1 cores measured during a build on 2 cores). Its processes peak well under this
# (see benchmarks/bench_batch.py), which leaves room for a candidate's heavier queries.
GRADING_MEMORY_BYTES = 3 * GIB

SUMMARY_FIELDS = ("rank", "candidate", "band", "total", "status", "exit_code", "report", "workspace")


def batch_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade batch",
        description="Grade every workspace (each subfolder) of DIR, in parallel where the machine allows, then "
                    "write OUT/summary.html and OUT/summary.csv ranking them, with links to each report.")
    parser.add_argument("folder", type=Path, help="folder holding one subfolder per candidate workspace")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="reports folder (default: reports)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="gradings at once (default: as many as the cores and the free memory allow, "
                             f"{GRADING_MEMORY_BYTES // GIB} GiB each; here {default_jobs()})")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per candidate (default 3600)")
    parser.epilog = "Options after -- go to each `grade`, e.g.  grade batch DIR -- --scale small --quick"
    return parser


def default_jobs(cores: int | None = None, available_bytes: int | None = None) -> int:
    """Gradings to run at once: one per core, no more than the available memory holds."""
    cores = cores or os.cpu_count() or 1
    if available_bytes is None:
        available_bytes = _available_memory()
    by_memory = available_bytes // GRADING_MEMORY_BYTES if available_bytes else cores
    return max(1, min(cores, by_memory))


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def options_parser() -> argparse.ArgumentParser:
    """The options batch passes to each grading (those after `--`): `grade`'s own flags."""
    parser = argparse.ArgumentParser(prog="grade batch DIR --", description="options for every workspace's grading")
    add_option_arguments(parser)
    return parser


def report_folders(workspaces: list[Path]) -> dict[Path, str]:
    """A distinct report folder name per workspace (from the folder's own name, never the
    target of a symlinked folder). The folder's name when it is already
    safe, else its sanitised name (`a b` -> `a_b`); where two would still meet (also when
    they differ only in case, for case-insensitive disks), the folder already named so keeps
    the name and the others get a suffix from a hash of their own raw name."""
    by_base: dict[str, list[Path]] = {}
    for ws in workspaces:
        by_base.setdefault(candidate_name(ws, ws.name).lower(), []).append(ws)
    taken = {base for base, group in by_base.items() if len(group) == 1}
    names: dict[Path, str] = {}
    for group in by_base.values():
        if len(group) == 1:
            names[group[0]] = candidate_name(group[0], group[0].name)
            continue
        for ws in group:
            base = candidate_name(ws, ws.name)
            if base == ws.name and base.lower() not in taken:
                names[ws] = base  # the folder that already has this exact, safe name keeps it
                taken.add(base.lower())
                continue
            digest = hashlib.sha256(os.fsencode(ws.name)).hexdigest()
            width = 8
            while f"{base}-{digest[:width]}".lower() in taken:
                width += 4
            names[ws] = f"{base}-{digest[:width]}"
            taken.add(names[ws].lower())
    return names


def _grade_one(workspace: Path, options: GradeOptions, timeout: float) -> dict[str, Any]:
    """Grade one workspace, in its own process, into OUT/<name>/ (`options.name` sets both the
    folder and the name the report shows)."""
    name = options.name or workspace.name
    report_path = options.out / name / "report.json"
    for stale in (report_path, report_path.with_suffix(".html")):  # from an earlier batch into the same OUT
        stale.unlink(missing_ok=True)
    with tempfile.NamedTemporaryFile("w", prefix="grade-batch-", suffix=".json", encoding="utf-8") as payload:
        json.dump({"workspace": os.path.abspath(workspace), "options": options.to_payload()}, payload)
        payload.flush()
        command = [sys.executable, "-m", "grader.isolated", payload.name]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
            code, error = done.returncode, done.stderr.strip().splitlines()[-1:] if done.returncode else []
        except subprocess.TimeoutExpired:
            code, error = None, [f"grading took longer than {timeout:g} s and was stopped"]
    folder = os.fsencode(workspace.name).decode("utf-8", "replace")  # the folder as named, printable
    row: dict[str, Any] = {"candidate": name, "workspace": folder, "exit_code": code, "band": None, "total": None,
                           "status": "no report", "report": None, "error": " ".join(error)}
    if report_path.exists():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        row.update(band=report["rubric"]["band"], total=report["rubric"]["total"], status=report["status"],
                   report=f"{name}/report.html")
    return row


def run_batch(argv: list[str], progress: Callable[[str], None]) -> int:
    split = argv.index("--") if "--" in argv else len(argv)
    args = batch_parser().parse_args(argv[:split])
    extra = argv[split + 1:]
    if any(option.split("=", 1)[0] in ("--name", "--out") for option in extra):
        print("grade batch: --name and --out are set per workspace by batch; give --out before --", file=sys.stderr)
        return 2
    options = GradeOptions.from_namespace(options_parser().parse_args(extra))
    if not args.folder.is_dir():
        print(f"grade batch: {args.folder}: not a directory", file=sys.stderr)
        return 2
    workspaces = sorted(p for p in args.folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not workspaces:
        print(f"grade batch: {args.folder} holds no workspace folders", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    names = report_folders(workspaces)
    jobs = max(1, args.jobs if args.jobs is not None else default_jobs())
    progress(f"grading {len(workspaces)} workspaces, {jobs} at a time")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_grade_one, ws, replace(options, out=args.out, name=names[ws], quiet=True), args.timeout)
                   for ws in workspaces]
        rows = []
        for ws, future in zip(workspaces, futures):
            rows.append(future.result())
            progress(f"  {ws.name}: {rows[-1]['band'] or rows[-1]['status']}")
    elapsed = time.monotonic() - started
    rows.sort(key=lambda r: (r["total"] is None, -(r["total"] or 0), r["candidate"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    _write_csv(rows, args.out / "summary.csv")
    _write_html(rows, args.out / "summary.html")
    for row in rows:
        print(f"{row['rank']:>3}  {row['candidate']:<30} {row['band'] or '-':<13} "
              f"{row['total'] if row['total'] is not None else '-':>5}  {row['status']}")
    print(f"graded {len(rows)} workspaces in {elapsed:.0f} s, {jobs} at a time: "
          f"{len(rows) * 3600 / max(elapsed, 1e-9):.0f} gradings per hour")
    print(f"summary: {args.out / 'summary.html'}\n         {args.out / 'summary.csv'}")
    return 0


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _write_html(rows: list[dict[str, Any]], path: Path) -> None:
    body = "\n".join(
        "<tr><td>{rank}</td><td>{name}</td><td>{band}</td><td>{total}</td><td>{status}</td></tr>".format(
            rank=row["rank"],
            name=(f'<a href="{html.escape(row["report"], quote=True)}">{html.escape(row["candidate"])}</a>'
                  if row["report"] else html.escape(row["candidate"]))
                 + (f' (folder “{html.escape(row["workspace"])}”)' if row["workspace"] != row["candidate"] else ""),
            band=html.escape(row["band"] or "-"),
            total="-" if row["total"] is None else f"{row['total']:.2f}",
            status=html.escape(row["status"] + (f": {row['error']}" if row.get("error") and row["status"] != "complete" else "")))
        for row in rows)
    path.write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Grading summary</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>body{{font:14px system-ui,sans-serif;margin:24px;color:#1d2430}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #d9dee5;padding:5px 10px;text-align:left}}th{{background:#f6f8fa}}</style></head>
<body><h1>Grading summary</h1><p>{len(rows)} candidates, ranked by weighted total.</p>
<table><tr><th>#</th><th>candidate</th><th>band</th><th>total</th><th>status</th></tr>
{body}
</table></body></html>
""", encoding="utf-8")
