"""The grading warehouse: a BigQuery emulator the candidate's dbt project runs against.

Three kinds, one interface (`Warehouse`):

* ``embedded`` (default): a bqemulator process the grader starts on free loopback ports and
  always stops, with no Docker engine and no network (the DuckDB spatial extension it
  installs at start comes from the duckdb-extension-spatial wheel, copied into the
  process's own HOME).
* ``docker``: the same engine as the exercise stack's warehouse service (the image built from
  environment/warehouse), through a Docker engine.
* a URL: an emulator somebody already runs; the grader never stops it.

`prepare_datasets` below resets the datasets before a grading; loading, querying and the
other table I/O the grader shares with the Airbyte destination are in the raw layer package
(raw_layer.bigquery, environment/airbyte/raw-layer), whose WarehouseError this module raises.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib.metadata
import importlib.resources
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Literal

from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import GoogleAPIError
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from raw_layer.bigquery import WarehouseError
from raw_layer.schema import DATASETS, RAW_PROJECT

from grader.sandbox import (Isolation, Jail, Limits, adopt_orphans, detect, is_inside, kill_adopted,
                            sandbox_children, signals_deferred)

# The exercise environment pins this image (0.7+ broke QUALIFY upstream; 0.6.x is amd64 only).
# The stack's warehouse image (environment/docker-compose.yml), built from environment/warehouse when absent.
DOCKER_IMAGE = "marketplace/exercise-warehouse:0.1.0"
WAREHOUSE_BUILD_CONTEXT = Path(__file__).resolve().parents[1] / "environment" / "warehouse"
SPECS_HELP = "'embedded' (default), 'docker', or an emulator URL such as http://127.0.0.1:9050"

_LOOPBACK = "127.0.0.1"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback must never go through a proxy


class Warehouse(ABC):
    """A BigQuery REST endpoint holding project `project`; use it as a context manager."""

    kind: Literal["embedded", "docker", "url"]
    endpoint: str  # http(s)://host:port — dbt-bigquery needs the scheme
    project: str = RAW_PROJECT
    versions: dict[str, str]

    def client(self) -> bigquery.Client:
        """A client for this endpoint; emulators take any (anonymous) credentials."""
        return bigquery.Client(self.project, credentials=AnonymousCredentials(),
                               client_options=ClientOptions(api_endpoint=self.endpoint))

    @abstractmethod
    def stop(self) -> None:
        """Release what this object started (idempotent)."""

    def interrupt(self) -> bool:
        """Cancel the engine's running query, where the engine allows (the embedded one does)."""
        return False

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class EmbeddedEmulator(Warehouse):
    """The exercise's engine (`python -m exercise_warehouse`) jailed, stopped on stop(), exit, Ctrl-C or SIGTERM.

    It runs candidate SQL, so it runs in a jail (grader.sandbox): it can write only `run_dir`
    (its HOME and the load-job staging folder, the one folder its locked DuckDB may touch;
    a temporary folder removed on stop when None) and read the spatial extension cached in
    `cache_dir`. Its output goes to `log_path` (a temporary file, removed on stop, when None);
    the log's tail is in every start error. `data_dir` (under `run_dir`): the engine keeps its
    database in files there (bqemulator's persistent mode), starting from what the folder holds
    (grader.raw_cache puts the raw tables there), instead of in memory.
    """

    kind = "embedded"

    def __init__(self, cache_dir: Path, log_path: Path | None = None, *, start_timeout: float = 60.0,
                 stop_timeout: float = 5.0, run_dir: Path | None = None, limits: Limits | None = None,
                 isolation: Isolation | None = None, data_dir: Path | None = None):
        started = time.perf_counter()
        self.stop_timeout = stop_timeout
        self.limits = limits or Limits()
        self.isolation = isolation or detect()
        extensions = _emulator_home(Path(cache_dir)) / ".duckdb"
        self._own_run_dir = run_dir is None
        self.run_dir = Path(tempfile.mkdtemp(prefix="bqemulator-", dir=cache_dir) if run_dir is None else run_dir)
        self.home = self.run_dir / "home"
        staging = self.run_dir / "staging"
        for folder in (self.home, staging):
            folder.mkdir(parents=True, exist_ok=True)
        if not (self.home / ".duckdb").exists():
            (self.home / ".duckdb").symlink_to(extensions)  # read-only: nothing can be installed
        self.versions = {"emulator": f"bqemulator {_dist_version('bqemulator')}",
                         "duckdb": _dist_version("duckdb")}
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="bqemulator-", suffix=".log", dir=cache_dir)
            os.close(fd)
            self.log_path, self._remove_log = Path(name), True
        else:
            self.log_path, self._remove_log = Path(log_path), False
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        rest_port, grpc_port = _free_ports(2)
        self.endpoint = f"http://{_LOOPBACK}:{rest_port}"
        command = [sys.executable, "-m", "exercise_warehouse", "start",
                   "--rest-host", _LOOPBACK, "--rest-port", str(rest_port),
                   "--grpc-host", _LOOPBACK, "--grpc-port", str(grpc_port), "--project", self.project]
        if data_dir is not None:
            if not is_inside(data_dir, self.run_dir):
                raise WarehouseError(f"the engine's data folder {data_dir} must be inside its run folder {self.run_dir}")
            data_dir.mkdir(parents=True, exist_ok=True)
            command += ["--persistent", "--data-dir", str(data_dir)]
        # Candidate SQL runs in this process: it gets the jail, its own folder and nothing else.
        # DuckDB reserves far more address space than it uses (8 GB reserved for 0.3 GB resident was
        # measured), so an address-space limit would fail sound queries: its own memory_limit bounds it.
        memory = self.limits.memory_bytes or 4 * 1024 ** 3
        jail = Jail(
            limits=dataclasses.replace(self.limits, memory_bytes=None),
            writable=[self.run_dir], readable=[extensions, _package_dir("exercise_warehouse")], cwd=self.home,
            env={
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": str(self.home),
                "LANG": "C.UTF-8",
                "TMPDIR": str(staging),  # load-job upload staging lands here
                # The avro extension is optional and would be downloaded at every start (≈1 s offline, network online).
                "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",
                "EXERCISE_WAREHOUSE_ALLOWED_DIR": str(staging),
                "EXERCISE_WAREHOUSE_MEMORY_LIMIT": f"{max(memory * 3 // 4 // 2**20, 256)}MB",
            })
        self._process: subprocess.Popen[bytes] | None = None
        adopt_orphans()
        try:
            with open(self.log_path, "wb") as log, signals_deferred():
                self._process = subprocess.Popen(
                    jail.command(command, self.isolation), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, env=jail.environment(), cwd=self.home, start_new_session=True)
            atexit.register(self.stop)
            self._wait_healthy(start_timeout)
        except BaseException:  # WarehouseError, and Ctrl-C during start: never leave it running
            self.stop(remove_log=False)
            raise
        self.start_seconds = time.perf_counter() - started

    def interrupt(self) -> bool:
        """Cancel whatever the engine is running (SIGUSR1 to the emulator: see exercise_warehouse.launcher).

        Used after a dbt command ran out of time: its last query would otherwise keep the engine
        busy and every check after it would wait. True when the signal was delivered.
        """
        if self._process is None or self._process.poll() is not None:
            return False
        for pid in [self._process.pid, *sandbox_children(self._process.pid)]:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"exercise_warehouse" in cmdline and b"bwrap" not in cmdline.split(b"\0", 1)[0]:
                os.kill(pid, signal.SIGUSR1)
                return True
        return False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        process = self._process
        assert process is not None, "started in __init__"
        while True:
            code = process.poll()
            if code is not None:
                raise WarehouseError(f"the embedded BigQuery emulator exited with status {code} while starting "
                                     f"(log {self.log_path}):\n{_tail(self.log_path)}")
            if _get_json(f"{self.endpoint}/healthz", timeout=1.0) is not None:
                return
            if time.monotonic() > deadline:
                raise WarehouseError(f"the embedded BigQuery emulator did not answer {self.endpoint}/healthz within "
                                     f"{timeout:.0f} s (log {self.log_path}):\n{_tail(self.log_path)}")
            time.sleep(0.1)

    def stop(self, remove_log: bool = True) -> None:
        """SIGTERM the process group, SIGKILL it after `stop_timeout` s (or if interrupted meanwhile);
        return once the engine inside the jail is gone too (the jail kills it as bubblewrap exits)."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        inside = sandbox_children(process.pid)
        try:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            # What bubblewrap cloned just before it died has not armed its parent-death signal yet
            # (measured: an engine survived a Ctrl-C during start): still in the group, or adopted.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            kill_adopted(str(self.run_dir))
            _wait_gone(inside, self.stop_timeout)
        if remove_log and self._remove_log:
            self.log_path.unlink(missing_ok=True)
        if self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)


class DockerEmulator(Warehouse):
    """The exercise's warehouse image in a container on a loopback port; removed on stop.

    The same engine as the stack's and the embedded one (exercise_warehouse); the image is
    built from environment/warehouse when the engine does not have it yet.
    """

    kind = "docker"

    def __init__(self, image: str = DOCKER_IMAGE, log_path: Path | None = None, *, start_timeout: float = 120.0):
        import docker
        import docker.errors

        started = time.perf_counter()
        self.versions = {"emulator": image}
        self.log_path = log_path
        try:
            self._docker = docker.from_env()
            self._docker.ping()
        except docker.errors.DockerException as exc:  # no socket, engine stopped, no permission
            raise WarehouseError(f"no Docker engine reachable: {exc}; use the default embedded warehouse "
                                 f"or --warehouse URL") from exc
        try:
            try:
                self._docker.images.get(image)
            except docker.errors.ImageNotFound:
                self._docker.images.build(path=str(WAREHOUSE_BUILD_CONTEXT), tag=image, rm=True)
            # create, then start: a container that fails to start is still ours to remove
            self._container = self._docker.containers.create(
                image, ["start", "--rest-host", "0.0.0.0", "--rest-port", "9050", "--grpc-host", "0.0.0.0",
                        "--grpc-port", "9060", "--project", self.project],
                ports={"9050/tcp": (_LOOPBACK, None)}, labels={"de-exercise-grader": "warehouse"})
        except docker.errors.DockerException as exc:
            raise WarehouseError(f"could not create a container from {image}: {exc}") from exc
        atexit.register(self.stop)
        try:
            self._container.start()
            self._container.reload()
            host_port = self._container.ports["9050/tcp"][0]["HostPort"]
            self.endpoint = f"http://{_LOOPBACK}:{host_port}"
            self._wait_healthy(start_timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - started

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not _api_answers(self.endpoint, self.project, timeout=2.0):
            self._container.reload()
            if self._container.status not in ("created", "running"):
                raise WarehouseError(f"the emulator container exited while starting:\n"
                                     f"{self._container.logs(tail=30).decode(errors='replace')}")
            if time.monotonic() > deadline:
                raise WarehouseError(f"the emulator container did not answer at {self.endpoint} within {timeout:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        """Keep the container's output in `log_path`, then remove the container (idempotent)."""
        import docker.errors

        container, self._container = self._container, None
        if container is None:
            return
        atexit.unregister(self.stop)
        try:
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self.log_path.write_bytes(container.logs())
            container.remove(force=True)
        except docker.errors.DockerException as exc:
            raise WarehouseError(f"could not remove the emulator container {container.short_id}: {exc}") from exc


