"""Daily marketplace pipeline: Airbyte sync, then dbt.

Starter version handed over with the repository. It works, but it is not production
ready: the Airbyte step only pretends to sync, and the dbt step runs the models without
testing them. Improving it is part of the exercise.
"""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(
    dag_id="marketplace_pipeline",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["marketplace"],
):
    # Simulated: this does not talk to Airbyte at all.
    airbyte_sync = BashOperator(
        task_id="airbyte_sync",
        bash_command="echo 'Starting Airbyte sync...' && sleep 30 && echo 'Airbyte sync done'",
    )

    # dbt has its own virtualenv in the Airflow containers (see airflow-init in
    # docker-compose.yml); the dbt project is mounted at /opt/airflow/dbt.
    dbt_run = BashOperator(
        task_id="dbt_run",
        bash_command=(
            "cd /opt/airflow/dbt && /opt/dbt-venv/bin/dbt run --profiles-dir /opt/airflow/dbt "
            "--target-path /tmp/dbt/target --log-path /tmp/dbt/logs"
        ),
    )

    airbyte_sync >> dbt_run
