"""What one grading was asked to do: `GradeOptions`, built by the command line, calibration
and batch alike, and carried as JSON into the grading that re-runs inside its namespace."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_TIME_LIMIT_S = 1800.0
DEFAULT_DBT_TIMEOUT_S = 900.0
DEFAULT_MEMORY_GB = 4.0
REBUILD_PASSES = ("dbt.idempotent", "tests.mutations", "dbt.generalises")


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
        given = {f.name: getattr(namespace, f.name) for f in fields(cls) if hasattr(namespace, f.name)}
        if given.get("passes") is not None:
            given["passes"] = tuple(given["passes"])
        return cls(**given)

    def absolute(self) -> GradeOptions:
        """Paths made absolute: the grading inside its namespace may start in another folder."""
        return replace(self, **{f.name: Path(os.path.abspath(value)) for f in fields(self)
                                if isinstance(value := getattr(self, f.name), Path)})

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
        values = {key: Path(value["path"]) if isinstance(value, dict) and set(value) == {"path"} else value
                  for key, value in payload.items()}
        if values.get("passes") is not None:
            values["passes"] = tuple(values["passes"])
        return cls(**values)
