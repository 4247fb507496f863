"""An Airbyte destination for the exercise's BigQuery emulator.

Airbyte's own BigQuery destination cannot reach an emulator: it has no endpoint setting and
its Java client ignores BIGQUERY_EMULATOR_HOST. This destination, on the Airbyte Python CDK,
talks to the emulator's REST endpoint and writes the raw layout of the exercise contract §3
through raw_layer.airbyte, the same writer the grader's own raw load uses.
"""

__version__ = "0.1.0"
