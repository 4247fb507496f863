"""The destination's settings: the connection specification Airbyte shows, and its defaults.

Kept apart from the CDK-based modules so that postgres_feed can use the defaults without
importing the CDK (seconds of start-up).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from raw_layer.schema import RAW_DATASET, RAW_PROJECT

DEFAULTS = {"endpoint": "http://bigquery-emulator:9050", "project_id": RAW_PROJECT, "dataset_id": RAW_DATASET,
            "batch_size": 10_000}

CONNECTION_SPECIFICATION = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "BigQuery Emulator Destination Spec",
    "type": "object",
    "required": ["endpoint"],
    "additionalProperties": True,
    "properties": {
        "endpoint": {
            "type": "string", "title": "Emulator endpoint", "order": 0, "default": DEFAULTS["endpoint"],
            "pattern": "^https?://[^/\\s]+/?$", "examples": [DEFAULTS["endpoint"], "http://localhost:9050"],
            "description": "REST endpoint of the BigQuery emulator, scheme included. Inside the exercise's "
                           "Docker network: http://bigquery-emulator:9050.",
        },
        "project_id": {
            "type": "string", "title": "Project ID", "order": 1, "default": DEFAULTS["project_id"],
            "description": "The emulator's project.",
        },
        "dataset_id": {
            "type": "string", "title": "Default dataset", "order": 2, "default": DEFAULTS["dataset_id"],
            "pattern": "^[A-Za-z0-9_]+$",
            "description": "Dataset for streams without a namespace (the connection's namespace setting "
                           "\"Destination default\"); created if missing.",
        },
        "batch_size": {
            "type": "integer", "title": "Batch size", "order": 3, "default": DEFAULTS["batch_size"], "minimum": 1,
            "description": "Records per load job for incremental streams.",
        },
    },
}


def settings(config: Mapping[str, Any]) -> tuple[str, str, str, int]:
    """(endpoint, project, dataset, batch size) from a config, the spec's defaults filling gaps."""
    merged = {**DEFAULTS, **config}
    return merged["endpoint"], merged["project_id"], merged["dataset_id"], int(merged["batch_size"])
