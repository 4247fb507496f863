"""dag.* rules: each with a DAG that trips it and one that does not; candidate code is never run."""

from __future__ import annotations

import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest

import checks.dag  # noqa: F401  (registers the rules)
from checks.airflow_dags import dag_files
from checks.registry import run_check, specs, REGISTRY
from checks.static_context import StaticContext

FIXTURES = Path(__file__).parent / "fixtures" / "static" / "dags"
REPO = Path(__file__).resolve().parents[1]
AIRFLOW_VENV = REPO / ".venv-airflow"
AIRFLOW_INSTALL = "python3.11 -m venv .venv-airflow && .venv-airflow/bin/pip install apache-airflow==3.3.2"


def workspace(tmp_path: Path, files: dict[str, str]) -> StaticContext:
    """A candidate workspace with the given DAG files under airflow/dags/."""
    dags = tmp_path / "ws" / "airflow" / "dags"
    dags.mkdir(parents=True)
    for name, src in files.items():
        if name.startswith("@"):
            shutil.copy(FIXTURES / name[1:], dags / name[1:])
        else:
            (dags / name).write_text(textwrap.dedent(src))
    return StaticContext.build(tmp_path / "ws", commits=[])


def run(rule: str, ctx: StaticContext):
    return run_check(REGISTRY[rule], ctx)


def messages(res) -> list[str]:
    return [f["message"] for f in res.evidence.get("findings", [])]


GOOD = "@good_pipeline.py"
STARTER = "@starter_like.py"
TASKFLOW = "@taskflow_pipeline.py"


# -- the fixtures as a whole ------------------------------------------------------------


@pytest.mark.parametrize("fixture", [GOOD, TASKFLOW])
def test_good_dags_pass_every_rule(tmp_path, fixture):
    ctx = workspace(tmp_path, {fixture: ""})
    for spec in specs("dag"):
        res = run_check(spec, ctx)
        if spec.id == "dag.airflow_import_errors":
            assert res.status == "skipped"
            continue
        assert res.status == "pass", (spec.id, res.message, res.evidence.get("findings"))


def test_starter_like_dag_fails_every_rule_but_parse(tmp_path):
    ctx = workspace(tmp_path, {STARTER: ""})
    expected_fail = {
        "dag.no_schedule",
        "dag.catchup_implicit",
        "dag.no_retries",
        "dag.no_alerting",
        "dag.alerting_notifies",
        "dag.airbyte_simulated",
        "dag.dbt_without_tests",
        "dag.secrets_in_code",
        "dag.parse_time_work",
        "dag.non_idempotent",
        "dag.no_doc_md",
    }
    got = {s.id: run_check(s, ctx) for s in specs("dag")}
    assert {k for k, r in got.items() if r.status == "fail"} == expected_fail
    assert got["dag.parse_error"].status == "pass"
    for rid in expected_fail:  # every finding is pinned to the file and a line
        for f in got[rid].evidence["findings"]:
            assert f["file"] == "airflow/dags/starter_like.py"
            assert f["line"] and f["snippet"], (rid, f)


# -- rule by rule -------------------------------------------------------------------------


def test_parse_error(tmp_path):
    bad = workspace(tmp_path / "a", {"@broken_syntax.py": ""})
    res = run("dag.parse_error", bad)
    assert res.status == "fail"
    f = res.evidence["findings"][0]
    assert f["line"] == 3 and "with DAG" in f["snippet"]
    assert run("dag.parse_error", workspace(tmp_path / "b", {GOOD: ""})).status == "pass"


def test_no_dag_files_is_skipped(tmp_path):
    (tmp_path / "empty").mkdir()
    ctx = StaticContext.build(tmp_path / "empty", commits=[])
    for spec in specs("dag"):
        assert run_check(spec, ctx).status == "skipped", spec.id


SCHEDULE_NONE = """
from airflow.sdk import DAG
with DAG("manual", schedule=None, catchup=False) as dag:
    pass
"""
SCHEDULE_CRON = """
from airflow.sdk import DAG
with DAG("cron", schedule="@hourly", catchup=True) as dag:
    pass
"""


