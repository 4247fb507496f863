#!/usr/bin/env python3
"""Rehearse a session on the exercise stack without Docker: every service in its own network namespace.

Docker cannot run here (nor in CI), yet the failures that matter are between containers: a
URL that means "this container" (goccy's `Location: http://0.0.0.0:9050/...` upload URL) works
when every process shares one loopback and breaks across containers. This script reads
environment/docker-compose.yml and runs each service that can run on this machine as
processes in a network namespace of its own (`ip netns`), the namespaces joined by a bridge,
each with a hosts file (/etc/netns/<ns>/hosts) where the compose service names resolve as
they do on the stack's network. Then it walks a session:

1. source-postgres: Debian's PostgreSQL loads environment/postgres/init as the image's
   entrypoint does (Unix socket only while loading); its compose healthcheck must fail while
   loading and pass after;
2. bigquery-emulator: the warehouse image's entrypoint and environment (parsed from
   environment/warehouse/Dockerfile) with the compose command, bound to 0.0.0.0; its compose
   healthcheck must pass (datasets raw, staging, marts exist);
3. destination-bigquery-emulator: `spec`, `check` and an append `write` against
   http://bigquery-emulator:9050 from another namespace;
4. postgres-feed: the compose entrypoint and command, source-postgres -> raw, all nine tables;
5. dbt: `dbt seed` + `dbt build` (+ `dbt docs generate`) with the compose environment and the
   instructions' profile, for the starter and for the exemplary reference solution;
6. airflow: the DAGs of both parsed by Airflow's DagBag (.venv-airflow) with the compose
   environment;
7. grader: `grade --warehouse http://bigquery-emulator:9050` refuses to delete the stack's
   datasets, then grades the exemplary workspace with --replace-datasets.

Every namespace, veth, bridge and hosts file is removed at the end, whatever happened.
Needs root, iproute2 and PostgreSQL. Exit 0 when every step passed; --json FILE writes the
steps and their evidence.

    .venv/bin/python scripts/rehearse_stack.py [--json out.json] [--keep-dir]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "environment"
COMPOSE_FILE = ENV_DIR / "docker-compose.yml"
VENV_BIN = Path(sys.executable).parent
AIRFLOW_PYTHON = Path(os.environ.get("AIRFLOW_PYTHON", REPO / ".venv-airflow" / "bin" / "python"))
PROJECT = "marketplace-analytics"

# compose service -> the namespace's short name (interface names are limited to 15 characters)
SERVICES = {
    "source-postgres": "pg",
    "bigquery-emulator": "wh",
    "destination-bigquery-emulator": "dst",
    "postgres-feed": "feed",
    "dbt": "dbt",
    "airflow-apiserver": "af",
    "grader": "gr",
}


class RehearsalError(RuntimeError):
    """A step failed; the message says which and why."""


def run(cmd: list[str], *, check: bool = True, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RehearsalError(f"{shlex.join(cmd)} exited {result.returncode}:\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


# ---------------------------------------------------------------------------------------------
# The network: one namespace per service, a bridge, compose names in every hosts file
# ---------------------------------------------------------------------------------------------


@dataclass
class Network:
    """Namespaces `<tag>-<short>` on bridge `br<tag>`, subnet 10.214.<n>.0/24; `close()` removes all."""

    tag: str
    subnet: int
    compose: dict[str, Any]
    addresses: dict[str, str] = field(default_factory=dict)  # service -> IP
    namespaces: list[str] = field(default_factory=list)
    bridge: str = ""

    def open(self) -> None:
        self.bridge = f"br{self.tag}"
        run(["ip", "link", "add", "name", self.bridge, "type", "bridge"])
        run(["ip", "link", "set", self.bridge, "up"])
        for number, (service, short) in enumerate(SERVICES.items(), start=2):
            ns = self.ns(service)
            run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
            host_end, ns_end = f"v{self.tag}{short}", f"c{self.tag}{short}"
            run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end])
            run(["ip", "link", "set", ns_end, "netns", ns])
            run(["ip", "link", "set", host_end, "master", self.bridge, "up"])
            address = f"10.214.{self.subnet}.{number}"
            self.addresses[service] = address
            for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", ns_end, "name", "eth0"],
                        ["ip", "addr", "add", f"{address}/24", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"]):
                run(["ip", "netns", "exec", ns, *cmd])
        for service in SERVICES:
            folder = Path("/etc/netns") / self.ns(service)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "hosts").write_text(self.hosts(service))

    def hosts(self, service: str) -> str:
        """localhost, this service's own name, and every service by compose name and container name."""
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost"]
        for other, address in self.addresses.items():
            names = [other]
            container = (self.compose["services"].get(other) or {}).get("container_name")
            if container and container != other:
                names.append(container)
            lines.append(f"{address}\t{' '.join(names)}")
        return "\n".join(lines) + "\n"

    def ns(self, service: str) -> str:
        return f"rh{self.tag}-{SERVICES[service]}"

    def exec(self, service: str, cmd: list[str]) -> list[str]:
        """`cmd` run inside `service`'s namespace (its hosts file bound over /etc/hosts)."""
        return ["ip", "netns", "exec", self.ns(service), *cmd]

    def close(self) -> list[str]:
        """Kill what still runs in our namespaces, delete them, the bridge and the hosts files; problems found."""
        problems = []
        for ns in self.namespaces:
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:  # only processes inside a namespace this rehearsal created
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            result = run(["ip", "netns", "del", ns], check=False)
            if result.returncode != 0:
                problems.append(f"ip netns del {ns}: {result.stderr.strip()}")
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        if self.bridge:
            run(["ip", "link", "del", self.bridge], check=False)
        return problems