class UrlWarehouse(Warehouse):
    """An emulator that is already running at `url`; the grader uses it and never stops it."""

    kind = "url"

    def __init__(self, url: str, *, timeout: float = 5.0, replace_datasets: bool = False):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise WarehouseError(f"warehouse URL {url!r} must look like http://HOST:PORT "
                                 f"(dbt-bigquery needs the scheme)")
        self.endpoint = url.rstrip("/")
        if not _api_answers(self.endpoint, self.project, timeout):
            raise WarehouseError(f"no BigQuery emulator answers at {self.endpoint} (GET .../bigquery/v2/projects/"
                                 f"{self.project}/datasets failed); start it or use the default embedded warehouse")
        if not replace_datasets:  # grading drops every dataset: never someone else's without being told
            foreign = foreign_datasets(self.client())
            if foreign:
                raise WarehouseError(f"the warehouse at {self.endpoint} holds datasets the grader did not create "
                                     f"({', '.join(foreign)}); grading deletes every dataset. Pass "
                                     f"--replace-datasets to allow that, or grade on the embedded warehouse")
        health = _get_json(f"{self.endpoint}/healthz", timeout=timeout)
        version = health.get("version") if isinstance(health, dict) else None
        self.versions = {"emulator": str(version) if version else "unknown"}

    def stop(self) -> None:
        """Nothing to do: the server is not ours."""


