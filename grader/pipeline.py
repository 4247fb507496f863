"""One grading run: snapshot -> dataset -> warehouse -> dbt build -> checks -> rubric -> report.

Each stage is its own module; this one only wires them and makes sure that whatever
happens (a compile error, a warehouse that will not start, Ctrl-C) a report saying what
happened is written and no emulator or dbt process is left behind.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checks.registry import REGISTRY, CheckResult, CheckSkipped
from grader.grading import Deadline, Grading
from grader.options import GradeOptions
from grader.report import summary_lines, write_reports

if TYPE_CHECKING:
    from grader.dataset.generator import Dataset
    from grader.dbt_run import DbtRun, DbtSession
    from grader.raw_cache import RawLayer
    from grader.snapshot import Snapshot
    from grader.warehouse import Warehouse

EXIT_OK, EXIT_USAGE, EXIT_FAILED = 0, 2, 3
CACHE_DIR = Path.home() / ".cache" / "de-exercise-grader"
PRISTINE_DATASET = "grader_pristine"  # the raw table a mutation pass changes, as loaded

Progress = Callable[[str], None]


@contextmanager
def timed(grading: Grading, progress: Progress, stage: str, message: str) -> Iterator[None]:
    """Announce a stage and record its wall time as timings[<stage>_s]."""
    progress(message)
    started = time.monotonic()
    try:
        yield
    finally:
        grading.timings[f"{stage}_s"] = round(time.monotonic() - started, 3)


def candidate_name(workspace: Path, given: str | None) -> str:
    """A name safe as a folder: the given one or the workspace folder's name."""
    raw = given or workspace.resolve().name or "candidate"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._") or "candidate"