# ---------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------


def healthcheck_command(service: dict[str, Any], replacements: dict[str, str]) -> list[str]:
    """The compose healthcheck's test as a command line here (CMD or CMD-SHELL), programs replaced."""
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    kind, *args = test
    args = [a.replace("$$", "$") for a in args]
    if kind == "CMD-SHELL":
        return ["sh", "-c", args[0]]
    return [replacements.get(args[0], args[0]), *args[1:]]


def wait_healthy(net: Network, name: str, service: dict[str, Any], replacements: dict[str, str],
                 env: dict[str, str] | None = None, timeout: float = 120) -> float:
    """Run the compose healthcheck in the service's namespace until it passes; seconds waited."""
    started = time.monotonic()
    command = net.exec(name, healthcheck_command(service, replacements))
    while True:
        result = run(command, check=False, timeout=30, env=env)
        if result.returncode == 0:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RehearsalError(f"{name}: healthcheck {command[4:]} still failing after {timeout:.0f} s:\n"
                                 f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
        time.sleep(0.5)


class SourcePostgres:
    """source-postgres: Debian's PostgreSQL as the postgres image runs it (init over the socket, then TCP)."""

    def __init__(self, net: Network, service: dict[str, Any], work: Path):
        self.net, self.service, self.work = net, service, work
        bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
        if not bindirs:
            raise RehearsalError("PostgreSQL server binaries not found: apt-get install postgresql")
        self.bin = bindirs[0].parent
        self.data = work / "data"
        self.env = service["environment"]

    def _as_postgres(self, cmd: list[str]) -> list[str]:
        return self.net.exec("source-postgres", ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)])

    def _pg_ctl(self, action: str, options: str = "") -> None:
        cmd = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.work / "log"), "-w"]
        run(self._as_postgres(cmd + (["-o", options] if options else []) + [action]), timeout=60)

    def start(self) -> dict[str, Any]:
        shutil.chown(self.work, "postgres", "postgres")
        pwfile = self.work / "pw"
        pwfile.write_text(self.env["POSTGRES_PASSWORD"])
        shutil.chown(pwfile, "postgres", "postgres")
        user = self.env["POSTGRES_USER"]
        run(self._as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-U", user, f"--pwfile={pwfile}",
                               "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"]), timeout=120)
        with open(self.data / "pg_hba.conf", "a") as hba:  # as the image: loopback trusted, the rest by password
            hba.write("host all all all scram-sha-256\n")
        socket_dir = f"-k {self.work}"
        self._pg_ctl("start", f"-c listen_addresses='' {socket_dir}")  # the entrypoint's loading server
        psql = ["psql", "-h", str(self.work), "-U", user, "-v", "ON_ERROR_STOP=1", "-q"]
        run(self.net.exec("source-postgres", psql + ["-d", "postgres", "-c",
                                                     f"CREATE DATABASE {self.env['POSTGRES_DB']}"]))
        loaded = []
        for path in sorted((ENV_DIR / "postgres" / "init").iterdir()):
            sql = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            subprocess.run(self.net.exec("source-postgres", psql + ["-d", self.env["POSTGRES_DB"]]), input=sql,
                           capture_output=True, check=True, timeout=600)
            loaded.append(path.name)
        healthy_while_loading = run(self.net.exec("source-postgres", healthcheck_command(self.service, {})),
                                    check=False).returncode == 0
        if healthy_while_loading:
            raise RehearsalError("source-postgres: the healthcheck passes while the init files load (socket only)")
        self._pg_ctl("stop", "")
        self._pg_ctl("start", f"-c listen_addresses='*' {socket_dir}")
        seconds = wait_healthy(self.net, "source-postgres", self.service, {}, timeout=60)
        return {"init_files": loaded, "healthy_while_loading": healthy_while_loading, "healthy_after_s": seconds}

    def stop(self) -> None:
        run(self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            check=False)


