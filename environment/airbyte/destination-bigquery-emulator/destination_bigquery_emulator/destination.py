"""The destination's protocol commands on the Airbyte CDK: spec, check and write.

Input is read strictly: a line that is not an Airbyte message fails the sync with its line
number (the CDK would skip it, and an overwrite would then replace a table with what was left).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

import orjson

from airbyte_cdk.destinations import Destination
from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteMessageSerializer,
    ConfiguredAirbyteCatalog,
    ConnectorSpecification,
    FailureType,
    Status,
    TraceType,
    Type,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from google.api_core.exceptions import GoogleAPIError
from google.cloud import bigquery
from raw_layer.bigquery import WarehouseError, connect, load_table

from destination_bigquery_emulator.config import CONNECTION_SPECIFICATION, settings
from destination_bigquery_emulator.streams import SUPPORTED_SYNC_MODES, Sync


class DestinationBigqueryEmulator(Destination):
    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(
            connectionSpecification=CONNECTION_SPECIFICATION,
            supportsIncremental=True,
            supported_destination_sync_modes=list(SUPPORTED_SYNC_MODES),
        )

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """Reach the emulator, create the dataset if missing, load a probe table with a load job and drop it.

        A real load job, as `write` runs them: an emulator whose upload URL names its own bind
        address (0.0.0.0) instead of the host the request used fails here, not in the first sync.
        """
        endpoint, project, dataset, _ = settings(config)
        probe = f"_airbyte_check_{uuid.uuid4().hex[:12]}"
        try:
            client = connect(endpoint, project)
            client.create_dataset(f"{project}.{dataset}", exists_ok=True)
            try:
                load_table(client, dataset, probe, [("id", "STRING")], b'{"id": "probe"}\n')
            finally:
                client.delete_table(f"{project}.{dataset}.{probe}", not_found_ok=True)
        except (WarehouseError, GoogleAPIError) as exc:
            return AirbyteConnectionStatus(status=Status.FAILED, message=str(exc))
        return AirbyteConnectionStatus(status=Status.SUCCEEDED,
                                       message=f"{endpoint}: dataset {project}.{dataset} is writable")

    def _parse_input_stream(self, input_stream: TextIO) -> Iterator[AirbyteMessage]:
        """Airbyte messages from stdin, one per line; anything else stops the sync naming the line."""
        for number, line in enumerate(input_stream, start=1):
            if not line.strip():
                continue
            yield parse_message(line, number)

    def write(self, config: Mapping[str, Any], configured_catalog: ConfiguredAirbyteCatalog,
              input_messages: Iterable[AirbyteMessage]) -> Iterable[AirbyteMessage]:
        endpoint, project, dataset, batch_size = settings(config)
        try:
            yield from self._write(connect(endpoint, project), configured_catalog, input_messages, dataset, batch_size)
        except WarehouseError as exc:  # Airbyte shows the message itself, not "something went wrong"
            raise AirbyteTracedException(internal_message=str(exc), message=str(exc), exception=exc) from exc

    @staticmethod
    def _write(client: bigquery.Client, catalog: ConfiguredAirbyteCatalog, messages: Iterable[AirbyteMessage],
               dataset: str, batch_size: int) -> Iterator[AirbyteMessage]:
        sync = Sync(client, catalog, dataset, batch_size)
        try:
            for message in messages:
                if message.type == Type.RECORD:
                    sync.record(message.record)
                elif message.type == Type.STATE:
                    yield from sync.state(message)
                elif message.type == Type.TRACE and message.trace.type == TraceType.STREAM_STATUS:
                    descriptor = message.trace.stream_status.stream_descriptor
                    yield from sync.status((descriptor.namespace, descriptor.name), message.trace.stream_status.status)
            yield from sync.close()
        finally:
            sync.drop_staging()


def malformed_input(message: str) -> AirbyteTracedException:
    """The sync fails with `message`; no table changes after the last commit point."""
    text = f"{message}. The sync stopped there; tables are as they were at the last committed state."
    return AirbyteTracedException(internal_message=text, message=text, failure_type=FailureType.system_error)


def parse_message(line: str, number: int) -> AirbyteMessage:
    """One input line as an Airbyte message, or an error naming the line and what is wrong with it."""
    excerpt = line.strip()[:200]
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise malformed_input(f"input line {number} is not JSON ({exc}): {excerpt!r}") from None
    if not isinstance(data, dict) or "type" not in data:
        raise malformed_input(f"input line {number} is not an Airbyte message (no \"type\"): {excerpt!r}")
    if data["type"] == "RECORD":
        record = data.get("record")
        if not isinstance(record, dict):
            raise malformed_input(f"input line {number}: a RECORD message without its \"record\" object")
        stream = record.get("stream", "?")
        if record.get("emitted_at") is None:
            raise malformed_input(f"input line {number}: the RECORD of stream {stream!r} has no emitted_at (the "
                                  f"time the source read it, epoch milliseconds), which becomes "
                                  f"_airbyte_extracted_at")
        if not isinstance(record.get("emitted_at"), (int, float)):
            raise malformed_input(f"input line {number}: the RECORD of stream {stream!r} has emitted_at "
                                  f"{record['emitted_at']!r}, not epoch milliseconds")
    try:
        return AirbyteMessageSerializer.load(data)
    except Exception as exc:  # noqa: BLE001 — the serializer's errors vary; the line and reason are what matter
        raise malformed_input(f"input line {number} is not a valid {data['type']} message ({exc}): "
                              f"{excerpt!r}") from None
