"""What one grading was asked to do: `GradeOptions`, built by the command line, calibration
and batch alike, and carried as JSON into the grading that re-runs inside its namespace."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_TIME_LIMIT_S = 1800.0
DEFAULT_DBT_TIMEOUT_S = 900.0
DEFAULT_MEMORY_GB = 4.0


@dataclass(frozen=True)
class GradeOptions:
    """`grade WORKSPACE`'s options (see grader.cli for what each means); the defaults are the CLI's."""

    out: Path = Path("reports")
    name: str | None = None
    replace_datasets: bool = False
    warehouse: str = "embedded"
    scale: str = "default"
    seed: int | None = None
    notes: Path | None = None
    dbt_timeout: float = DEFAULT_DBT_TIMEOUT_S
    time_limit: float = DEFAULT_TIME_LIMIT_S
    memory_limit: float = DEFAULT_MEMORY_GB
    allow_unisolated: bool = False
    quick: bool = False
    passes: tuple[str, ...] | None = None
    airflow_python: Path | None = None
    work_dir: Path | None = None
    keep_work_dir: bool = False
    quiet: bool = False
    # Set only for the grading that re-runs itself inside its namespace: whether the work
    # folder is the grading's own (removed afterwards) and whether its network is private.
    own_work_dir: bool = False
    private_network: bool | None = None

    @classmethod
    def from_namespace(cls, namespace: Any) -> GradeOptions:
        """The options an argparse namespace holds (its other attributes are ignored)."""
        given: dict[str, Any] = {f.name: getattr(namespace, f.name) for f in fields(cls) if hasattr(namespace, f.name)}
        if given.get("passes") is not None:
            given["passes"] = tuple(given["passes"])
        return cls(**given)

    def absolute(self) -> GradeOptions:
        """Paths made absolute: the grading inside its namespace may start in another folder."""
        paths: dict[str, Any] = {f.name: Path(os.path.abspath(value)) for f in fields(self)
                                 if isinstance(value := getattr(self, f.name), Path)}
        return replace(self, **paths)

    def to_payload(self) -> dict[str, Any]:
        """JSON-ready: paths as {"path": ...} (absolute), tuples as lists."""
        payload: dict[str, Any] = {}
        for key, value in asdict(self.absolute()).items():
            if isinstance(value, Path):
                value = {"path": str(value)}
            elif isinstance(value, tuple):
                value = list(value)
            payload[key] = value
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> GradeOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"unknown grading options: {', '.join(unknown)}")
        values: dict[str, Any] = {key: Path(value["path"]) if isinstance(value, dict) and set(value) == {"path"} else value
                  for key, value in payload.items()}
        if values.get("passes") is not None:
            values["passes"] = tuple(values["passes"])
        return cls(**values)


def positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return seconds


def positive_gb(value: str) -> float:
    try:
        gb = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of gigabytes") from None
    if gb < 0.5:
        raise argparse.ArgumentTypeError("must be at least 0.5 GB (dbt alone needs about 0.4)")
    return gb


def warehouse_spec(value: str) -> str:
    """'embedded', 'docker' or an http(s) URL; anything else is a usage error (exit 2)."""
    if value in ("embedded", "docker") or value.startswith(("http://", "https://")):
        return value
    raise argparse.ArgumentTypeError(f"{value!r}: use 'embedded', 'docker' or an emulator URL (http://HOST:PORT)")


def rebuild_check_ids() -> list[str]:
    """The catalogue's rebuilding checks (the --passes choices), in the order a grading runs them."""
    import checks.passes  # noqa: F401  (registers them)
    from checks.registry import run_order

    return [spec.id for spec in run_order("rebuild")]


def add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """`grade WORKSPACE`'s flags (all but the workspace): the CLI's and, after `--`, batch's."""
    parser.add_argument("--out", type=Path, default=Path("reports"),
                        help="where reports go: OUT/<name>/report.{json,html} (default: reports)")
    parser.add_argument("--name", help="candidate name in the report (default: the folder's name)")
    parser.add_argument("--replace-datasets", action="store_true",
                        help="with --warehouse URL: allow deleting the datasets already there that the grader did "
                             "not create (a live stack's raw, staging, marts); without it grading stops instead")
    parser.add_argument("--warehouse", default="embedded", metavar="SPEC", type=warehouse_spec,
                        help="'embedded' (default: a bqemulator process the grader starts and stops), 'docker' (the exercise's "
                             "warehouse image, the same engine, via a Docker engine) or an emulator URL such as http://127.0.0.1:9050")
    parser.add_argument("--scale", default="default", choices=["small", "default"],
                        help="dataset scale loaded into the warehouse (default: default)")
    parser.add_argument("--seed", type=int, default=None,
                        help="dataset seed (default: the canonical seed); the variant seed is used for dbt.generalises")
    parser.add_argument("--notes", type=Path, default=None, metavar="FILE",
                        help="interviewer's notes (YAML): levels for interviewer-scored criteria and overrides "
                             "with reasons, e.g. `criteria: {debugging: {level: 3, comment: ...}}`")
    parser.add_argument("--dbt-timeout", type=float, default=DEFAULT_DBT_TIMEOUT_S, metavar="SECONDS",
                        help="time limit for the first dbt seed + build, and for each rebuild (default: 900); "
                             "all of them also draw from --time-limit")
    parser.add_argument("--time-limit", type=positive_seconds, default=DEFAULT_TIME_LIMIT_S, metavar="SECONDS",
                        help=f"one deadline for the whole grading (default: {DEFAULT_TIME_LIMIT_S:g}, several times "
                             "what the default dataset needs); the passes left when it is spent are skipped, "
                             "with the reason, and the report is still written")
    parser.add_argument("--memory-limit", type=positive_gb, default=DEFAULT_MEMORY_GB, metavar="GB",
                        help="address space allowed to each process that runs candidate code (dbt, the Airflow "
                             "loader); the warehouse engine's queries get three quarters of it (DuckDB's memory_limit) "
                             "(default: 4)")
    parser.add_argument("--allow-unisolated", action="store_true",
                        help="grade even where no sandbox is available (not Linux, no bubblewrap, no user "
                             "namespaces): the candidate's dbt project and SQL then run with your user's rights "
                             "and network. The report says so in its header. Without this flag such a machine "
                             "refuses to run candidate code (exit 3)")
    passes = rebuild_check_ids()
    parser.add_argument("--quick", action="store_true",
                        help=f"skip the checks that rebuild the project ({', '.join(passes)}): one dbt build "
                             "instead of about ten")
    parser.add_argument("--passes", nargs="+", metavar="CHECK", default=None, choices=passes,
                        help=f"run only these rebuilding checks (default: all {len(passes)})")
    parser.add_argument("--airflow-python", type=Path, default=None, metavar="PYTHON",
                        help="off by default: also load the DAGs with Airflow's own DagBag using this interpreter "
                             "(a venv with apache-airflow), in a separate, time-limited, network-less process. "
                             "This EXECUTES the candidate's DAG code; the static dag.* checks never do")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="private work folder (default: a temporary folder, removed afterwards)")
    parser.add_argument("--keep-work-dir", action="store_true", help="keep the work folder for inspection")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
