"""How a sync lands: one writer per configured stream, and STATE messages held until committed.

Sync modes:

* append, append_dedup: records are buffered and appended in batches (one load job each);
  at every STATE message the buffers are flushed and append_dedup tables keep only the row
  with the greatest cursor (then `_airbyte_extracted_at`) per primary key, before the state
  goes back to Airbyte.
* overwrite, and any mode whose minimum_generation_id equals its generation_id (Airbyte's
  "refresh and remove records"): records are kept (in memory) until the stream is complete,
  then replace the table in one load, so a failed sync leaves the previous table in place.
  A state that covers such a stream goes back once it is replaced.

A stream is complete at its COMPLETE stream status or, when the sync carries no stream
statuses at all (older sources and platforms), at the end of the input. Otherwise a stream
that did not complete (INCOMPLETE, or never reached by a failing source) is not replaced.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from airbyte_cdk.models import (
    AirbyteMessage,
    AirbyteRecordMessage,
    AirbyteStateType,
    AirbyteStreamStatus,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    FailureType,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from google.cloud import bigquery

from grader.dataset.raw import airbyte_record, airbyte_schema, stream_columns, to_ndjson
from grader.warehouse import append_table, deduplicate, load_table

logger = logging.getLogger("airbyte")

SUPPORTED_SYNC_MODES = (DestinationSyncMode.overwrite, DestinationSyncMode.append, DestinationSyncMode.append_dedup)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

StreamKey = tuple[str | None, str]  # (namespace, name), as records and states name a stream


def config_error(message: str) -> AirbyteTracedException:
    """An error the user fixes in the connection's settings; Airbyte shows `message` as it is."""
    return AirbyteTracedException(internal_message=message, message=message, failure_type=FailureType.config_error)


class StreamWriter:
    """One configured stream and its raw table: columns, buffer, and how rows land."""

    def __init__(self, client: bigquery.Client, configured: ConfiguredAirbyteStream, default_dataset: str,
                 batch_size: int):
        stream = configured.stream
        self.client, self.batch_size = client, batch_size
        self.table, self.dataset = stream.name, stream.namespace or default_dataset
        label = f"stream {stream.name!r}"
        for what, name in (("dataset", self.dataset), ("table", self.table)):
            if not _NAME.fullmatch(name):
                raise config_error(f"{label}: {what} name {name!r} is not a BigQuery identifier (letters, digits, _)")
        self.columns = stream_columns(stream.name, stream.json_schema)
        for column in self.columns:
            if not _NAME.fullmatch(column.name) or column.name.startswith("_airbyte_"):
                raise config_error(f"{label}: column {column.name!r} is not a BigQuery identifier or is reserved")
        self.schema = airbyte_schema(self.columns)
        mode = configured.destination_sync_mode
        if mode not in SUPPORTED_SYNC_MODES:
            raise config_error(f"{label}: destination sync mode {mode.value} is not supported; "
                               f"use {', '.join(m.value for m in SUPPORTED_SYNC_MODES)}")
        self.generation_id = configured.generation_id or 0
        self.sync_id = configured.sync_id or 0
        truncate = 0 < (configured.minimum_generation_id or 0) == self.generation_id
        self.replace = mode == DestinationSyncMode.overwrite or truncate
        self.key: list[str] = []
        self.latest_by = ["_airbyte_extracted_at"]
        if mode == DestinationSyncMode.append_dedup:
            self.key = self._top_level(configured.primary_key or stream.source_defined_primary_key or [], "primary key")
            if not self.key:
                raise config_error(f"{label}: incremental append + deduped needs a primary key")
            cursor = self._top_level([configured.cursor_field or stream.default_cursor_field or []], "cursor")
            self.latest_by = cursor + self.latest_by
        self.records: list[dict[str, Any]] = []
        self.received = 0
        self.status: AirbyteStreamStatus | None = None
        self.replaced = False
        self._appended = 0  # rows appended since the last commit

    def prepare(self) -> None:
        """An appending stream's table is created now, or found unable to take these rows before any arrive."""
        if not self.replace:
            append_table(self.client, self.dataset, self.table, self.schema, b"")

    @property
    def label(self) -> str:
        return f"{self.dataset}.{self.table}"

    def _top_level(self, paths: list[list[str]], what: str) -> list[str]:
        columns = {c.name: c.bq_type for c in self.columns}
        names = []
        for path in filter(None, paths):
            if len(path) != 1 or path[0] not in columns or columns[path[0]] == "JSON":
                raise config_error(f"stream {self.table!r}: {what} {path} must be a top-level, non-JSON column")
            names.append(path[0])
        return names

    def add(self, record: AirbyteRecordMessage) -> None:
        changes = [{"field": c.field, "change": c.change.value, "reason": c.reason.value}
                   for c in (record.meta.changes or ())] if record.meta else []
        self.records.append(airbyte_record(
            self.columns, record.data, raw_id=str(uuid.uuid4()),
            extracted_at=datetime.fromtimestamp(record.emitted_at / 1000, UTC),
            generation_id=self.generation_id, sync_id=self.sync_id, changes=changes))
        self.received += 1
        if not self.replace and len(self.records) >= self.batch_size:
            self._append()

    def _append(self) -> None:
        if self.records:
            self._appended += append_table(self.client, self.dataset, self.table, self.schema, to_ndjson(self.records))
            self.records.clear()

    def commit(self) -> None:
        """Append what is buffered and deduplicate: everything received is then in the table."""
        self._append()
        if not self._appended:
            return
        message = f"{self.label}: {self._appended} rows appended"
        if self.key:
            deleted = deduplicate(self.client, self.dataset, self.table, self.key, self.latest_by, "_airbyte_raw_id")
            message += f", {deleted} superseded rows removed (latest by {', '.join(self.latest_by)})"
        logger.info(message)
        self._appended = 0

    def replace_table(self) -> None:
        """Replace the table with the stream's records (replacing streams only, once complete)."""
        rows = load_table(self.client, self.dataset, self.table, self.schema, to_ndjson(self.records))
        self.records.clear()
        self.replaced = True
        if self.key:
            deduplicate(self.client, self.dataset, self.table, self.key, self.latest_by, "_airbyte_raw_id")
        logger.info(f"{self.label}: replaced with {rows} rows")


