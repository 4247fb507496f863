"""Command line: `grade WORKSPACE`, `grade dataset`, and the exit codes of the grader contract.

Exit status: 0 a report was produced (whatever the score); 2 unusable arguments;
3 grading could not run (a report saying so is still written when possible).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from grader import __version__
from grader.options import GradeOptions, add_option_arguments
from grader.resources import HANDOUT_DIR

EXIT_OK, EXIT_USAGE, EXIT_FAILED = 0, 2, 3

DESCRIPTION = """\
Grade a candidate's workspace for the Senior Data Engineer live exercise.

  grade WORKSPACE [options]        grade one workspace (a git repository or a plain folder)
  grade dataset [options]          write the exercise dataset (source DB, raw tables, truth)
  grade calibrate [options]        grade the reference solutions; non-zero when one misses its band
  grade batch DIR [options]        grade every workspace in DIR; summary.html and summary.csv ranking them
  grade rubric-doc [--check]       write docs/EVALUATION_RUBRIC.md from rubric.yaml
  grade checks [ID] [--family F]   the catalogue of checks, or one check's documentation
  grade checks --doc [--check]     write the panel's docs/checks.md and docs/rubric.md
  grade packages fetch WORKSPACE   fill the dbt package cache (run `dbt deps`) for grading offline

`grade SUBCOMMAND --help` explains each subcommand.
"""

EPILOG = """\
exit status: 0 a report was written (whatever the score); 2 unusable arguments
(missing path, not a directory); 3 grading could not run (a report saying so is still
written when possible).

The default warehouse is an embedded BigQuery emulator started on a free loopback port:
no Docker engine and no network are needed.
"""


class Progress:
    """One line per step on stderr, with elapsed seconds; quiet mode prints nothing."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


def grade_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grade", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path, help="the candidate's workspace folder")
    add_option_arguments(parser)
    parser.add_argument("--version", action="version", version=f"grade {__version__}")
    return parser


def dataset_parser() -> argparse.ArgumentParser:
    from grader.dataset.generator import CANONICAL_SEED, SCALES, VARIANT_SEED

    parser = argparse.ArgumentParser(
        prog="grade dataset",
        description="Write the exercise dataset for a seed and scale: the source database as Postgres init "
                    "files (DDL with column comments, COPY data), the same rows in the warehouse's raw shape "
                    "(NDJSON + BigQuery schema), and the ground truth the grader checks against. The same "
                    "seed and scale always give identical files.",
    )
    parser.add_argument("--seed", type=int, default=CANONICAL_SEED,
                        help=f"random seed (canonical: {CANONICAL_SEED}, variant: {VARIANT_SEED})")
    parser.add_argument("--scale", default="default", choices=sorted(SCALES), help="dataset size (default: default)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--postgres-init-only", action="store_true",
                        help="write only the two Postgres init files into OUT (as in environment/postgres/init)")
    return parser


def run_dataset(argv: list[str]) -> int:
    from grader.dataset.files import write_dataset, write_postgres_init
    from grader.dataset.generator import generate

    args = dataset_parser().parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        print(f"grade dataset: --out {args.out} exists and is not a directory", file=sys.stderr)
        return EXIT_USAGE
    progress = Progress()
    progress(f"generating seed {args.seed}, scale {args.scale}")
    dataset = generate(args.seed, args.scale)
    if args.postgres_init_only:
        for path in write_postgres_init(dataset, args.out):
            print(path)
        return EXIT_OK
    manifest = write_dataset(dataset, args.out)
    counts = ", ".join(f"{k} {v}" for k, v in manifest["row_counts"].items())
    print(f"wrote {args.out} (extracted_at {manifest['extracted_at']}): {counts}")
    return EXIT_OK


