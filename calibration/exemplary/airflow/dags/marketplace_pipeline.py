"""Daily marketplace ELT: Airbyte sync of the source Postgres, then dbt build as the quality gate."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG



def notify_on_call(context):
    """Post the failed task and its log URL to the on-call channel (Airflow connection `slack_on_call`)."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    ti = context["task_instance"]
    SlackWebhookHook(slack_webhook_conn_id="slack_on_call").send(
        text=f":red_circle: {ti.dag_id}.{ti.task_id} failed for {context['ds']}: {ti.log_url}"
    )


default_args = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "on_failure_callback": notify_on_call,
}

with DAG(
    dag_id="marketplace_pipeline",
    description="Postgres -> Airbyte -> BigQuery raw -> dbt staging/marts",
    schedule="0 6 * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["marketplace", "elt"],
    doc_md="""
### Marketplace ELT (on-call notes)
1. `airbyte_sync` triggers the Postgres -> BigQuery connection and waits for it.
2. `dbt_source_freshness` fails when raw is older than 48 h (the sync did not land).
3. `dbt_build` builds and tests every model; a failing test stops publication.
Re-running a day is safe: models are rebuilt from raw, incremental models merge on their keys.
If `airbyte_sync` fails twice, check the Airbyte UI (port 8000) job log first.
""",
) as dag:
    airbyte_sync = AirbyteTriggerSyncOperator(
        task_id="airbyte_sync",
        airbyte_conn_id="airbyte_default",
        connection_id="{{ var.value.get('airbyte_marketplace_connection_id', 'marketplace-postgres-to-bigquery') }}",
        asynchronous=False,
        timeout=3600,
        wait_seconds=30,
    )
    freshness = BashOperator(
        task_id="dbt_source_freshness",
        bash_command="cd /opt/dbt && dbt source freshness --profiles-dir . --target prod",
    )
    build = BashOperator(
        task_id="dbt_build",
        bash_command="cd /opt/dbt && dbt build --profiles-dir . --target prod --vars '{run_date: \"{{ ds }}\"}'",
    )
    docs = BashOperator(
        task_id="dbt_docs_generate",
        bash_command="cd /opt/dbt && dbt docs generate --profiles-dir . --target prod",
    )

    airbyte_sync >> freshness >> build >> docs
