"""Optional: load the candidate's DAGs with Airflow's own DagBag and report import errors.

Loading a DAG file *executes* it: every module-level statement of the candidate's code
runs. The static `dag.*` checks never do this; this module is off by default and is only
used when the caller passes an Airflow interpreter (`StaticContext.airflow_python`). The
loader runs in a jail (grader.sandbox): a separate interpreter (a venv with apache-airflow)
on a scratch copy of the DAG files, writing only that scratch folder, no network at all, no
view of the grader's processes or environment, address space and file size capped, killed
with everything it started at the time limit. The report's `isolation` says what was in
force (without bubblewrap, only the limits and the stripped environment).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from grader.sandbox import Jail, Limits, detect, signals_deferred

MARKER = "@@AIRFLOW_PARSE_RESULT@@"

_LOADER = r"""
import json, sys, time
t0 = time.time()
folder = sys.argv[1]
out = {"status": "ok"}
try:
    try:
        from airflow.models.dagbag import DagBag
    except ImportError:
        from airflow.models import DagBag
    import inspect
    kwargs = {"dag_folder": folder}
    if "include_examples" in inspect.signature(DagBag.__init__).parameters:
        kwargs["include_examples"] = False  # Airflow 2; the argument is gone in 3.3
    bag = DagBag(**kwargs)
    import airflow
    out["airflow_version"] = getattr(airflow, "__version__", "?")
    out["dag_ids"] = sorted(bag.dag_ids) if hasattr(bag, "dag_ids") else sorted(bag.dags)
    out["import_errors"] = {str(k): str(v) for k, v in (bag.import_errors or {}).items()}
    out["dags_by_file"] = {}
    for dag_id, dag in bag.dags.items():
        out["dags_by_file"].setdefault(str(getattr(dag, "fileloc", "?")), []).append(dag_id)
except BaseException as exc:
    out = {"status": "loader_error", "message": f"{type(exc).__name__}: {exc}"}
out["load_s"] = round(time.time() - t0, 3)
sys.stdout.write("\n%s%s\n" % (MARKER, json.dumps(out)))
sys.stdout.flush()
""".replace("MARKER", repr(MARKER))


def _copy_dags(dag_files: list[Path], dest: Path) -> dict[str, str]:
    """Copy the DAG files (and the .py helpers beside them) keeping their layout;
    returns {copied path: original path}."""
    files = [Path(p).resolve() for p in dag_files]
    if not files:
        return {}
    common = Path(os.path.commonpath([str(p.parent) for p in files]))
    wanted = set(files)
    for d in {p.parent for p in files}:
        wanted.update(x.resolve() for x in d.glob("*.py") if x.is_file() and not x.is_symlink())
    mapping = {}
    for src in sorted(wanted):
        rel = src.relative_to(common)
        dst = dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        mapping[str(dst)] = str(src)
    return mapping


def parse_dags(
    dag_files: list[Path],
    python: Path | str,
    root: Path | None = None,
    *,
    timeout: float = 120.0,
    memory_mb: int = 3072,
    isolate_network: bool = True,
) -> dict[str, Any]:
    """Load `dag_files` with Airflow's DagBag using interpreter `python`, in a separate,
    time-limited process. Returns {status, import_errors{original path: message}, dag_ids,
    airflow_version, isolation{...}, duration_s}; status is ok | timeout | loader_error |
    no_interpreter."""
    python = Path(os.path.abspath(python))  # not resolve(): a venv's python is a symlink
    if not python.exists():
        return {"status": "no_interpreter", "message": f"no Airflow interpreter at {python}"}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="grader-airflow-") as tmp:
        work = Path(tmp)
        dags = work / "dags"
        dags.mkdir()
        mapping = _copy_dags(dag_files, dags)
        home = work / "home"
        airflow_home = work / "airflow_home"
        home.mkdir()
        airflow_home.mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": str(home),
            "TMPDIR": str(work),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": str(int(max(5, timeout - 10))),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
        jail = Jail(limits=Limits(memory_bytes=memory_mb * 1024 * 1024, file_bytes=64 * 1024 * 1024),
                    writable=[work], env=env, cwd=work, network=not isolate_network, python=python)
        isolation_available = detect()
        cmd = jail.command([str(python), "-c", _LOADER, str(dags)], isolation_available)
        isolation = {
            "jailed": isolation_available.jailed,
            "network": "none" if isolation_available.jailed and isolate_network else "host",
            "scratch_copy": True,
            "env_stripped": isolation_available.jailed,  # outside a jail /proc/<parent>/environ is readable
            "memory_mb": memory_mb,
            "timeout_s": timeout,
            "reason": isolation_available.reason,
        }
        try:
            with signals_deferred():
                proc = subprocess.Popen(
                    cmd,
                    cwd=work,
                    env=jail.environment(),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    start_new_session=True,
                )
        except OSError as exc:
            return {"status": "loader_error", "message": str(exc), "isolation": isolation}
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            proc.communicate()
            return {
                "status": "timeout",
                "message": f"Airflow loader exceeded {timeout:.0f} s (killed)",
                "isolation": isolation,
                "duration_s": round(time.time() - t0, 2),
            }
        finally:
            try:
                os.killpg(proc.pid, 9)  # leftovers the candidate's code may have forked
            except (ProcessLookupError, PermissionError):
                pass
        line = next((ln for ln in reversed(out.splitlines()) if ln.startswith(MARKER)), None)
        if line is None:
            return {
                "status": "loader_error",
                "message": f"no result (exit {proc.returncode})",
                "stderr_tail": err[-2000:],
                "isolation": isolation,
                "duration_s": round(time.time() - t0, 2),
            }
        rep = json.loads(line[len(MARKER) :])

        def back(p: str) -> str:
            return mapping.get(p, mapping.get(str(Path(p).resolve()), p))

        rep["import_errors"] = {
            back(k): v.replace(str(dags), "<dags>") for k, v in (rep.get("import_errors") or {}).items()
        }
        rep["dags_by_file"] = {back(k): v for k, v in (rep.get("dags_by_file") or {}).items()}
        rep["isolation"] = isolation
        rep["duration_s"] = round(time.time() - t0, 2)
        if root is not None:
            rootp = str(Path(root).resolve())
            rep["import_errors"] = {
                os.path.relpath(k, rootp) if k.startswith(rootp) else k: v for k, v in rep["import_errors"].items()
            }
        return rep
