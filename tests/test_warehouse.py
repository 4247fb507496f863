"""grader.warehouse against the real embedded emulator (no mocks).

The load-format cases double as the measurement of what bqemulator 1.4.0 accepts in a
newline-delimited JSON load: each case is one value in one row, read back exactly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, UTC
from decimal import Decimal
from pathlib import Path

import pytest
from raw_layer.bigquery import load_table, query
from raw_layer.schema import DATASETS

from grader.sandbox import signals_deferred
from grader.warehouse import (
    EmbeddedEmulator,
    UrlWarehouse,
    WarehouseError,
    open_warehouse,
    prepare_datasets,
)

REPO = Path(__file__).resolve().parents[1]
UTC = UTC


def emulator_pids(home: Path) -> list[int]:
    """Live engine processes (the jail's bubblewrap and the engine inside it) whose HOME is
    `home` or under it (zombies have no cmdline and are skipped)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # exited meanwhile
            continue
        if any(b"exercise_warehouse" in arg for arg in cmdline) and any(
                e.startswith(f"HOME={home}".encode()) for e in environ):
            found.append(int(entry.name))
    return found


def port_open(endpoint: str) -> bool:
    host, port = endpoint.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- lifecycle ---------------------------------------------------------------------


@pytest.mark.slow
def test_start_and_stop(tmp_path: Path) -> None:
    warehouse = EmbeddedEmulator(tmp_path, None)
    pid, endpoint, log = warehouse.pid, warehouse.endpoint, warehouse.log_path
    assert warehouse.kind == "embedded" and endpoint.startswith("http://127.0.0.1:")
    assert warehouse.versions == {"emulator": "bqemulator 1.4.0", "duckdb": "1.5.5"}
    assert 0 < warehouse.start_seconds < 60
    assert pid in emulator_pids(warehouse.home) and port_open(endpoint)
    assert query(warehouse.client(), "SELECT 1 AS one") == [{"one": 1}]

    warehouse.stop()
    assert emulator_pids(warehouse.home) == [] and not Path(f"/proc/{pid}").exists()
    assert not port_open(endpoint)
    assert not log.exists()  # a temporary log goes with the process
    warehouse.stop()  # idempotent


@pytest.mark.slow
def test_exception_inside_with_stops_the_emulator(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="candidate broke something"):
        with EmbeddedEmulator(tmp_path, tmp_path / "emulator.log") as warehouse:
            assert emulator_pids(warehouse.home)
            raise RuntimeError("candidate broke something")
    assert emulator_pids(warehouse.home) == [] and not port_open(warehouse.endpoint)
    assert "rest.listen" in (tmp_path / "emulator.log").read_text()  # a given log is kept


@pytest.mark.slow
def test_start_timeout_fails_clearly_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match=r"did not answer http://127\.0\.0\.1:\d+/healthz within 0 s \(log "):
        EmbeddedEmulator(tmp_path, tmp_path / "emulator.log", start_timeout=0.01)
    assert emulator_pids(tmp_path) == []


def test_a_signal_while_a_jailed_process_is_created_is_delivered_after() -> None:
    """A Ctrl-C inside Popen would lose the Popen object (nothing could stop the engine): it waits."""
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            reached.append("after the signal")
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


