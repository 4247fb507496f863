"""Daily marketplace pipeline: Airbyte sync, then dbt build (models and their tests)."""

import logging
from datetime import datetime, timedelta

from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

log = logging.getLogger(__name__)


def log_failure(context):
    log.error("task %s failed for %s", context["ti"].task_id, context["ds"])


with DAG(
    dag_id="marketplace_pipeline",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5), "on_failure_callback": log_failure},
    doc_md="Airbyte sync of the source Postgres, then `dbt build`. On failure: read the task log and rerun the day.",
) as dag:
    sync = AirbyteTriggerSyncOperator(
        task_id="airbyte_sync",
        airbyte_conn_id="airbyte_default",
        connection_id="{{ var.value.airbyte_connection_id }}",
    )
    build = BashOperator(task_id="dbt_build", bash_command="cd /opt/airflow/dbt && dbt build")

    sync >> build
