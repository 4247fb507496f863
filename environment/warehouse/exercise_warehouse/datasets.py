"""Datasets that exist from the start: the stack's warehouse opens with `raw`, `staging` and `marts`.

bqemulator starts with an empty project. When EXERCISE_WAREHOUSE_DATASETS names datasets
(comma-separated), a background thread creates them through the REST API as soon as the
server answers, so clients see the same project layout as the seed's emulator gave; the
compose healthcheck (`python -m exercise_warehouse.datasets`, same options as `start`)
reports healthy only once every one of them exists.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def option(argv: list[str], name: str, env: str, default: str) -> str:
    """The value of `--name V` / `--name=V` in `argv`, else the environment variable `env`, else `default`."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return os.environ.get(env, default)


def rest_url(argv: list[str]) -> str:
    """Where this process's REST API answers locally (a 0.0.0.0 bind is reached on the loopback)."""
    host = option(argv, "--rest-host", "BQEMU_REST_HOST", "127.0.0.1")
    port = option(argv, "--rest-port", "BQEMU_REST_PORT", "9050")
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"


def create(endpoint: str, project: str, datasets: list[str], timeout: float = 120.0) -> list[str]:
    """Create each missing dataset once the server answers; the ones created."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with _NO_PROXY.open(f"{endpoint}/healthz", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{endpoint}/healthz did not answer within {timeout:.0f} s") from None
            time.sleep(0.2)
    created = []
    for dataset in datasets:
        body = json.dumps({"datasetReference": {"projectId": project, "datasetId": dataset}}).encode()
        request = urllib.request.Request(f"{endpoint}/bigquery/v2/projects/{project}/datasets", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with _NO_PROXY.open(request, timeout=10):
                created.append(dataset)
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # 409: it exists already (a persistent data directory)
                raise
    return created


def start_in_background(argv: list[str]) -> threading.Thread | None:
    """Create EXERCISE_WAREHOUSE_DATASETS in a daemon thread once this process's server is up."""
    names = _names()
    if not names:
        return None
    project = option(argv, "--project", "BQEMU_DEFAULT_PROJECT_ID", "marketplace-analytics")

    def run() -> None:
        try:
            created = create(rest_url(argv), project, names)
            print(f"exercise_warehouse: datasets ready in {project}: {', '.join(names)} "
                  f"(created {', '.join(created) or 'none'})", file=sys.stderr, flush=True)
        except Exception as exc:  # noqa: BLE001 — the healthcheck stays red; the log says why
            print(f"exercise_warehouse: could not create the datasets {names}: {exc}", file=sys.stderr, flush=True)

    thread = threading.Thread(target=run, name="create-datasets", daemon=True)
    thread.start()
    return thread


def missing(endpoint: str, project: str, datasets: list[str]) -> list[str]:
    """The datasets of `datasets` the server does not hold (all of them when it does not answer)."""
    absent = []
    for dataset in datasets:
        try:
            with _NO_PROXY.open(f"{endpoint}/bigquery/v2/projects/{project}/datasets/{dataset}", timeout=5):
                pass
        except OSError:
            absent.append(dataset)
    return absent


def _names() -> list[str]:
    return [d.strip() for d in os.environ.get("EXERCISE_WAREHOUSE_DATASETS", "").split(",") if d.strip()]


def healthcheck(argv: list[str]) -> str | None:
    """Why the engine started with `argv` is not healthy yet, or None: it answers and holds every dataset."""
    endpoint = rest_url(argv)
    try:
        with _NO_PROXY.open(f"{endpoint}/healthz", timeout=5):
            pass
    except OSError as exc:
        return f"{endpoint}/healthz: {exc}"
    absent = missing(endpoint, option(argv, "--project", "BQEMU_DEFAULT_PROJECT_ID", "marketplace-analytics"),
                     _names())
    return f"datasets missing: {', '.join(absent)}" if absent else None


if __name__ == "__main__":
    reason = healthcheck(sys.argv[1:])
    if reason:
        sys.exit(f"not healthy: {reason}")