def run_grade(workspace: Path, options: GradeOptions, progress: Progress) -> int:
    """Grade `workspace`; the exit status of the grader contract.

    Outside the grading namespace this validates the arguments, then re-runs itself inside
    one (grader.sandbox) where the machine allows; inside it (or unisolated, when the
    interviewer allowed that) it runs the stages and always writes a report.
    """
    from grader.dataset.generator import CANONICAL_SEED
    from grader.sandbox import in_grading_namespace, is_inside

    if not workspace.exists():
        print(f"grade: {workspace}: no such file or directory", file=sys.stderr)
        return EXIT_USAGE
    if not workspace.is_dir():
        print(f"grade: {workspace}: not a directory (give the candidate's workspace folder)", file=sys.stderr)
        return EXIT_USAGE
    from grader.rubric import Rubric, RubricError, load_notes

    try:
        Rubric.load()  # validated against the catalogue: a rubric naming unknown checks can grade no one
    except RubricError as exc:
        print(f"grade: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        notes = load_notes(options.notes)
    except RubricError as exc:
        print(f"grade: {exc}", file=sys.stderr)
        return EXIT_USAGE
    name = candidate_name(workspace, options.name)
    out_dir = Path(os.path.abspath(options.out / name))
    if is_inside(out_dir, workspace) or is_inside(Path(os.path.abspath(options.out)), workspace):
        print(f"grade: --out {options.out} is inside the workspace being graded; the candidate's files could "
              f"redirect the report: choose a folder outside {workspace}", file=sys.stderr)
        return EXIT_USAGE
    isolation = grading_isolation(options)
    if isolation.get("enter_namespace"):
        from grader.packages import (
            prefetch,  # `dbt deps` needs the network the grading namespace lacks
        )

        prefetch(workspace, CACHE_DIR / "dbt-packages", progress)
        return _grade_in_namespace(workspace, options, isolation)
    grading = Grading(candidate=options.name or name, workspace=str(workspace.resolve()),
                      seed=CANONICAL_SEED if options.seed is None else options.seed, scale=options.scale)
    grading.isolation = {k: v for k, v in isolation.items() if k != "enter_namespace"}
    own_work_dir = options.work_dir is None or options.own_work_dir
    work_dir = Path(tempfile.mkdtemp(prefix="grade-")) if options.work_dir is None else options.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    if in_grading_namespace() and own_work_dir and not options.keep_work_dir:
        from grader.sandbox import mount_tmpfs

        mount_tmpfs(work_dir, limits_of(options).work_bytes)
    grading.notes, grading.work_dir, grading.airflow_python = notes, str(work_dir), options.airflow_python
    grading.deadline = Deadline(options.time_limit)
    started = time.monotonic()
    exit_code = EXIT_OK
    try:
        exit_code = _grade(grading, workspace, options, work_dir, progress)
    except (KeyboardInterrupt, SystemExit):
        grading.interrupted = True
        grading.fail("run", "interrupted (Ctrl-C or SIGTERM): the grading did not finish")
        exit_code = 130
    finally:
        reap_strays(work_dir)
        grading.timings["total_s"] = round(time.monotonic() - started, 3)
        try:
            paths = write_reports(grading, out_dir)
            progress(f"report written: {paths['html']}")
            _print_summary(grading, paths)
        except Exception as exc:  # the report is the last line of defence: say so plainly
            print(f"grade: could not write the report to {out_dir}: {exc}", file=sys.stderr)
            exit_code = EXIT_FAILED if exit_code == EXIT_OK else exit_code
        if own_work_dir and not options.keep_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
        elif options.keep_work_dir:
            print(f"work folder kept: {work_dir}", file=sys.stderr)
    return exit_code


def limits_of(options: GradeOptions) -> Any:
    from grader.sandbox import Limits

    memory_gb = options.memory_limit
    return Limits() if memory_gb is None else Limits(memory_bytes=int(memory_gb * 1024 ** 3))


def grading_isolation(options: GradeOptions) -> dict[str, Any]:
    """How this grading isolates candidate code: the report's environment.isolation.

    `enter_namespace` True: the caller must re-run the grading inside its namespaces.
    """
    from grader.sandbox import detect, grading_namespace_support, in_grading_namespace

    private_network = options.warehouse in (None, "embedded")
    base = {"limits": limits_of(options).to_json(), "time_limit_s": options.time_limit}
    if in_grading_namespace():
        return {**base, "isolated": True, "namespace": True, "jailed": detect().jailed,
                "private_network": bool(private_network if options.private_network is None else options.private_network),
                "reason": "own user, mount, PID and network namespaces; each candidate process in a bubblewrap jail"
                          + ("" if private_network else " (the network is the host's: the warehouse is outside)")}
    jail = detect()
    namespace_problem = grading_namespace_support() if jail.jailed else jail.reason
    if jail.jailed and namespace_problem is None:
        return {**base, "enter_namespace": True, "private_network": private_network}
    reason = namespace_problem or jail.reason
    if options.allow_unisolated:
        return {**base, "isolated": False, "namespace": False, "jailed": False, "private_network": False,
                "reason": f"NOT ISOLATED (--allow-unisolated): {reason}"}
    return {**base, "isolated": False, "namespace": False, "jailed": False, "private_network": False,
            "refused": True, "reason": f"no sandbox on this machine: {reason}. Candidate code was not run; "
                                        f"grade on a Linux machine with bubblewrap, or pass --allow-unisolated "
                                        f"to run it without isolation (the report will say so)"}


def _grade_in_namespace(workspace: Path, options: GradeOptions, isolation: dict[str, Any]) -> int:
    from dataclasses import replace

    from grader.sandbox import run_in_grading_namespace

    own_work_dir = options.work_dir is None
    work_dir = options.work_dir.resolve() if options.work_dir is not None else Path(tempfile.mkdtemp(prefix="grade-"))
    inside = replace(options, work_dir=work_dir, own_work_dir=own_work_dir, private_network=isolation["private_network"])
    payload = {"workspace": os.path.abspath(workspace), "options": inside.to_payload()}
    try:
        return run_in_grading_namespace(payload, network=isolation["private_network"])
    finally:
        if own_work_dir and not options.keep_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)


def reap_strays(work_dir: Path) -> list[int]:
    """Kill any dbt still running on this grading's private profiles folder (its environment
    holds DBT_PROFILES_DIR=<work_dir>/dbt...): the last guard against an interruption that
    landed between starting dbt and registering it for cleanup."""
    import os
    import re
    import signal

    ours = re.compile(rb"(^|\0)DBT_PROFILES_DIR=" + re.escape(str(work_dir / "dbt").encode()) + rb"(/[^\0]*)?(\0|$)")
    killed = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if not ours.search(handle.read()):
                    continue
            os.kill(int(entry), signal.SIGKILL)
            killed.append(int(entry))
        except OSError:
            continue
    return killed