def open_warehouse(spec: str | None, cache_dir: Path, log_dir: Path, run_dir: Path | None = None,
                   limits: Limits | None = None, *, replace_datasets: bool = False,
                   data_dir: Path | None = None) -> Warehouse:
    """The warehouse named by --warehouse: None/'embedded', 'docker' or an http(s) URL
    (`data_dir`: the embedded engine's database files, see EmbeddedEmulator)."""
    if spec is None or spec == "embedded":
        return EmbeddedEmulator(cache_dir, log_dir / "bqemulator.log", run_dir=run_dir, limits=limits,
                                data_dir=data_dir)
    if spec == "docker":
        return DockerEmulator(log_path=log_dir / "bigquery-emulator.log")
    if spec.startswith(("http://", "https://")):
        return UrlWarehouse(spec, replace_datasets=replace_datasets)
    raise WarehouseError(f"unknown warehouse {spec!r}: use {SPECS_HELP}")


def install_signal_handlers() -> None:
    """Turn SIGTERM into SystemExit so `with` blocks and atexit stop the emulator (main thread only).

    Ctrl-C needs nothing: it already raises KeyboardInterrupt, and the emulator, in its own
    session, never sees the terminal's SIGINT, so the grader stops it in order.
    """
    def _exit(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def prepare_datasets(client: bigquery.Client, datasets: tuple[str, ...] = DATASETS) -> list[str]:
    """Drop every dataset of the project (candidates may use custom schemas), create `datasets` empty.

    Returns the dataset ids that were dropped, sorted.
    """
    try:
        dropped = sorted(d.dataset_id for d in client.list_datasets(client.project))
        for dataset_id in dropped:
            client.delete_dataset(f"{client.project}.{dataset_id}", delete_contents=True, not_found_ok=True)
        for dataset_id in datasets:
            dataset = bigquery.Dataset(f"{client.project}.{dataset_id}")
            dataset.labels = dict([GRADER_LABEL])
            client.create_dataset(dataset)
    except GoogleAPIError as exc:
        raise WarehouseError(f"could not reset the warehouse's datasets: {exc}") from exc
    return dropped


GRADER_LABEL = ("created-by", "de-exercise-grader")  # on the datasets prepare_datasets creates


def foreign_datasets(client: bigquery.Client) -> list[str]:
    """The project's datasets without the grader's label, sorted: created by someone else."""
    try:
        return sorted(d.dataset_id for d in client.list_datasets(client.project)
                      if (client.get_dataset(d.reference).labels or {}).get(GRADER_LABEL[0]) != GRADER_LABEL[1])
    except GoogleAPIError as exc:
        raise WarehouseError(f"could not list the warehouse's datasets: {exc}") from exc


def _emulator_home(cache_dir: Path) -> Path:
    """HOME for bqemulator, holding the spatial extension where DuckDB's INSTALL finds it offline."""
    import duckdb

    version = f"v{_dist_version('duckdb')}"
    wheel = Path(str(importlib.resources.files("duckdb_extension_spatial")))
    source = wheel / "extensions" / version / "spatial.duckdb_extension"
    if not source.is_file():
        raise WarehouseError(f"{source} is missing: the duckdb-extension-spatial wheel must match duckdb {version}")
    home = cache_dir / "bqemulator-home"
    (platform,) = duckdb.connect().execute("PRAGMA platform").fetchone() or ("",)
    target = home / ".duckdb" / "extensions" / version / platform / source.name
    if not target.is_file() or target.stat().st_size != source.stat().st_size:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)  # atomic: a concurrent start never sees half a file
    return home


