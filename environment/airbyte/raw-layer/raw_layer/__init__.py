"""The exercise's raw layer: what the Airbyte destination writes into `raw` and the grader loads.

One source for both: the source schema and its BigQuery types (`schema`), money in cents
(`money`), the Airbyte destinations-v2 table shape (`airbyte`) and the few load, append,
deduplicate and query calls they need against the BigQuery emulator (`bigquery`). It lives
here, beside the connector, because this folder must build its images on its own; the grader
installs the same folder.
"""