def test_no_schedule(tmp_path):
    res = run("dag.no_schedule", workspace(tmp_path / "a", {"m.py": SCHEDULE_NONE}))
    assert res.status == "fail" and "schedule=None" in messages(res)[0]
    assert run("dag.no_schedule", workspace(tmp_path / "b", {"c.py": SCHEDULE_CRON})).status == "pass"
    assets = 'from airflow.sdk import DAG, Asset\nwith DAG("a", schedule=[Asset("s3://x")], catchup=False):\n    pass\n'
    assert run("dag.no_schedule", workspace(tmp_path / "c", {"a.py": assets})).status == "pass"


def test_catchup_implicit(tmp_path):
    src = 'from airflow import DAG\nwith DAG("d", schedule="@daily", default_args={"catchup": False}):\n    pass\n'
    res = run("dag.catchup_implicit", workspace(tmp_path / "a", {"d.py": src}))
    assert res.status == "fail" and "ignored" in messages(res)[0]
    assert run("dag.catchup_implicit", workspace(tmp_path / "b", {"c.py": SCHEDULE_CRON})).status == "pass"


RETRIES_ON_TASKS = """
from airflow.sdk import DAG, task
from airflow.providers.standard.operators.bash import BashOperator
with DAG("t", schedule="@daily", catchup=False):
    a = BashOperator(task_id="a", bash_command="true", retries=2)
    @task(retries=3)
    def b():
        pass
    a >> b()
"""
RETRIES_ZERO = """
from airflow import DAG
from airflow.operators.bash import BashOperator
args = {"retries": 0}
with DAG("z", default_args=args, schedule="@daily", catchup=False):
    BashOperator(task_id="a", bash_command="true")
"""


def test_no_retries(tmp_path):
    res = run("dag.no_retries", workspace(tmp_path / "a", {"z.py": RETRIES_ZERO}))
    assert res.status == "fail" and "retries=0" in messages(res)[0]
    assert res.evidence["findings"][0]["line"] == 4  # the retries=0 line
    assert run("dag.no_retries", workspace(tmp_path / "b", {"t.py": RETRIES_ON_TASKS})).status == "pass"


def test_default_args_from_a_sibling_module(tmp_path):
    common = 'from datetime import timedelta\nDEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(minutes=1)}\n'
    dag = (
        "from airflow import DAG\nfrom common import DEFAULT_ARGS\n"
        'with DAG("s", default_args=DEFAULT_ARGS, schedule="@daily", catchup=False):\n    pass\n'
    )
    res = run("dag.no_retries", workspace(tmp_path, {"common.py": common, "s.py": dag}))
    assert res.status == "pass", res.evidence


def test_no_alerting(tmp_path):
    assert run("dag.no_alerting", workspace(tmp_path / "a", {"c.py": SCHEDULE_CRON})).status == "fail"
    notifier = """
    from airflow.sdk import DAG
    from airflow.providers.slack.notifications.slack import SlackNotifier
    with DAG("n", schedule="@daily", catchup=False,
             on_failure_callback=SlackNotifier(text="{{ dag.dag_id }} failed")):
        pass
    """
    assert run("dag.no_alerting", workspace(tmp_path / "b", {"n.py": notifier})).status == "pass"
    alert_task = """
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.bash import BashOperator
    with DAG("n", schedule="@daily", catchup=False):
        BashOperator(task_id="page", bash_command="./page.sh", trigger_rule="one_failed")
    """
    assert run("dag.no_alerting", workspace(tmp_path / "c", {"n.py": alert_task})).status == "pass"


AIRBYTE_NO_WAIT = """
from airflow.sdk import DAG
from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator
with DAG("ab", schedule="@daily", catchup=False):
    AirbyteTriggerSyncOperator(task_id="sync", airbyte_conn_id="ab", connection_id="x", asynchronous=True)
"""
AIRBYTE_ASYNC_WITH_SENSOR = """
from airflow.sdk import DAG
from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator
from airflow.providers.airbyte.sensors.airbyte import AirbyteJobSensor
with DAG("ab", schedule="@daily", catchup=False):
    sync = AirbyteTriggerSyncOperator(task_id="sync", airbyte_conn_id="ab", connection_id="x", asynchronous=True)
    wait = AirbyteJobSensor(task_id="wait", airbyte_conn_id="ab", airbyte_job_id=sync.output)
    sync >> wait
"""
AIRBYTE_CURL_NO_WAIT = """
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator
with DAG("ab", schedule="@daily", catchup=False):
    BashOperator(task_id="airbyte_sync",
                 bash_command="curl -X POST http://airbyte:8001/api/v1/connections/sync -d '{}'")
"""