def _grade(grading: Grading, workspace: Path, options: GradeOptions, work_dir: Path, progress: Progress) -> int:
    from grader.snapshot import SnapshotError, take_snapshot

    if grading.isolation.get("refused"):
        grading.fail("sandbox", grading.isolation["reason"])
        print(f"grade: {grading.isolation['reason']}", file=sys.stderr)
        return EXIT_FAILED

    with timed(grading, progress, "snapshot", f"snapshot of {workspace}"):
        try:
            snapshot = grading.snapshot = take_snapshot(workspace, work_dir / "snapshot")
        except SnapshotError as exc:
            grading.fail("snapshot", str(exc))
            return EXIT_USAGE
    progress(f"  {snapshot.files} files, commit {(snapshot.commit or 'none (not a git repository)')[:12]}"
             + (", uncommitted changes" if snapshot.dirty else ""))
    from grader.dbt_run import DbtSession, find_dbt_project
    from grader.packages import install as install_packages

    project_dir = find_dbt_project(snapshot.root)
    if project_dir is None:
        return _grade_on_warehouse(grading, snapshot, options, work_dir, progress, None, None)
    # Declared dbt packages are installed outside the build (grader.packages); then one dbt worker,
    # for every dbt command of the grading, starts and parses the project while the warehouse starts.
    packages = install_packages(project_dir, snapshot.root, CACHE_DIR / "dbt-packages")
    with DbtSession(project_dir, work_dir / "dbt", readable_root=snapshot.root, limits=limits_of(options)) as session:
        if packages.ok:
            session.parse_ahead()
        return _grade_on_warehouse(grading, snapshot, options, work_dir, progress, session, packages)


def _grade_on_warehouse(grading: Grading, snapshot: Snapshot, options: GradeOptions, work_dir: Path,
                        progress: Progress, session: DbtSession | None, packages: Any) -> int:
    from grader.dataset.generator import generate
    from grader.raw_cache import RawLayer
    from grader.warehouse import WarehouseError, install_signal_handlers, open_warehouse

    install_signal_handlers()
    # The dataset is generated (pure Python) while the engine starts (another process).
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset")
    generating = pool.submit(generate, grading.seed, grading.scale)
    pool.shutdown(wait=False)
    raw = (RawLayer.for_seed(CACHE_DIR / "raw-engine", grading.seed, grading.scale, work_dir / "emulator")
           if options.warehouse in (None, "embedded") else RawLayer(None, None))
    try:
        with timed(grading, progress, "warehouse_start", f"starting warehouse ({options.warehouse})"):
            warehouse = raw.open(lambda data_dir: open_warehouse(
                options.warehouse, CACHE_DIR, work_dir / "logs", run_dir=work_dir / "emulator",
                limits=limits_of(options), replace_datasets=options.replace_datasets, data_dir=data_dir))
    except WarehouseError as exc:
        grading.fail("warehouse", str(exc))
        _static_checks(grading, None, progress)
        return EXIT_FAILED
    with warehouse:
        grading.warehouse = {"warehouse": warehouse.kind, "versions": dict(warehouse.versions)}
        with timed(grading, progress, "dataset", f"generating dataset (seed {grading.seed}, scale {grading.scale})"):
            dataset = grading.dataset = generating.result()
        try:
            _build_and_check(grading, snapshot, dataset, options, warehouse, work_dir, progress, raw, session,
                             packages)
            if any(e["stage"] == "packages" for e in grading.errors):
                return EXIT_FAILED  # the build could not run: the report says why and how to fix it
        except WarehouseError as exc:
            grading.fail("warehouse", str(exc))
            if not any(REGISTRY[c.id].stage == "static" for c in grading.checks if c.id in REGISTRY):
                _static_checks(grading, grading.dbt, progress)
            return EXIT_FAILED
    return EXIT_OK


