"""The destination's protocol commands on the Airbyte CDK: spec, check and write."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from airbyte_cdk.destinations import Destination
from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteMessage,
    ConfiguredAirbyteCatalog,
    ConnectorSpecification,
    Status,
    TraceType,
    Type,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from google.api_core.exceptions import GoogleAPIError
from google.cloud import bigquery

from destination_bigquery_emulator.config import CONNECTION_SPECIFICATION, settings
from destination_bigquery_emulator.streams import SUPPORTED_SYNC_MODES, Sync
from grader.warehouse import WarehouseError, connect


class DestinationBigqueryEmulator(Destination):
    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(
            connectionSpecification=CONNECTION_SPECIFICATION,
            supportsIncremental=True,
            supported_destination_sync_modes=list(SUPPORTED_SYNC_MODES),
        )

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """Reach the emulator, create the dataset if missing, create and drop a probe table in it."""
        endpoint, project, dataset, _ = settings(config)
        try:
            client = connect(endpoint, project)
            client.create_dataset(f"{project}.{dataset}", exists_ok=True)
            probe = f"{project}.{dataset}._airbyte_check_{uuid.uuid4().hex[:12]}"
            client.create_table(bigquery.Table(probe, schema=[bigquery.SchemaField("id", "STRING")]))
            client.delete_table(probe)
        except (WarehouseError, GoogleAPIError) as exc:
            return AirbyteConnectionStatus(status=Status.FAILED, message=str(exc))
        return AirbyteConnectionStatus(status=Status.SUCCEEDED,
                                       message=f"{endpoint}: dataset {project}.{dataset} is writable")

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
        for message in messages:
            if message.type == Type.RECORD:
                sync.record(message.record)
            elif message.type == Type.STATE:
                yield from sync.state(message)
            elif message.type == Type.TRACE and message.trace.type == TraceType.STREAM_STATUS:
                descriptor = message.trace.stream_status.stream_descriptor
                yield from sync.status((descriptor.namespace, descriptor.name), message.trace.stream_status.status)
        yield from sync.close()