def test_airbyte_simulated(tmp_path):
    res = run("dag.airbyte_simulated", workspace(tmp_path / "a", {STARTER: ""}))
    assert res.status == "fail" and "simulated" in messages(res)[0]
    res = run("dag.airbyte_simulated", workspace(tmp_path / "b", {"ab.py": AIRBYTE_NO_WAIT}))
    assert res.status == "fail" and "without waiting" in messages(res)[0]
    res = run("dag.airbyte_simulated", workspace(tmp_path / "c", {"ab.py": AIRBYTE_CURL_NO_WAIT}))
    assert res.status == "fail" and "without waiting" in messages(res)[0]
    res = run("dag.airbyte_simulated", workspace(tmp_path / "d", {"c.py": SCHEDULE_CRON}))
    assert res.status == "fail" and "no Airbyte step" in messages(res)[0]
    for name, src in (("e", AIRBYTE_ASYNC_WITH_SENSOR),):
        assert run("dag.airbyte_simulated", workspace(tmp_path / name, {"ab.py": src})).status == "pass"
    assert run("dag.airbyte_simulated", workspace(tmp_path / "f", {GOOD: ""})).status == "pass"
    assert run("dag.airbyte_simulated", workspace(tmp_path / "g", {TASKFLOW: ""})).status == "pass"


DBT_TEST_NOT_GATING = """
from airflow import DAG
from airflow.operators.bash import BashOperator
with DAG("g", schedule="@daily", catchup=False):
    run = BashOperator(task_id="dbt_run", bash_command="dbt run")
    test = BashOperator(task_id="dbt_test", bash_command="dbt test")
    publish = BashOperator(task_id="publish", bash_command="./publish.sh")
    run >> [test, publish]
"""
DBT_TEST_GATING = DBT_TEST_NOT_GATING.replace("run >> [test, publish]", "run >> test >> publish")
DBT_VIA_SUBPROCESS = """
import subprocess
from airflow.sdk import DAG
from airflow.providers.standard.operators.python import PythonOperator
def build():
    subprocess.run(["dbt", "build", "--target", "prod"], check=True)
with DAG("p", schedule="@daily", catchup=False):
    PythonOperator(task_id="dbt", python_callable=build)
"""


def test_dbt_without_tests(tmp_path):
    res = run("dag.dbt_without_tests", workspace(tmp_path / "a", {"g.py": DBT_TEST_NOT_GATING}))
    assert res.status == "fail" and "publish" in messages(res)[0]
    res = run("dag.dbt_without_tests", workspace(tmp_path / "b", {STARTER: ""}))
    assert res.status == "fail" and "without dbt test" in messages(res)[0]
    for name, src in (("c", DBT_TEST_GATING), ("d", DBT_VIA_SUBPROCESS)):
        assert run("dag.dbt_without_tests", workspace(tmp_path / name, {"g.py": src})).status == "pass", name
    assert run("dag.dbt_without_tests", workspace(tmp_path / "e", {TASKFLOW: ""})).status == "pass"


def test_secrets_in_code_are_masked(tmp_path):
    res = run("dag.secrets_in_code", workspace(tmp_path / "a", {STARTER: ""}))
    assert res.status == "fail"
    kinds = " ".join(messages(res))
    assert "connection URI" in kinds and "`password`" in kinds and "inside a string" in kinds
    for f in res.evidence["findings"]:
        assert "marketplace_secret" not in f["snippet"] and "hunter2" not in f["snippet"]
        assert "***" in f["snippet"]
    templated = """
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.bash import BashOperator
    with DAG("s", schedule="@daily", catchup=False, doc_md="The password lives in the connection."):
        BashOperator(task_id="psql", bash_command="psql", env={"PGPASSWORD": "{{ conn.pg.password }}"})
        BashOperator(task_id="t", bash_command="curl -H 'token: $AIRBYTE_TOKEN' http://x")
    """
    assert run("dag.secrets_in_code", workspace(tmp_path / "b", {"s.py": templated})).status == "pass"