def _build_and_check(grading: Grading, snapshot: Snapshot, dataset: Dataset, options: GradeOptions,
                     warehouse: Warehouse, work_dir: Path, progress: Progress, raw: RawLayer,
                     session: DbtSession | None, packages: Any) -> None:
    """Every stage that needs the warehouse; `session` (None: no dbt project) runs every dbt
    command, `packages` says whether the project's declared packages could be installed."""
    from checks.catalogue import run_order
    from checks.passes import PassContext, VariantOutcome, needs_variant
    from checks.registry import run_check
    from grader.raw_cache import RawLayer
    from grader.variant import SideEngineVariant
    from grader.warehouse import WarehouseError, open_warehouse
    from grader.dataset.generator import CANONICAL_SEED, VARIANT_SEED, generate
    from grader.dbt_run import build, rerun
    from grader.loading import load_raw

    client = warehouse.client()
    with timed(grading, progress, "raw_load", "raw tables: the engine started on cached files" if raw.cached
               else "loading raw tables"):
        raw.load(warehouse, dataset)
    project_dir = session.project_dir if session is not None else None
    if packages is not None and not packages.ok:
        grading.fail("packages", packages.problem or "dbt packages unavailable")
        _static_checks(grading, None, progress)
        return
    limits = limits_of(options)
    with timed(grading, progress, "dbt", "running the candidate's dbt seed + build" if project_dir else "no dbt project found"):
        grading.dbt = build(project_dir, warehouse.endpoint, work_dir / "dbt",
                            timeout_s=grading.deadline.budget(options.dbt_timeout),
                            progress=lambda m: progress(f"  {m}"), readable_root=snapshot.root, limits=limits,
                            session=session)
    if grading.dbt.timed_out:
        warehouse.interrupt()  # its last query must not hold up the checks that follow
    grading.checks.extend(run_check(spec, grading.dbt) for spec in run_order("build"))
    with timed(grading, progress, "result_checks", "checking marts against ground truth"):
        from checks.marts import ResultContext

        manifest = grading.dbt.manifest()
        context = ResultContext(client, manifest, dataset.truth, label=f"seed {grading.seed}")
        grading.checks.extend(run_check(spec, context) for spec in run_order("result"))
    _static_checks(grading, grading.dbt, progress)
    deadline, time_limit = grading.deadline, options.time_limit

    def rebuild(dbt_args: list[str], label: str) -> Any:
        """One more dbt command within what is left of the grading's time; a rebuild our own
        time limit cut short is not the candidate's result (the pass is skipped, with why)."""
        budget = deadline.budget(options.dbt_timeout)
        if project_dir is None:  # not reached: no project, no manifest, no passes (their declared need)
            raise CheckSkipped("no dbt project")
        if budget < 1:
            raise CheckSkipped(f"the grading's time limit ({time_limit:g} s, --time-limit) was spent before "
                               f"the {label} rebuild")
        run = rerun(project_dir, warehouse.endpoint, work_dir / "dbt", dbt_args, budget, label,
                    readable_root=snapshot.root, limits=limits, session=session)
        if run.timed_out:
            warehouse.interrupt()
            if budget < options.dbt_timeout:
                raise CheckSkipped(f"the grading's time limit ({time_limit:g} s, --time-limit) ran out during "
                                   f"the {label} rebuild")
        return run

    variant_seed = VARIANT_SEED if grading.seed != VARIANT_SEED else CANONICAL_SEED

    def variant_in_place() -> VariantOutcome:
        """The variant on this warehouse, after the other passes (a warehouse we cannot start twice)."""
        variant = generate(variant_seed, grading.scale)
        progress(f"  dbt.generalises: loading the variant dataset (seed {variant.seed}) and rebuilding")
        load_raw(client, variant)
        return VariantOutcome(variant, rebuild(["build", "--full-refresh"], "variant"), client)

    side: SideEngineVariant | None = None

    def variant_build() -> VariantOutcome:
        if side is not None:
            try:
                return side.outcome()
            except WarehouseError as exc:  # our engine's failure, never the candidate's: build it here instead
                progress(f"  dbt.generalises: the second engine failed ({exc}); building the variant on this one")
        return variant_in_place()

    passes = PassContext(
        results=context, dataset=dataset, baseline=grading.dbt, rebuild=rebuild,
        mutated_table=lambda name, rows: _mutated_raw_table(client, name, rows, dataset.extracted_at),
        variant_build=variant_build,
        canonical_checks=list(grading.checks), progress=lambda m: progress(f"  {m}"),
    )
    if passes.unmet_needs():  # no manifest: every pass, requested or not, is skipped by its declared need
        grading.checks.extend(run_check(spec, passes) for spec in run_order("rebuild"))
        return
    chosen = [s for s in run_order("rebuild") if not options.quick and (options.passes is None or s.id in options.passes)]
    grading.checks.extend(CheckResult(s.id, "skipped", 0.0, "not requested (--quick or --passes)")
                          for s in run_order("rebuild") if s not in chosen)
    if not chosen:
        return
    if (project_dir is not None and warehouse.kind == "embedded" and (os.cpu_count() or 1) >= 2
            and any(s.id == "dbt.generalises" for s in chosen) and needs_variant(grading.checks)):
        side = SideEngineVariant(
            seed=variant_seed, scale=grading.scale, project_dir=project_dir, snapshot_root=snapshot.root,
            first_work_dir=work_dir / "dbt", work_dir=work_dir / "variant", limits=limits,
            budget=lambda: deadline.budget(options.dbt_timeout),
            open_engine=lambda data_dir: open_warehouse(
                options.warehouse, CACHE_DIR, work_dir / "logs" / "variant", run_dir=work_dir / "variant" / "emulator",
                limits=limits, data_dir=data_dir),
            raw_layer=lambda seed, run_dir: RawLayer.for_seed(CACHE_DIR / "raw-engine", seed, grading.scale, run_dir),
            progress=lambda m: progress(f"  {m}"))
        side.start()
    try:
        with timed(grading, progress, "rebuild_checks", "rebuilding: idempotency, mutations, variant dataset"):
            for spec in chosen:
                if deadline.remaining() < 1:
                    grading.checks.append(CheckResult(spec.id, "skipped", 0.0, f"the grading's time limit "
                                                      f"({time_limit:g} s, --time-limit) was spent"))
                    continue
                started = time.monotonic()
                grading.checks.append(run_check(spec, passes))
                grading.timings[f"pass.{spec.id}_s"] = round(time.monotonic() - started, 3)
    finally:
        if side is not None:
            side.close()
    out_of_time = [c.id for c in grading.checks if c.status == "skipped" and "--time-limit" in c.message]
    if out_of_time:  # not observed is not the candidate's result: the verdict is provisional, and says why
        grading.fail("time limit", f"the grading's time limit ({time_limit:g} s) was spent before "
                                   f"{', '.join(out_of_time)} could run; grade again with --time-limit "
                                   f"{2 * time_limit:g} to observe them")