def dockerfile(path: Path) -> tuple[list[str], dict[str, str], list[list[str]]]:
    """(ENTRYPOINT, ENV, RUN python steps) of a Dockerfile, as far as the rehearsal needs them."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    entrypoint: list[str] = []
    env: dict[str, str] = {}
    python_runs: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("ENTRYPOINT"):
            entrypoint = json.loads(line.split(None, 1)[1])
        elif line.startswith("ENV"):
            env.update(dict(pair.split("=", 1) for pair in shlex.split(line.split(None, 1)[1])))
        elif line.startswith("RUN python "):
            python_runs.append(shlex.split(line.split(None, 1)[1].split("&&")[0]))
    return entrypoint, env, python_runs


class Warehouse:
    """bigquery-emulator: the image's entrypoint and environment, the compose command, bound to 0.0.0.0."""

    def __init__(self, net: Network, service: dict[str, Any], work: Path):
        self.net, self.service, self.work = net, service, work
        self.process: subprocess.Popen | None = None

    def start(self) -> dict[str, Any]:
        entrypoint, image_env, python_runs = dockerfile(ENV_DIR / "warehouse" / "Dockerfile")
        home = self.work / "home"
        image_home = image_env["HOME"]
        for step in python_runs:  # build steps (the spatial extension into HOME)
            run([sys.executable, *[a.replace(image_home, str(home)) for a in step[1:]]])
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
        env.update({k: v.replace(image_home, str(home)) for k, v in image_env.items()})
        env.update({k: str(v) for k, v in (self.service.get("environment") or {}).items()})
        self.env = env
        command = [sys.executable if entrypoint[0] == "python" else entrypoint[0], *entrypoint[1:],
                   *self.service["command"]]
        self.log = open(self.work / "warehouse.log", "wb")
        self.process = subprocess.Popen(self.net.exec("bigquery-emulator", command), env=env, cwd=home,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        seconds = wait_healthy(self.net, "bigquery-emulator", self.service, {"python": sys.executable}, env=env)
        return {"command": command[1:], "healthy_after_s": round(seconds, 1),
                "bound": "0.0.0.0" if "0.0.0.0" in self.service["command"] else "?"}

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process:
            self.log.close()


# ---------------------------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------------------------

WAREHOUSE_URL = "http://bigquery-emulator:9050"


def base_env(**extra: str) -> dict[str, str]:
    env = {"PATH": f"{VENV_BIN}:{os.environ['PATH']}", "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", "NO_PROXY": "*"}
    env.update(extra)
    return env


def destination_roundtrip(net: Network, work: Path) -> dict[str, Any]:
    """spec, check and an append write of three records from the connector's own namespace."""
    connector = [sys.executable, "-m", "destination_bigquery_emulator.main"]
    config = work / "config.json"
    config.write_text(json.dumps({"endpoint": WAREHOUSE_URL, "dataset_id": "rehearsal"}))
    spec = run(net.exec("destination-bigquery-emulator", [*connector, "spec"]), env=base_env())
    check = run(net.exec("destination-bigquery-emulator", [*connector, "check", "--config", str(config)]),
                env=base_env())
    if '"SUCCEEDED"' not in check.stdout:
        raise RehearsalError(f"destination check did not succeed:\n{check.stdout[-3000:]}")
    catalog = work / "catalog.json"
    catalog.write_text(json.dumps({"streams": [{
        "stream": {"name": "probe", "json_schema": {"type": "object", "properties": {
            "id": {"type": "integer"}, "note": {"type": "string"}}}, "supported_sync_modes": ["incremental"]},
        "sync_mode": "incremental", "destination_sync_mode": "append", "generation_id": 1,
        "minimum_generation_id": 0, "sync_id": 1}]}))
    now = int(time.time() * 1000)
    messages = "".join(json.dumps({"type": "RECORD", "record": {"stream": "probe", "data": {"id": i, "note": "x"},
                                                                  "emitted_at": now}}) + "\n" for i in range(3))
    messages += json.dumps({"type": "STATE", "state": {"type": "STREAM", "stream": {
        "stream_descriptor": {"name": "probe"}, "stream_state": {"cursor": 3}}}}) + "\n"
    write = subprocess.run(net.exec("destination-bigquery-emulator",
                                    [*connector, "write", "--config", str(config), "--catalog", str(catalog)]),
                           input=messages, capture_output=True, text=True, timeout=300, env=base_env())
    states = [line for line in write.stdout.splitlines() if '"type": "STATE"' in line or '"type":"STATE"' in line]
    if write.returncode != 0 or not states:
        raise RehearsalError(f"destination write failed (exit {write.returncode}):\n{write.stdout[-3000:]}"
                             f"{write.stderr[-3000:]}")
    return {"spec": '"SPEC"' in spec.stdout, "check": "SUCCEEDED", "write_states_back": len(states)}


def postgres_feed(net: Network, service: dict[str, Any]) -> dict[str, Any]:
    """The compose postgres-feed service: its entrypoint and command, run in its own namespace."""
    entrypoint = service["entrypoint"]
    command = [sys.executable if entrypoint[0] == "python" else entrypoint[0], *entrypoint[1:], *service["command"]]
    result = run(net.exec("postgres-feed", command), env=base_env(), timeout=900)
    counts = dict(re.findall(r"^(\w+): (\d+) rows sent$", result.stdout, re.MULTILINE))
    return {"command": command[1:], "rows_sent": {k: int(v) for k, v in sorted(counts.items())},
            "summary": result.stdout.strip().splitlines()[-1]}


def warehouse_row_counts(net: Network) -> dict[str, int]:
    """COUNT(*) of every raw table, asked from the dbt namespace through the BigQuery client."""
    code = (f"import json; from raw_layer.bigquery import connect, query; c = connect('{WAREHOUSE_URL}'); "
            "print(json.dumps({t.table_id: query(c, f'SELECT COUNT(*) AS n FROM `{c.project}.raw.{t.table_id}`')"
            "[0]['n'] for t in c.list_tables(f'{c.project}.raw')}))")
    return json.loads(run(net.exec("dbt", [sys.executable, "-c", code]), env=base_env()).stdout)


def dbt_session(net: Network, compose_dbt: dict[str, Any], workspace: Path, name: str) -> dict[str, Any]:
    """dbt seed, build and docs generate in the dbt namespace with the compose service's environment."""
    project = workspace / "dbt"
    env = base_env(**{k: str(v) for k, v in compose_dbt["environment"].items()})
    env["DBT_PROFILES_DIR"] = str(project)  # the container's /usr/app/dbt
    results = {}
    for args in (["seed"], ["build", "--full-refresh"], ["docs", "generate", "--empty-catalog"]):
        result = run(net.exec("dbt", [str(VENV_BIN / "dbt"), *args]), check=False, env=env, cwd=project,
                     timeout=1200)
        output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)  # dbt colours its log lines
        summary = [line for line in output.splitlines() if "Done. PASS=" in line or "Catalog written" in line]
        results[" ".join(args)] = {"exit": result.returncode, "summary": summary[-1].split("|")[-1].strip()
                                   if summary else result.stdout.strip().splitlines()[-1:]}
        if result.returncode != 0:
            raise RehearsalError(f"{name}: dbt {' '.join(args)} exited {result.returncode}:\n{result.stdout[-6000:]}")
    return results