def test_parse_time_work(tmp_path):
    res = run("dag.parse_time_work", workspace(tmp_path / "a", {STARTER: ""}))
    assert res.status == "fail"
    assert {f["line"] for f in res.evidence["findings"]} == {12, 13}
    inside = """
    import requests
    from airflow.sdk import DAG, task
    with DAG("ok", schedule="@daily", catchup=False):
        @task
        def fetch():
            return requests.get("http://x").status_code
        fetch()
    if __name__ == "__main__":
        open("local-debug.txt", "w")
    """
    assert run("dag.parse_time_work", workspace(tmp_path / "b", {"ok.py": inside})).status == "pass"


def test_non_idempotent(tmp_path):
    res = run("dag.non_idempotent", workspace(tmp_path / "a", {STARTER: ""}))
    assert res.status == "fail" and res.evidence["findings"][0]["line"] == 24
    bash_date = """
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.bash import BashOperator
    with DAG("d", schedule="@daily", catchup=False):
        BashOperator(task_id="export", bash_command="export.sh --day $(date +%F)")
    """
    res = run("dag.non_idempotent", workspace(tmp_path / "b", {"d.py": bash_date}))
    assert res.status == "fail" and "$(date" in messages(res)[0]
    # the good DAG uses datetime.now() only inside its failure callback, and {{ ds }} in tasks
    assert run("dag.non_idempotent", workspace(tmp_path / "c", {GOOD: ""})).status == "pass"


def test_no_doc_md(tmp_path):
    res = run("dag.no_doc_md", workspace(tmp_path / "a", {"c.py": SCHEDULE_CRON}))
    assert res.status == "fail"
    attr = SCHEDULE_CRON.replace(" as dag:\n    pass", " as dag:\n    dag.doc_md = 'Runbook: rerun the failed task.'")
    assert run("dag.no_doc_md", workspace(tmp_path / "b", {"c.py": attr})).status == "pass"
    module_doc = '"""Runbook."""\nfrom airflow import DAG\nwith DAG("m", doc_md=__doc__, schedule="@daily", catchup=False):\n    pass\n'
    assert run("dag.no_doc_md", workspace(tmp_path / "c", {"m.py": module_doc})).status == "pass"
    no_module_doc = module_doc.split("\n", 1)[1]
    assert run("dag.no_doc_md", workspace(tmp_path / "d", {"m.py": no_module_doc})).status == "fail"


def test_dependency_graph_styles(tmp_path):
    src = """
    from airflow.sdk import DAG, chain, task
    from airflow.sdk import TaskGroup
    from airflow.providers.standard.operators.empty import EmptyOperator
    with DAG("g", schedule="@daily", catchup=False):
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        with TaskGroup("grp") as grp:
            c = EmptyOperator(task_id="c")
        d = EmptyOperator(task_id="d")
        chain(a, b, grp)
        d << grp
        @task
        def e(x):
            return x
        e(d.output)
    """
    ctx = workspace(tmp_path, {"g.py": src})
    f = dag_files(ctx)[0]
    assert {("a", "b"), ("b", "c"), ("c", "d"), ("d", "e")} <= f.edges
    assert f.downstream(["a"]) == {"b", "c", "d", "e"}


# -- safety and robustness ----------------------------------------------------------------


def test_grading_a_malicious_dag_creates_nothing(tmp_path):
    target = tmp_path / "pwned-dir" / "PWNED"
    target.parent.mkdir()
    src = f"""
    import os, subprocess
    open({str(target)!r}, "w").write("executed")
    os.system("touch {target}.os")
    subprocess.run(["touch", "{target}.sub"])
    from airflow import DAG
    with DAG("evil", schedule="@daily", catchup=False) as dag:
        pass
    """
    ctx = workspace(tmp_path, {"evil.py": src})
    before = sys.modules.copy()
    results = {s.id: run_check(s, ctx) for s in specs("dag")}
    assert list(target.parent.iterdir()) == [], "grading executed the DAG"
    assert "evil" not in sys.modules and set(sys.modules) - set(before) <= {"grader.airflow_parse"}
    assert results["dag.parse_time_work"].status == "fail"  # and it says so
    assert all(r.status != "error" for r in results.values())


