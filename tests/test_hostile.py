"""Hostile workspaces: each attack a candidate could plant, graded for real (emulator, dbt, the sandbox).

Every test asserts the same guarantees: nothing outside the grading's work folder changed,
no secret reached the report, no process outlived the grading, memory stayed under the
limit, and a report was written with exit 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from grader.sandbox import detect
from tests.grading import REPO

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not detect().jailed, reason=f"no sandbox on this machine: {detect().reason}")]

VENV_SITE = Path(next(p for p in sys.path if p.endswith("site-packages")))
SECRET_ENV = "GRADER_TEST_SECRET"


class Attack:
    """One hostile workspace (the starter plus planted files) and everything an attack could touch."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.token = secrets.token_hex(12)
        self.secret_file = tmp_path / "interviewer-secret.txt"
        self.secret_file.write_text(f"SECRET-{self.token}\n")
        self.home = tmp_path / "home"          # the grader's HOME
        self.home.mkdir()
        self.loot = tmp_path / "loot"          # a host folder attacks try to write into
        self.loot.mkdir()
        self.out = tmp_path / "out"
        self.work = tmp_path / "work"
        self.ws = tmp_path / "candidate"
        shutil.copytree(REPO / "environment", self.ws, ignore=shutil.ignore_patterns("target", "logs", "postgres"))
        self.before = self._host_state()

    def plant(self, files: dict[str, str]) -> None:
        for rel, text in files.items():
            path = self.ws / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip())

    def grade(self, *extra: str, timeout: float = 900) -> tuple[subprocess.CompletedProcess, dict, float]:
        env = {**os.environ, "HOME": str(self.home), SECRET_ENV: f"ENVSECRET-{self.token}"}
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        result = subprocess.run(
            [sys.executable, "-m", "grader.cli", str(self.ws), "--out", str(self.out), "--name", "hostile",
             "--scale", "small", "--quiet", "--work-dir", str(self.work), *extra],
            capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)
        peak_gb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024 ** 2
        report_path = self.out / "hostile" / "report.json"
        assert report_path.is_file(), f"no report; exit {result.returncode}; stderr:\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        return result, json.loads(report_path.read_text()), peak_gb

    def assert_contained(self, result: subprocess.CompletedProcess, peak_gb: float, memory_gb: float = 8.5) -> None:
        """The guarantees every hostile grading must keep."""
        assert result.returncode == 0, result.stderr[-3000:]
        report_text = "".join((self.out / "hostile" / name).read_text() for name in ("report.json", "report.html"))
        for secret in (f"SECRET-{self.token}", f"ENVSECRET-{self.token}"):
            assert secret not in report_text and secret not in result.stdout + result.stderr
        assert self._host_state() == self.before, "something outside the work folder changed"
        assert sorted(p.name for p in self.out.iterdir()) == ["hostile"]
        assert sorted(p.name for p in (self.out / "hostile").iterdir()) == ["report.html", "report.json"]
        assert not any(p.is_symlink() for p in (self.out / "hostile").iterdir())
        assert survivors(str(self.tmp)) == []
        assert peak_gb < memory_gb, f"a process of the grading reached {peak_gb:.1f} GB"

    def _host_state(self) -> dict[str, object]:
        return {
            "home": sorted(str(p) for p in self.home.rglob("*")  # the grader's own cache aside
                           if not str(p).startswith(str(self.home / ".cache"))),
            "loot": sorted(str(p) for p in self.loot.rglob("*")),
            "tmp_loot": sorted(str(p) for p in Path("/tmp").glob(f"*{self.token}*")),
            "rubric": hashlib.sha256((REPO / "rubric.yaml").read_bytes()).hexdigest(),
            "site_packages": sorted(p.name for p in VENV_SITE.iterdir()),
            "grader_code": sorted(str(p) for p in (REPO / "grader").rglob("*.pth")),
            "workspace": {str(p.relative_to(self.ws)): p.read_bytes() for p in self.ws.rglob("*") if p.is_file()},
        }


