"""Batch throughput: gradings per hour against the number of gradings run at once.

Materialises calibration solutions as workspaces (by default four: exemplary, solid, naive,
starter), grades them all with `grade batch --jobs N` for each N asked, and prints the wall
time, gradings per hour, and the peak memory of all of the batch's processes together.

    .venv/bin/python benchmarks/bench_batch.py [--scale default|small] [--jobs 1 2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader.batch import default_jobs  # noqa: E402
from grader.calibration import load_solutions, materialise  # noqa: E402


def tree_rss(root: int) -> int:
    """Resident bytes of `root` and every process below it."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            statm = Path(f"/proc/{entry}/statm").read_text().split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(statm[1]) * os.sysconf("SC_PAGE_SIZE")
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += rss.get(pid, 0)
        pending.extend(children.get(pid, []))
    return total


def run_batch(folder: Path, out: Path, jobs: int, scale: str, quick: bool) -> tuple[float, int]:
    command = [sys.executable, "-m", "grader.cli", "batch", str(folder), "--out", str(out), "--jobs", str(jobs),
               "--", "--scale", scale, *(["--quick"] if quick else [])]
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.5):
            peak = max(peak, tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    done.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"grade batch exited with {code}")
    return time.monotonic() - started, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="default", choices=["small", "default"])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--solutions", nargs="+", default=["exemplary", "solid", "naive", "starter"])
    parser.add_argument("--quick", action="store_true", help="grade with --quick (no rebuilding checks)")
    args = parser.parse_args()
    solutions = {s.name: s for s in load_solutions()}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "workspaces"
        folder.mkdir()
        for name in args.solutions:
            materialise(solutions[name], folder)
        print(f"{len(args.solutions)} workspaces, scale {args.scale}{', --quick' if args.quick else ''}, "
              f"{os.cpu_count()} cores; grade batch's default --jobs here: {default_jobs()}")
        for jobs in args.jobs:
            elapsed, peak = run_batch(folder, tmp / f"out-{jobs}", jobs, args.scale, args.quick)
            print(f"  --jobs {jobs}: {elapsed:6.1f} s, {len(args.solutions) * 3600 / elapsed:5.0f} gradings per hour, "
                  f"peak memory {peak / 1024 ** 3:.2f} GiB")


if __name__ == "__main__":
    main()