class Sync:
    """The writers of one `write` run and the STATE messages not yet committed, in arrival order."""

    def __init__(self, client: bigquery.Client, catalog: ConfiguredAirbyteCatalog, default_dataset: str,
                 batch_size: int):
        self.writers = {(c.stream.namespace, c.stream.name): StreamWriter(client, c, default_dataset, batch_size)
                        for c in catalog.streams}
        for dataset in sorted({w.dataset for w in self.writers.values()}):
            client.create_dataset(f"{client.project}.{dataset}", exists_ok=True)
        for writer in self.writers.values():
            writer.prepare()
        self.pending: deque[tuple[AirbyteMessage, set[StreamKey]]] = deque()
        self.statuses_seen = False

    def record(self, record: AirbyteRecordMessage) -> None:
        writer = self.writers.get((record.namespace, record.stream))
        if writer is None:
            raise config_error(f"a record of stream {record.namespace}.{record.stream}, not in the catalog")
        writer.add(record)

    def state(self, message: AirbyteMessage) -> Iterator[AirbyteMessage]:
        """Commit every appending stream; the state goes back once the replacing streams it covers are replaced."""
        for writer in self.writers.values():
            if not writer.replace:
                writer.commit()
        state = message.state
        if state.type == AirbyteStateType.STREAM:
            descriptor = state.stream.stream_descriptor
            keys = {(descriptor.namespace, descriptor.name)}
        else:  # GLOBAL, LEGACY: every stream that has begun
            keys = {k for k, w in self.writers.items() if w.received}
        self.pending.append((message, {k for k in keys if k in self.writers and self._waiting(self.writers[k])}))
        yield from self._release()

    def status(self, key: StreamKey, status: AirbyteStreamStatus) -> Iterator[AirbyteMessage]:
        self.statuses_seen = True
        writer = self.writers.get(key)
        if writer is None:
            return
        writer.status = status
        if status == AirbyteStreamStatus.COMPLETE:
            self._complete(key, writer)
            yield from self._release()

    def close(self) -> Iterator[AirbyteMessage]:
        """End of input: complete what can be completed, send back the states that are committed."""
        for key, writer in self.writers.items():
            complete = writer.status == AirbyteStreamStatus.COMPLETE or not self.statuses_seen
            if self._waiting(writer) and not complete:
                reported = writer.status.value if writer.status else "no status"
                logger.warning(f"{writer.label}: left as it was, the stream did not complete ({reported})")
            else:
                self._complete(key, writer)
        yield from self._release()
        if self.pending:
            logger.warning(f"{len(self.pending)} state message(s) not sent back: their streams did not complete")

    @staticmethod
    def _waiting(writer: StreamWriter) -> bool:
        return writer.replace and not writer.replaced

    def _complete(self, key: StreamKey, writer: StreamWriter) -> None:
        if self._waiting(writer):
            writer.replace_table()
        elif not writer.replace:
            writer.commit()
        for _, waiting in self.pending:
            waiting.discard(key)

    def _release(self) -> Iterator[AirbyteMessage]:
        while self.pending and not self.pending[0][1]:
            yield self.pending.popleft()[0]