def _airflow_example_dags() -> list[Path]:
    if not AIRFLOW_VENV.exists():
        pytest.fail(
            f"{AIRFLOW_VENV} is missing: the real-world DAG test needs apache-airflow's example DAGs. "
            f"Create it from the repository root with: {AIRFLOW_INSTALL}"
        )
    site = sorted(AIRFLOW_VENV.glob("lib/python*/site-packages"))
    folders = [d for s in site for d in s.rglob("example_dags") if d.is_dir()]
    files = sorted(p for d in folders for p in d.rglob("*.py"))
    if not files:
        pytest.fail(f"no example_dags in {AIRFLOW_VENV}: is apache-airflow installed? ({AIRFLOW_INSTALL})")
    return files


def test_real_world_airflow_example_dags_do_not_crash_any_rule():
    files = _airflow_example_dags()
    site = next(AIRFLOW_VENV.glob("lib/python*/site-packages"))
    ctx = StaticContext(root=site, dag_files=files)
    t0 = time.time()
    results = {s.id: run_check(s, ctx) for s in specs("dag")}
    parsed = dag_files(ctx)
    print(
        f"\n{len(files)} example DAG files, {sum(len(f.dags) for f in parsed)} DAGs, "
        f"{sum(len(f.tasks) for f in parsed)} tasks, {sum(len(f.edges) for f in parsed)} edges "
        f"in {time.time() - t0:.2f} s"
    )
    for rid, r in results.items():
        print(f"  {rid:28s} {r.status:8s} findings={len(r.evidence.get('findings', []))}")
    assert not [rid for rid, r in results.items() if r.status == "error"], {
        rid: r.message for rid, r in results.items() if r.status == "error"
    }
    assert sum(len(f.dags) for f in parsed) >= 50  # the analysis understood them
    assert results["dag.parse_error"].status == "pass"


@pytest.mark.slow
def test_optional_airflow_loader_reports_import_errors(tmp_path):
    files = _airflow_example_dags()
    assert files
    python = AIRFLOW_VENV / "bin" / "python"
    ok = """
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator
    with DAG("loader_ok", schedule=None):
        EmptyOperator(task_id="a")
    """
    broken = "from airflow.sdk import DAG\nimport not_a_module_anywhere\n"
    ctx = workspace(tmp_path, {"ok.py": ok, "broken.py": broken})
    res = run("dag.airflow_import_errors", ctx)
    assert res.status == "skipped"  # off by default
    ctx.airflow_python = python
    res = run("dag.airflow_import_errors", ctx)
    assert res.status == "fail", res.message
    assert list(res.evidence["import_errors"]) == ["airflow/dags/broken.py"]
    assert "not_a_module_anywhere" in res.evidence["import_errors"]["airflow/dags/broken.py"]
    assert res.evidence["dag_ids"] == ["loader_ok"]


LOGGING_CALLBACK = """
import logging
from airflow.sdk import DAG
log = logging.getLogger(__name__)

def on_fail(context):
    log.error("task %s failed", context["ti"].task_id)

with DAG("p", schedule="@daily", catchup=False, default_args={"retries": 1, "on_failure_callback": on_fail}):
    pass
"""
NOTIFIER_CALLBACK = """
from airflow.providers.slack.notifications.slack import SlackNotifier
from airflow.sdk import DAG
with DAG("p", schedule="@daily", catchup=False,
         default_args={"on_failure_callback": SlackNotifier(slack_conn_id="s", text="failed")}):
    pass
"""
HELPER_CALLBACK = """
import requests
from airflow.sdk import DAG

def post(text):
    requests.post("https://alerts.example.com/hook", json={"text": text}, timeout=5)

def on_fail(context):
    post("failed")

with DAG("p", schedule="@daily", catchup=False, on_failure_callback=on_fail):
    pass
"""


def test_alerting_that_only_logs_is_not_alerting_a_person(tmp_path):
    res = run("dag.alerting_notifies", workspace(tmp_path / "a", {"p.py": LOGGING_CALLBACK}))
    assert res.status == "fail" and "on_fail only logs" in messages(res)[0]
    assert run("dag.no_alerting", workspace(tmp_path / "b", {"p.py": LOGGING_CALLBACK})).status == "pass"
    for name, src in (("c", NOTIFIER_CALLBACK), ("d", HELPER_CALLBACK)):
        res = run("dag.alerting_notifies", workspace(tmp_path / name, {"p.py": src}))
        assert res.status == "pass", (name, res.message)