GRADER = """
import sys, time
from pathlib import Path
from grader.warehouse import install_signal_handlers, open_warehouse
install_signal_handlers()
cache = Path(sys.argv[1])
with open_warehouse(None, cache, cache / "logs") as warehouse:
    print("ready", flush=True)
    time.sleep(300)
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum, when, exit_code", [
    (signal.SIGINT, "running", -signal.SIGINT),  # Ctrl-C: KeyboardInterrupt through the `with`
    (signal.SIGTERM, "running", 128 + signal.SIGTERM),  # install_signal_handlers: SystemExit
    (signal.SIGINT, "starting", -signal.SIGINT),  # Ctrl-C while waiting for /healthz
    (signal.SIGKILL, "running", -signal.SIGKILL),  # no Python cleanup at all: the kernel's parent-death signal
], ids=["sigint", "sigterm", "sigint-during-start", "sigkill"])
def test_no_emulator_survives_the_grader(tmp_path: Path, signum: int, when: str, exit_code: int) -> None:
    home = tmp_path
    grader = subprocess.Popen([sys.executable, "-c", GRADER, str(tmp_path)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if when == "running":
            assert grader.stdout.readline() == "ready\n", grader.stderr.read()
        else:
            deadline = time.monotonic() + 30
            while not emulator_pids(home):
                assert time.monotonic() < deadline and grader.poll() is None, grader.stderr.read()
                time.sleep(0.02)
        assert emulator_pids(home)
        grader.send_signal(signum)
        assert grader.wait(30) == exit_code
        if when == "starting":
            assert grader.stdout.read() == ""  # it really was interrupted before the emulator was up
    finally:
        if grader.poll() is None:
            grader.kill()
    # What the grader did not stop itself (SIGKILL; a Ctrl-C landing while the engine's process was
    # being created) the kernel kills as the grader exits (parent-death signal): give it a moment.
    deadline = time.monotonic() + 15
    while emulator_pids(home) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = emulator_pids(home)
    assert left == [], [_process_status(pid) for pid in left]


def _process_status(pid: int) -> str:
    """What a failure needs to tell which jail process survived: its parent, state and namespace pids."""
    try:
        return " ".join(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if line.startswith(("Name", "State", "PPid", "NSpid")))
    except OSError:
        return f"{pid}: exited"


# --- choosing a warehouse -----------------------------------------------------------


def test_docker_without_an_engine_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match=r"^no Docker engine reachable: .*; use the default embedded "
                                             r"warehouse or --warehouse URL$"):
        open_warehouse("docker", tmp_path, tmp_path / "logs")


@pytest.mark.parametrize("spec", ["bigquery", "Docker", "ftp://127.0.0.1:9050", "127.0.0.1:9050", ""])
def test_unknown_spec_names_the_choices(tmp_path: Path, spec: str) -> None:
    choices = r"'embedded' \(default\), 'docker', or an emulator URL"
    with pytest.raises(WarehouseError, match=f"unknown warehouse .*{choices}"):
        open_warehouse(spec, tmp_path, tmp_path / "logs")


def test_url_without_host_is_rejected() -> None:
    with pytest.raises(WarehouseError, match="must look like http://HOST:PORT"):
        UrlWarehouse("http://")


def test_url_at_a_closed_port_fails_clearly(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(WarehouseError, match=f"no BigQuery emulator answers at {endpoint} "):
        open_warehouse(endpoint, tmp_path, tmp_path / "logs")


@pytest.mark.slow
def test_url_at_the_running_emulator(emulator: EmbeddedEmulator, tmp_path: Path) -> None:
    # the shared test emulator holds other tests' datasets: consent to the grader replacing them
    with open_warehouse(emulator.endpoint + "/", tmp_path, tmp_path / "logs", replace_datasets=True) as remote:
        assert remote.kind == "url" and remote.endpoint == emulator.endpoint
        assert remote.project == "marketplace-analytics"
        assert remote.versions == {"emulator": "1.4.0"}  # what bqemulator's /healthz reports
        assert query(remote.client(), "SELECT 2 AS two") == [{"two": 2}]
    assert port_open(emulator.endpoint)  # leaving the `with` did not touch the server
    assert query(emulator.client(), "SELECT 3 AS three") == [{"three": 3}]


# --- datasets and loads -------------------------------------------------------------


@pytest.mark.slow
def test_prepare_datasets_drops_everything_a_previous_run_left(emulator: EmbeddedEmulator) -> None:
    client = emulator.client()
    prepare_datasets(client)
    load_table(client, "raw", "orders", [("id", "STRING")], b'{"id": "a"}\n')
    client.create_dataset("dbt_candidate_custom")
    client.query("CREATE TABLE dbt_candidate_custom.leftover AS SELECT 1 AS x").result()
    client.query("CREATE VIEW marts.v AS SELECT 1 AS x").result()

    assert prepare_datasets(client) == ["dbt_candidate_custom", "marts", "raw", "staging"]
    assert sorted(d.dataset_id for d in client.list_datasets()) == sorted(DATASETS)
    assert all(list(client.list_tables(d)) == [] for d in DATASETS)


@pytest.mark.slow
def test_a_url_warehouse_holding_datasets_the_grader_did_not_create_is_refused(emulator: EmbeddedEmulator) -> None:
    """A live stack's raw/staging/marts are not the grader's to delete unless it is told so."""
    client = emulator.client()
    prepare_datasets(client)
    UrlWarehouse(emulator.endpoint)  # only the grader's own datasets: accepted
    client.create_dataset("live_stack_raw")
    with pytest.raises(WarehouseError, match=r"did not create \(live_stack_raw\).*--replace-datasets"):
        UrlWarehouse(emulator.endpoint)
    UrlWarehouse(emulator.endpoint, replace_datasets=True)
    assert prepare_datasets(client) == ["live_stack_raw", "marts", "raw", "staging"]


TYPES = ["STRING", "INT64", "NUMERIC", "BOOL", "TIMESTAMP", "DATETIME", "JSON", "DATE", "FLOAT64"]

# (BigQuery type, value as written in the NDJSON line, value the client reads back)
FORMATS = [
    ("STRING", "héllo \"world\"\n", "héllo \"world\"\n"),
    ("INT64", 42, 42),
    ("INT64", "9007199254740993", 9007199254740993),  # beyond 2**53: pass as a string
    ("NUMERIC", "12.34", Decimal("12.34")),
    ("NUMERIC", "-0.01", Decimal("-0.01")),
    ("NUMERIC", "9999999999.99", Decimal("9999999999.99")),  # NUMERIC(12,2) max
    ("NUMERIC", 12.34, Decimal("12.34")),
    ("BOOL", True, True),
    ("BOOL", "false", False),
    ("TIMESTAMP", "2025-03-09T07:30:00Z", datetime(2025, 3, 9, 7, 30, tzinfo=UTC)),
    ("TIMESTAMP", "2025-03-09 07:30:00+00:00", datetime(2025, 3, 9, 7, 30, tzinfo=UTC)),
    ("TIMESTAMP", "2025-03-09T07:30:00.123456Z", datetime(2025, 3, 9, 7, 30, 0, 123456, tzinfo=UTC)),
    ("TIMESTAMP", "2025-03-09T02:30:00-05:00", datetime(2025, 3, 9, 7, 30, tzinfo=UTC)),
    ("TIMESTAMP", "2025-03-09 07:30:00 UTC", datetime(2025, 3, 9, 7, 30, tzinfo=UTC)),
    ("TIMESTAMP", "2025-03-09 07:30:00", datetime(2025, 3, 9, 7, 30, tzinfo=UTC)),  # no zone: UTC, as in BigQuery
    ("DATETIME", "2025-03-09 02:30:00", datetime(2025, 3, 9, 2, 30)),
    ("DATETIME", "2025-03-09T02:30:00", datetime(2025, 3, 9, 2, 30)),
    ("DATETIME", "2025-03-09T02:30:00.500000", datetime(2025, 3, 9, 2, 30, 0, 500000)),
    ("JSON", {"a": 1, "tags": ["x", "y"], "price": "12.34"}, {"a": 1, "tags": ["x", "y"], "price": "12.34"}),
    ("JSON", ["x", 1, None], ["x", 1, None]),
    ("JSON", '{"a": 1}', '{"a": 1}'),  # an encoded string stays a JSON string, not an object
    ("DATE", "2025-03-09", date(2025, 3, 9)),
    ("FLOAT64", 0.1, 0.1),
    ("FLOAT64", "2.5", 2.5),
]


@pytest.fixture(scope="module")
def loaded_formats(emulator: EmbeddedEmulator) -> dict[int, dict]:
    """One row per FORMATS case (its value in the column of its type), loaded in one load job."""
    client = emulator.client()
    client.create_dataset("warehouse_formats", exists_ok=True)
    schema = [("case_id", "INT64")] + [(f"c_{t.lower()}", t) for t in TYPES]
    lines = [json.dumps({"case_id": i, f"c_{bq_type.lower()}": value}) for i, (bq_type, value, _) in enumerate(FORMATS)]
    assert load_table(client, "warehouse_formats", "every_type", schema, "\n".join(lines).encode()) == len(FORMATS)
    table = client.get_table("warehouse_formats.every_type")
    assert [(f.name, f.field_type) for f in table.schema] == schema
    rows = query(client, "SELECT * FROM warehouse_formats.every_type ORDER BY case_id")
    return {row["case_id"]: row for row in rows}


@pytest.mark.slow
@pytest.mark.parametrize("case_id", range(len(FORMATS)),
                         ids=[f"{t}:{json.dumps(v)[:40]}" for t, v, _ in FORMATS])
def test_load_format_reads_back_exactly(loaded_formats: dict[int, dict], case_id: int) -> None:
    bq_type, _, expected = FORMATS[case_id]
    row = loaded_formats[case_id]
    actual = row.pop(f"c_{bq_type.lower()}")
    assert actual == expected and type(actual) is type(expected)
    if isinstance(expected, datetime):
        assert actual.utcoffset() == expected.utcoffset()  # aware stays aware (UTC), naive stays naive
    assert all(value is None for name, value in row.items() if name != "case_id")  # nothing leaked across columns


@pytest.mark.slow
def test_json_paths_need_json_values_not_encoded_strings(emulator: EmbeddedEmulator) -> None:
    client = emulator.client()
    client.create_dataset("warehouse_formats", exists_ok=True)
    load_table(client, "warehouse_formats", "json_kinds", [("k", "STRING"), ("j", "JSON")],
               b'{"k": "object", "j": {"condition": "new"}}\n{"k": "encoded", "j": "{\\"condition\\": \\"new\\"}"}\n')
    rows = query(client, "SELECT k, JSON_VALUE(j, '$.condition') AS c, "
                         "JSON_VALUE(PARSE_JSON(JSON_VALUE(j)), '$.condition') AS reparsed "
                         "FROM warehouse_formats.json_kinds ORDER BY k")
    assert rows == [{"k": "encoded", "c": None, "reparsed": "new"}, {"k": "object", "c": "new", "reparsed": None}]


@pytest.mark.slow
def test_numeric_arithmetic_is_exact_and_timestamps_compare_as_instants(emulator: EmbeddedEmulator) -> None:
    client = emulator.client()
    client.create_dataset("warehouse_formats", exists_ok=True)
    load_table(client, "warehouse_formats", "money", [("amount", "NUMERIC"), ("paid_at", "TIMESTAMP")],
               b'{"amount": "0.10", "paid_at": "2025-03-09T07:30:00Z"}\n'
               b'{"amount": "0.20", "paid_at": "2025-03-09 02:30:00-05:00"}\n')
    [row] = query(client, "SELECT SUM(amount) AS total, COUNT(DISTINCT paid_at) AS instants, MIN(paid_at) AS paid_at "
                          "FROM warehouse_formats.money")
    assert row == {"total": Decimal("0.30"), "instants": 1, "paid_at": datetime(2025, 3, 9, 7, 30, tzinfo=UTC)}
    assert row["paid_at"].tzinfo.utcoffset(None) == timedelta(0)


@pytest.mark.slow
def test_load_replaces_the_table_and_accepts_an_empty_file(emulator: EmbeddedEmulator) -> None:
    client = emulator.client()
    client.create_dataset("warehouse_formats", exists_ok=True)
    assert load_table(client, "warehouse_formats", "t", [("x", "INT64")], b'{"x": 1}\n{"x": 2}\n\n') == 2
    assert load_table(client, "warehouse_formats", "t", [("y", "STRING")], b"") == 0
    table = client.get_table("warehouse_formats.t")
    assert [(f.name, f.field_type) for f in table.schema] == [("y", "STRING")]
    assert query(client, "SELECT COUNT(*) AS n FROM warehouse_formats.t") == [{"n": 0}]


@pytest.mark.slow
def test_a_bad_value_fails_with_the_table_name(emulator: EmbeddedEmulator) -> None:
    client = emulator.client()
    client.create_dataset("warehouse_formats", exists_ok=True)
    with pytest.raises(WarehouseError, match=r"loading warehouse_formats\.bad failed: .*invalid timestamp"):
        load_table(client, "warehouse_formats", "bad", [("at", "TIMESTAMP")], b'{"at": "yesterday"}\n')


def test_unsupported_types_are_refused_before_any_call() -> None:
    with pytest.raises(ValueError, match=r"unsupported column types \['GEOGRAPHY', 'STRUCT'\]"):
        load_table(None, "raw", "t", [("g", "GEOGRAPHY"), ("s", "STRUCT"), ("x", "STRING")], b"")