_DAGBAG = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print("DAGBAG=" + json.dumps({"dags": sorted(bag.dags), "errors": {str(k): str(v) for k, v in bag.import_errors.items()}}))
"""


def airflow_parse(net: Network, compose: dict[str, Any], workspace: Path, work: Path) -> dict[str, Any]:
    if not AIRFLOW_PYTHON.exists():
        raise RehearsalError(f"no Airflow interpreter at {AIRFLOW_PYTHON} (scripts/test creates .venv-airflow)")
    env = base_env(**{k: str(v) for k, v in compose["x-airflow-common"]["environment"].items()})
    home = work / "airflow-home"
    home.mkdir(exist_ok=True)
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(workspace / "airflow" / "dags"),
               AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db")
    result = run(net.exec("airflow-apiserver", [str(AIRFLOW_PYTHON), "-c", _DAGBAG,
                                                str(workspace / "airflow" / "dags")]), env=env, timeout=600)
    (line,) = [out for out in result.stdout.splitlines() if out.startswith("DAGBAG=")]
    bag = json.loads(line.removeprefix("DAGBAG="))
    if bag["errors"] or not bag["dags"]:
        raise RehearsalError(f"DAG import errors: {bag['errors'] or 'no DAG found'}")
    return bag


def grade_against_stack(net: Network, workspace: Path, out: Path) -> dict[str, Any]:
    """grade --warehouse URL: refused while the stack's datasets are there, then run with --replace-datasets."""
    grade = [str(VENV_BIN / "grade"), str(workspace), "--warehouse", WAREHOUSE_URL, "--scale", "small", "--quick",
             "--out", str(out), "--name", "rehearsal", "--quiet"]
    refused = run(net.exec("grader", grade), check=False, env=base_env(), timeout=900)
    if refused.returncode == 0 or "--replace-datasets" not in refused.stdout + refused.stderr:
        raise RehearsalError(f"grade --warehouse URL did not refuse to delete the stack's datasets "
                             f"(exit {refused.returncode}):\n{refused.stdout[-3000:]}{refused.stderr[-3000:]}")
    graded = run(net.exec("grader", [*grade, "--replace-datasets"]), check=False, env=base_env(), timeout=1800)
    report_path = out / "rehearsal" / "report.json"
    if graded.returncode != 0 or not report_path.is_file():
        raise RehearsalError(f"grade --replace-datasets exited {graded.returncode}:\n{graded.stdout[-3000:]}"
                             f"{graded.stderr[-3000:]}")
    from checks.catalogue import run_order

    result_checks = {spec.id for spec in run_order("result")}

    report = json.loads(report_path.read_text())
    dbt_build = next((c for c in report.get("checks", []) if c.get("id") == "dbt.build"), {})
    return {"refusal_exit": refused.returncode,
            "refusal": next(line.strip() for line in (refused.stdout + refused.stderr).splitlines()
                            if "--replace-datasets" in line)[:300],
            "band": report.get("rubric", {}).get("band"), "total": report.get("rubric", {}).get("total"),
            "dbt_build": dbt_build.get("status"),
            "result_checks": {c["id"]: c["status"] for c in report.get("checks", []) if c.get("id") in result_checks}}


