"""`dag.*`: rules over the candidate's Airflow DAG files, each a small function over the DAG
interpreter (checks/airflow_dags.py), one file per family. Importing this package registers
them; candidate code is never run here (only dag.airflow_import_errors runs Airflow's own
loader, in a sandboxed subprocess, when the grading names an Airflow interpreter)."""

from checks.dag import documentation, orchestration, parsing, reliability, scheduling, security

__all__ = ["documentation", "orchestration", "parsing", "reliability", "scheduling", "security"]