def survivors(marker: str) -> list[str]:
    """Live processes whose command line, environment or working folder mention `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if marker.encode() in text or cwd.startswith(marker):
            found.append(f"{entry.name}: {text[:200]!r}")
    return found


def test_sql_that_reaches_for_the_host_is_refused_and_nothing_leaks(tmp_path):
    """COPY TO anywhere (a .pth into the grader's venv, rubric.yaml, HOME), read_text of a secret,
    ATTACH, SET, INSTALL, a file as a table: all refused inside the engine; the build goes on."""
    attack = Attack(tmp_path)
    pth = VENV_SITE / f"hostile_{attack.token}.pth"
    copy = "{% do run_query(\"COPY (SELECT 'import os' AS x) TO '" + "{path}" + "' (HEADER false)\") %}"
    attack.plant({
        "dbt/models/marts/copy_to_venv.sql": copy.replace("{path}", str(pth)) + "\nselect 1 as x\n",
        "dbt/models/marts/copy_to_rubric.sql": copy.replace("{path}", str(REPO / "rubric.yaml")) + "\nselect 1 as x\n",
        "dbt/models/marts/copy_to_home.sql": copy.replace("{path}", str(attack.home / "pwned.csv")) + "\nselect 1 as x\n",
        "dbt/models/marts/copy_relative.sql": copy.replace("{path}", "../../../../../../../../" + str(attack.loot / "x.csv"))
                                               + "\nselect 1 as x\n",
        # a mart the result checks read: whatever it holds could reach the report's evidence
        "dbt/models/marts/fct_payments.sql": f"select content as payment_id from read_text('{attack.secret_file}')\n",
        "dbt/models/marts/dim_users.sql": "select * from `/proc/self/environ`\n",
        "dbt/models/marts/attach_host.sql": "{% do run_query(\"ATTACH '" + str(attack.loot / "db.duckdb") + "' AS x\") %}\nselect 1 as x\n",
        "dbt/models/marts/reopen.sql": "{% do run_query('SET enable_external_access = true') %}\nselect 1 as x\n",
        "dbt/models/marts/install.sql": "{% do run_query('INSTALL httpfs') %}\nselect 1 as x\n",
        "dbt/models/marts/glob_host.sql": "select * from glob('/root/*')\n",
        "dbt/models/marts/hooked.sql": "{{ config(pre_hook=\"COPY (SELECT 1) TO '" + str(attack.loot / "hook.csv")
                                        + "'\") }}\nselect 1 as x\n",
    })
    attack.before = attack._host_state()
    result, report, peak = attack.grade("--quick")
    attack.assert_contained(result, peak)
    assert not pth.exists()
    errors = {r["name"]: r["message"] or "" for r in report["dbt"]["results"] if r["status"] == "error"}
    assert {"copy_to_venv", "copy_to_rubric", "copy_to_home", "copy_relative", "fct_payments", "dim_users",
            "attach_host", "reopen", "install", "glob_host", "hooked"} <= set(errors), report["dbt"]
    assert "not available in the exercise warehouse" in errors["copy_to_venv"]
    assert "read_text" in errors["fct_payments"]
    assert report["environment"]["isolation"]["isolated"] is True


def test_a_jinja_memory_bomb_meets_the_memory_limit(tmp_path):
    attack = Attack(tmp_path)
    attack.plant({"dbt/models/marts/bomb.sql": "{% set s = 'x' * 4000000000 %}\nselect {{ s | length }} as n\n"})
    attack.before = attack._host_state()
    result, report, peak = attack.grade("--quick", "--memory-limit", "2")
    attack.assert_contained(result, peak, memory_gb=4.5)
    assert report["dbt"]["status"] == "error"
    assert "Compilation Error in model bomb" in report["dbt"]["error"]  # the allocation failed under the limit


def test_dag_code_cannot_read_secrets_write_home_or_outlive_the_grading(tmp_path):
    """With --airflow-python the DAG's code runs: it tries the parent's environment, the
    secret file, HOME, and leaves a setsid daemon meant to rewrite the report afterwards."""
    airflow = REPO / ".venv-airflow" / "bin" / "python"
    if not airflow.exists():
        pytest.skip("the Airflow venv (.venv-airflow) is installed by scripts/test")
    attack = Attack(tmp_path)
    report_json = attack.out / "hostile" / "report.json"
    attack.plant({"airflow/dags/evil.py": f"""
        # an airflow DAG file (DagBag's safe mode loads only files that mention both words)
        import glob, os, time
        stolen = []
        for path in ["/proc/1/environ", f"/proc/{{os.getppid()}}/environ", *glob.glob("/proc/*/environ")]:
            try:
                stolen.append(open(path, "rb").read().decode(errors="replace"))
            except OSError as exc:
                stolen.append(str(exc))
        for path in [{str(attack.secret_file)!r}, {str(attack.home / ".bash_history")!r}]:
            try:
                stolen.append(open(path).read())
            except OSError as exc:
                stolen.append(str(exc))
        stolen.append(repr(dict(os.environ)))
        for target in [{str(attack.home / "pwned")!r}, {str(attack.loot / "pwned")!r}]:
            try:
                open(target, "w").write("pwned")
            except OSError:
                pass
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(8)
                for target in [{str(report_json)!r}, {str(attack.loot / "late")!r}]:
                    try:
                        open(target, "w").write('{{"band": "Strong Hire"}}')
                    except OSError:
                        pass
                time.sleep(600)
            os._exit(0)
        raise RuntimeError("STOLEN " + " | ".join(stolen))
        """})
    attack.before = attack._host_state()
    result, report, peak = attack.grade("--quick", "--airflow-python", str(airflow))
    time.sleep(10)  # the daemon would have struck by now
    attack.assert_contained(result, peak)
    assert json.loads(report_json.read_text()) == report
    loader = next(c for c in report["checks"] if c["id"] == "dag.airflow_loads")
    assert loader["evidence"]["isolation"]["jailed"] is True and loader["evidence"]["isolation"]["network"] == "none"
    assert "STOLEN" in json.dumps(loader["evidence"])  # the DAG ran, and what it could read was nothing of ours


def test_a_runaway_query_is_cancelled_at_the_dbt_timeout(tmp_path):
    """dbt is killed at --dbt-timeout; the engine's query is interrupted, so the result checks
    that follow run at once instead of waiting behind it."""
    attack = Attack(tmp_path)
    attack.plant({"dbt/models/marts/runaway.sql": """
        select count(*) as n
        from unnest(generate_array(1, 1000000)) as a
        cross join unnest(generate_array(1, 1000000)) as b
        """})
    attack.before = attack._host_state()
    started = time.monotonic()
    result, report, peak = attack.grade("--quick", "--dbt-timeout", "60", timeout=600)
    attack.assert_contained(result, peak)
    assert report["dbt"]["timed_out"] is True
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["payments.dedup"]["status"] == "fail", checks["payments.dedup"]
    # without the interrupt the checks would wait for a query of about 10^12 rows (hours)
    assert time.monotonic() - started < 400


def test_the_time_limit_bounds_the_whole_grading(tmp_path):
    attack = Attack(tmp_path)
    attack.plant({"dbt/models/marts/slow.sql": """
        select count(*) as n
        from unnest(generate_array(1, 1000000)) as a
        cross join unnest(generate_array(1, 1000000)) as b
        """})
    attack.before = attack._host_state()
    result, report, peak = attack.grade("--time-limit", "60", timeout=600)
    attack.assert_contained(result, peak)
    checks = {c["id"]: c for c in report["checks"]}
    for pass_id in ("dbt.idempotent", "tests.mutations", "dbt.generalises"):
        assert checks[pass_id]["status"] == "skipped", checks[pass_id]
        assert "time limit" in checks[pass_id]["message"] or "manifest" in checks[pass_id]["message"]
    if any("time limit" in checks[p]["message"] for p in ("dbt.idempotent", "tests.mutations", "dbt.generalises")):
        assert report["status"] == "incomplete" and report["rubric"]["provisional"]  # unobserved, and says so
        assert any(e["stage"] == "time limit" for e in report["errors"])
    assert report["timings"]["total_s"] < 200


def test_project_paths_that_climb_out_write_nothing_outside(tmp_path):
    attack = Attack(tmp_path)
    outside = "../" * 12 + str(attack.loot).lstrip("/")
    project = (REPO / "environment/dbt/dbt_project.yml").read_text()
    project = project.replace('model-paths: ["models"]', f'model-paths: ["models", "{outside}/models"]')
    project = project.replace('seed-paths: ["seeds"]', f'seed-paths: ["seeds", "{outside}/seeds"]')
    (attack.loot / "models").mkdir()
    (attack.loot / "models" / "outside_model.sql").write_text("select 1 as x\n")
    attack.plant({"dbt/dbt_project.yml": project + f"\ndocs-paths: [\"{outside}/docs\"]\nasset-paths: [\"{outside}\"]\n"})
    attack.before = attack._host_state()
    result, report, peak = attack.grade("--quick")
    attack.assert_contained(result, peak)


def test_grading_inside_the_workspace_cannot_redirect_the_report(tmp_path):
    attack = Attack(tmp_path)
    victim = attack.loot / "victim.txt"
    victim.write_text("keep me")
    (attack.ws / "reports").mkdir()
    (attack.ws / "reports" / "candidate").symlink_to(attack.loot)
    result = subprocess.run([sys.executable, "-m", "grader.cli", ".", "--name", "candidate", "--quiet"],
                            capture_output=True, text=True, cwd=attack.ws, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2 and "inside the workspace" in result.stderr
    assert victim.read_text() == "keep me" and sorted(p.name for p in attack.loot.iterdir()) == ["victim.txt"]


def test_reports_replace_planted_symlinks_instead_of_following_them(tmp_path):
    from grader.report import _write_atomically

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    report = tmp_path / "report.json"
    report.symlink_to(victim)
    _write_atomically(report, "{}")
    assert victim.read_text() == "keep me" and not report.is_symlink() and report.read_text() == "{}"