def starter_workspace(into: Path) -> Path:
    """The handout as the candidate receives it: environment/ as a git repository with a first commit."""
    from grader.calibration import materialise, load_solutions

    (starter,) = [s for s in load_solutions() if s.name == "starter"]
    return materialise(starter, into)


def exemplary_workspace(into: Path) -> Path:
    from grader.calibration import materialise, load_solutions

    (exemplary,) = [s for s in load_solutions() if s.name == "exemplary"]
    return materialise(exemplary, into)


def rehearse(work: Path, log: list[dict[str, Any]]) -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    services = compose["services"]
    net = Network(tag=f"{os.getpid() % 100000:05d}", subnet=os.getpid() % 250 + 1, compose=compose)

    def step(name: str, fn, *args):  # noqa: ANN001, ANN202
        started = time.monotonic()
        entry: dict[str, Any] = {"step": name}
        log.append(entry)
        try:
            entry["evidence"] = fn(*args)
            entry["ok"] = True
            return entry["evidence"]
        except Exception as exc:
            entry["ok"] = False
            entry["error"] = str(exc) if isinstance(exc, RehearsalError) else traceback.format_exc()
            raise
        finally:
            entry["seconds"] = round(time.monotonic() - started, 1)
            print(f"{'ok ' if entry.get('ok') else 'FAIL'} {name} ({entry['seconds']} s)", flush=True)

    with ExitStack() as stack:
        stack.callback(lambda: log.append({"step": "cleanup", "ok": not (p := net.close()), "problems": p}))
        step("network", lambda: (net.open(), {"namespaces": net.namespaces, "addresses": net.addresses})[1])
        (work / "pg").mkdir()
        postgres = SourcePostgres(net, services["source-postgres"], work / "pg")
        stack.callback(postgres.stop)
        step("source-postgres", postgres.start)
        (work / "wh").mkdir()
        warehouse = Warehouse(net, services["bigquery-emulator"], work / "wh")
        stack.callback(warehouse.stop)
        step("bigquery-emulator", warehouse.start)
        step("destination write", destination_roundtrip, net, work)
        step("postgres-feed", postgres_feed, net, services["postgres-feed"])
        step("raw row counts", warehouse_row_counts, net)
        starter = starter_workspace(work / "workspaces")
        step("dbt starter", dbt_session, net, services["dbt"], starter, "starter")
        step("airflow starter DAG", airflow_parse, net, compose, starter, work)
        exemplary = exemplary_workspace(work / "workspaces")
        step("dbt exemplary", dbt_session, net, services["dbt"], exemplary, "exemplary")
        step("airflow exemplary DAG", airflow_parse, net, compose, exemplary, work)
        step("grade --warehouse stack", grade_against_stack, net, exemplary, work / "reports")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the steps and their evidence to this file")
    parser.add_argument("--keep-dir", action="store_true", help="keep the work folder (logs, workspaces)")
    parser.add_argument("--timeout", type=int, default=3000, metavar="S",
                        help="give up after S seconds, cleaning up as on any failure (default: 3000)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("rehearse_stack: needs root (ip netns, veth, a bridge)", file=sys.stderr)
        return 2
    if shutil.which("ip") is None:
        print("rehearse_stack: needs iproute2 (apt-get install iproute2)", file=sys.stderr)
        return 2
    def _stop(signum: int, _frame: Any) -> None:  # SIGTERM, SIGALRM: unwind so every namespace is removed
        raise SystemExit(f"stopped by signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGALRM, _stop)
    signal.alarm(args.timeout)
    work = Path(tempfile.mkdtemp(prefix="rehearse-stack-"))
    os.chmod(work, 0o755)
    log: list[dict[str, Any]] = []
    code = 0
    try:
        rehearse(work, log)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 — reported in the log and the exit status
        code = 1
        if isinstance(exc, SystemExit):
            log.append({"step": "stopped", "ok": False, "error": str(exc)})
    finally:
        if args.json:
            args.json.write_text(json.dumps({"work_dir": str(work), "steps": log}, indent=1, default=str) + "\n")
        if args.keep_dir:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    failed = [s for s in log if not s.get("ok")]
    for s in failed:
        print(f"FAILED {s['step']}: {s.get('error') or s.get('problems')}", file=sys.stderr)
    return 1 if failed else code


if __name__ == "__main__":
    sys.exit(main())