def _package_dir(name: str) -> Path:
    """The folder holding an installed package's source (an editable install points into the repository)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise WarehouseError(f"{name} is not installed: pip install -e environment/warehouse")
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise WarehouseError(f"{name} is not installed: the embedded warehouse needs bqemulator, duckdb "
                             f"and duckdb-extension-spatial (see pyproject.toml)") from exc


def _free_ports(count: int) -> list[int]:
    """Distinct loopback ports free right now (bound together so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((_LOOPBACK, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _wait_gone(pids: list[int], timeout: float) -> None:
    """Wait until none of `pids` is alive (a zombie counts as gone), at most `timeout` s."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                break
            if state in ("Z", "X"):
                break
            time.sleep(0.02)


def _get_json(url: str, timeout: float) -> Any:
    """The JSON body of a 200 answer to GET `url`, or None when there is no such answer."""
    loopback = urllib.parse.urlsplit(url).hostname in (_LOOPBACK, "localhost")
    opener = _NO_PROXY if loopback else urllib.request.build_opener()
    try:
        with opener.open(url, timeout=timeout) as response:
            return json.loads(response.read() or b"null") if response.status == 200 else None
    except (OSError, ValueError):  # URLError, refused, reset, timeout, not JSON
        return None


def _api_answers(endpoint: str, project: str, timeout: float) -> bool:
    """Whether the BigQuery datasets list answers: every emulator serves it, /healthz only bqemulator."""
    return _get_json(f"{endpoint}/bigquery/v2/projects/{project}/datasets", timeout) is not None


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"