@contextmanager
def _mutated_raw_table(client: Any, name: str, rows: list[dict[str, Any]], extracted_at: Any) -> Iterator[None]:
    """raw.<name> holds `rows` inside the block; after it, the rows it held before, copied back
    from a copy the engine kept (a copy job takes milliseconds where a load takes half a second)."""
    from google.cloud import bigquery
    from raw_layer.airbyte import raw_table
    from raw_layer.bigquery import load_table
    from raw_layer.schema import RAW_DATASET, TABLES_BY_NAME

    project = client.project
    client.create_dataset(PRISTINE_DATASET, exists_ok=True)
    copy = bigquery.CopyJobConfig(write_disposition="WRITE_TRUNCATE")
    raw, pristine = f"{project}.{RAW_DATASET}.{name}", f"{project}.{PRISTINE_DATASET}.{name}"
    client.copy_table(raw, pristine, job_config=copy).result()
    table = raw_table(TABLES_BY_NAME[name], rows, extracted_at)
    load_table(client, RAW_DATASET, table.name, table.schema, table.ndjson)
    try:
        yield
    finally:
        client.copy_table(pristine, raw, job_config=copy).result()


def _static_checks(grading: Grading, dbt_run: DbtRun | None, progress: Progress) -> None:
    """lint.*, dag.* and history.*: they need only the snapshot (and the manifest when dbt parsed)."""
    if grading.snapshot is None:
        return
    from checks.static import STAGE_TIME_LIMIT_S, StaticLimits, run_static_checks

    started = time.monotonic()
    progress("static analysis of models, DAGs and history")
    stage_s = grading.deadline.budget(STAGE_TIME_LIMIT_S)
    grading.checks.extend(run_static_checks(grading.snapshot, dbt_run, grading.airflow_python,
                                            StaticLimits(stage_s=max(stage_s, 60.0))))  # bounded anyway
    grading.timings["static_checks_s"] = round(time.monotonic() - started, 3)


def _print_summary(grading: Grading, paths: dict[str, Path]) -> None:
    for line in summary_lines(grading):
        print(line)
    print(f"report: {paths['html']}")
    print(f"        {paths['json']}")