def calibrate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade calibrate",
        description="Grade every reference solution under calibration/ (see calibration/solutions.yaml), print "
                    "expected vs got with per-section scores, and exit 1 when one lands outside its band or "
                    "bounds, or an order of totals declared there does not hold.")
    parser.add_argument("--out", type=Path, default=Path("reports") / "calibration",
                        help="where the reports go (default: reports/calibration)")
    parser.add_argument("--scale", default="default", choices=["small", "default"], help="dataset scale")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="grade only these solutions")
    parser.add_argument("--dbt-timeout", type=float, default=None, metavar="SECONDS", help="per dbt invocation")
    parser.add_argument("--verbose", "-v", action="store_true", help="show each grading's progress")
    parser.add_argument("--panel", type=Path, metavar="PANEL_YAML",
                        help="levels a human panel gave to graded workspaces (see README): print per criterion how "
                             "often the automatic level agrees and a weighted kappa; grades only the solutions the "
                             "panel names (and --only)")
    return parser


def run_rubric_doc(argv: list[str]) -> int:
    from grader.rubric import render_candidate_markdown

    parser = argparse.ArgumentParser(prog="grade rubric-doc",
                                     description="Write environment/docs/EVALUATION_RUBRIC.md from rubric.yaml.")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the file is out of date")
    args = parser.parse_args(argv)
    target = HANDOUT_DIR / "docs" / "EVALUATION_RUBRIC.md"
    text = render_candidate_markdown()
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is out of date: run `grade rubric-doc`", file=sys.stderr)
            return 1
        return EXIT_OK
    target.write_text(text, encoding="utf-8")
    print(target)
    return EXIT_OK


def run_checks(argv: list[str]) -> int:
    """`grade checks`: the catalogue as a table, one check's documentation, or the panel's docs."""
    from checks.catalogue import UnknownCheck, describe, find, panel_docs, table

    parser = argparse.ArgumentParser(prog="grade checks",
                                     description="The catalogue of checks: every check's id, stage, severity and "
                                                 "title; with an ID, that check's documentation (why it matters, "
                                                 "how to fix, what it needs, examples).")
    parser.add_argument("check_id", nargs="?", metavar="ID", help="a check id, e.g. payments.dedup")
    parser.add_argument("--family", help="only this family (the part of the id before the dot: lint, dag, ...)")
    parser.add_argument("--doc", action="store_true",
                        help="write the hiring panel's docs/checks.md and docs/rubric.md from the catalogue and "
                             "rubric.yaml")
    parser.add_argument("--check", action="store_true", help="with --doc: only compare; exit 1 when out of date")
    args = parser.parse_args(argv)
    if args.doc:
        docs = panel_docs()
        if args.check:
            stale = [path for path, text in docs.items()
                     if not path.exists() or path.read_text(encoding="utf-8") != text]
            for path in stale:
                print(f"{path} is out of date: run `grade checks --doc`", file=sys.stderr)
            return 1 if stale else EXIT_OK
        for path, text in docs.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(path)
        return EXIT_OK
    if args.check_id:
        try:
            print(describe(find(args.check_id)), end="")
        except UnknownCheck as exc:
            print(f"grade checks: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK
    listing = table(args.family)
    if not listing:
        print(f"grade checks: no check in family {args.family!r}", file=sys.stderr)
        return EXIT_USAGE
    print(listing, end="")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "dataset":
            return run_dataset(argv[1:])
        if argv and argv[0] == "calibrate":
            from grader.calibration import calibrate

            return calibrate(calibrate_parser().parse_args(argv[1:]), Progress())
        if argv and argv[0] == "batch":
            from grader.batch import run_batch

            return run_batch(argv[1:], Progress())
        if argv and argv[0] == "rubric-doc":
            return run_rubric_doc(argv[1:])
        if argv and argv[0] == "checks":
            return run_checks(argv[1:])
        if argv and argv[0] == "packages":
            from grader.packages import main as run_packages

            return run_packages(argv[1:])
        from grader.pipeline import run_grade

        args = grade_parser().parse_args(argv)
        return run_grade(args.workspace, GradeOptions.from_namespace(args), Progress(args.quiet))
    except KeyboardInterrupt:
        print("grade: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
