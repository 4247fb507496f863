"""Optional: load the candidate's DAGs with Airflow's own DagBag and report import errors.

RISK — read before enabling. Loading a DAG file *executes* it: every module-level
statement of the candidate's code runs (it could delete files, read secrets, open network
connections, fork, loop forever). The static `dag.*` checks never do this; this module is
off by default and is only used when the caller passes an Airflow interpreter
(`StaticContext.airflow_python`). To limit the damage it:

- never imports candidate code in the grader's process: a separate interpreter (a venv
  with apache-airflow, e.g. `.venv-airflow/bin/python`) runs a small loader script;
- runs that process on a scratch copy of the DAG files, in a throwaway AIRFLOW_HOME/HOME,
  with an environment stripped to PATH/LANG (no grader or cloud credentials);
- puts it in its own session and kills the whole process group at the time limit;
- caps address space, CPU seconds and the size of files it may write (RLIMIT_AS, RLIMIT_CPU,
  RLIMIT_FSIZE);
- cuts it off the network with `unshare --net` when this machine allows it (root on Linux);
  the report says whether that isolation was in force.

It is NOT a full sandbox: the process still runs as the grader's user and can read and
write anywhere that user can (for example absolute paths). Run it only in a disposable
environment (container/VM) when grading code you do not trust.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def _network_isolation_prefix() -> list[str]:
    exe = shutil.which("unshare")
    if not exe or not sys.platform.startswith("linux"):
        return []
    try:
        ok = subprocess.run([exe, "--net", "true"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return [exe, "--net", "--"] if ok else []


def _limits(memory_mb: int, cpu_s: int, fsize_mb: int):  # runs in the child before exec
    def apply() -> None:
        import resource

        os.setsid()
        for res, value in (
            (resource.RLIMIT_AS, memory_mb * 1024 * 1024),
            (resource.RLIMIT_CPU, cpu_s),
            (resource.RLIMIT_FSIZE, fsize_mb * 1024 * 1024),
        ):
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                pass

    return apply


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
        prefix = _network_isolation_prefix() if isolate_network else []
        cmd = [*prefix, str(python), "-c", _LOADER, str(dags)]
        isolation = {
            "network": bool(prefix),
            "scratch_copy": True,
            "env_stripped": True,
            "memory_mb": memory_mb,
            "timeout_s": timeout,
        }
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=work,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                preexec_fn=_limits(memory_mb, int(timeout) + 5, 64),
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
