from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(
    dag_id="marketplace_pipeline",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
) as dag:
    sync = BashOperator(task_id="airbyte_sync", bash_command="echo 'trigger airbyte sync' && sleep 5")
    run = BashOperator(task_id="dbt_run", bash_command="cd /opt/dbt && dbt run")
    test = BashOperator(task_id="dbt_test", bash_command="cd /opt/dbt && dbt test")

    sync >> run >> test
