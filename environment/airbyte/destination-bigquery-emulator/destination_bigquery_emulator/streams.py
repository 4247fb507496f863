"""How a sync lands without ever losing data: staging tables, and tables changed only at commit points.

Every stream's records go, in batches of `batch_size`, to a staging table of its own
(`_airbyte_tmp_<table>_<id>` in the stream's dataset), never straight into its table. A table
changes only at one of these commit points, each a single transaction on the warehouse:

* append, append_dedup: at a STATE message covering the stream (a STREAM state naming it, or a
  GLOBAL / LEGACY state once the stream has records) and at its COMPLETE stream status, the staged rows are added to the
  table; append_dedup tables then keep only the row with the greatest cursor (then
  `_airbyte_extracted_at`) per primary key. The state goes back to Airbyte after that.
* overwrite (and any mode whose minimum_generation_id equals its generation_id, Airbyte's
  "refresh and remove records"): the table is replaced by the staged rows only when the stream's
  completion is evidenced: its COMPLETE stream status, or, in a sync that carries no stream
  statuses at all (Airbyte 0.63 forwards none from custom connectors, and always ends the input
  as if all went well), a STATE covering the stream received after its last record, checked at
  the end of the input. A state covering such a stream goes back once the stream is replaced.

Everything else leaves tables as they were: a stream that received nothing (no record, state
or status) is untouched; an overwrite stream without evidence of completion (INCOMPLETE, or
cut off by a failing source) is untouched; records of an appending stream after its last
commit point are not added (Airbyte did not get their state back, so the next sync reads them
again). When the sync fails (malformed input, a warehouse error), it stops at once: nothing
after the last commit point reaches a table. Staging tables are dropped in every case.
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
from google.api_core.exceptions import GoogleAPIError
from google.cloud import bigquery
from raw_layer.airbyte import airbyte_record, airbyte_schema, stream_columns, to_ndjson
from raw_layer.bigquery import WarehouseError, append_table, deduplicate, load_table, query

logger = logging.getLogger("airbyte")

SUPPORTED_SYNC_MODES = (DestinationSyncMode.overwrite, DestinationSyncMode.append, DestinationSyncMode.append_dedup)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

StreamKey = tuple[str | None, str]  # (namespace, name), as records and states name a stream


def config_error(message: str) -> AirbyteTracedException:
    """An error the user fixes in the connection's settings; Airbyte shows `message` as it is."""
    return AirbyteTracedException(internal_message=message, message=message, failure_type=FailureType.config_error)


class StreamWriter:
    """One configured stream: its columns, its staging table, and how staged rows reach its table."""

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
        self.staging = f"_airbyte_tmp_{self.table}_{uuid.uuid4().hex[:8]}"
        self.records: list[dict[str, Any]] = []
        self.received = 0  # records of this sync
        self.staged = 0  # rows in the staging table, not yet committed
        self.touched = False  # any record, state or status for this stream
        self.state_after_last_record = False  # the evidence of completion when the sync has no statuses
        self.status: AirbyteStreamStatus | None = None
        self.replaced = False

    def prepare(self) -> None:
        """An appending stream's table is created now, or found unable to take these rows, before any arrive."""
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
        self.touched = True
        self.state_after_last_record = False
        if len(self.records) >= self.batch_size:
            self._stage()

    def _stage(self) -> None:
        """Buffered records into the staging table (created with the stream's schema on first use)."""
        if self.records:
            self.staged += append_table(self.client, self.dataset, self.staging, self.schema, to_ndjson(self.records))
            self.records.clear()

    def commit(self) -> None:
        """Appending streams: add what is staged to the table in one transaction, then deduplicate."""
        self._stage()
        if not self.staged:
            return
        columns = ", ".join(f"`{name}`" for name, _ in self.schema)
        _transaction(self.client, [
            f"INSERT INTO {self._id(self.table)} ({columns}) SELECT {columns} FROM {self._id(self.staging)}",
            f"DELETE FROM {self._id(self.staging)} WHERE TRUE"])
        message = f"{self.label}: {self.staged} rows appended"
        if self.key:
            deleted = deduplicate(self.client, self.dataset, self.table, self.key, self.latest_by, "_airbyte_raw_id")
            message += f", {deleted} superseded rows removed (latest by {', '.join(self.latest_by)})"
        logger.info(message)
        self.staged = 0

    def replace_table(self) -> None:
        """Replacing streams, once complete: the table becomes the staged rows.

        Same columns as before: one transaction (delete, insert), so the table is whole at every
        moment. New or changed columns: the table is recreated with the new schema and then
        filled in one transaction; only that first step can leave it empty on a failure.
        """
        self._stage()
        columns = ", ".join(f"`{name}`" for name, _ in self.schema)
        if self._schema(self.table) != dict(self.schema):
            load_table(self.client, self.dataset, self.table, self.schema, b"")
        fill = [f"DELETE FROM {self._id(self.table)} WHERE TRUE"]
        if self.staged:
            fill.append(f"INSERT INTO {self._id(self.table)} ({columns}) SELECT {columns} FROM {self._id(self.staging)}")
        _transaction(self.client, fill)
        rows = query(self.client, f"SELECT COUNT(*) AS n FROM {self._id(self.table)}")[0]["n"]
        if rows != self.staged:
            raise WarehouseError(f"{self.label}: {rows} rows after the replacement, {self.staged} staged")
        self.replaced = True
        if self.key:
            deduplicate(self.client, self.dataset, self.table, self.key, self.latest_by, "_airbyte_raw_id")
        logger.info(f"{self.label}: replaced with {rows} rows")
        self.staged = 0

    def drop_staging(self) -> None:
        """Remove the staging table (best effort: called on every exit, successful or not)."""
        self.records.clear()
        try:
            self.client.delete_table(f"{self.client.project}.{self.dataset}.{self.staging}", not_found_ok=True)
        except GoogleAPIError as exc:
            logger.warning(f"{self.label}: could not drop the staging table {self.staging}: {exc}")

    def _id(self, table: str) -> str:
        return f"`{self.client.project}.{self.dataset}.{table}`"

    def _schema(self, table: str) -> dict[str, str] | None:
        try:
            fields = self.client.get_table(f"{self.client.project}.{self.dataset}.{table}").schema
        except GoogleAPIError:
            return None
        return {f.name: _STANDARD_TYPES.get(f.field_type, f.field_type) for f in fields}


_STANDARD_TYPES = {"INTEGER": "INT64", "BOOLEAN": "BOOL", "FLOAT": "FLOAT64"}


def _transaction(client: bigquery.Client, statements: list[str]) -> None:
    """Run `statements` as one BigQuery transaction: all of them take effect, or none."""
    script = "BEGIN TRANSACTION;\n" + "".join(f"{s};\n" for s in statements) + "COMMIT TRANSACTION;"
    try:
        client.query(script).result()
    except GoogleAPIError as exc:
        raise WarehouseError(f"a transaction failed and was rolled back: {exc}") from exc


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
        """Commit the appending streams the state covers; it goes back once the replacing ones are replaced."""
        state = message.state
        if state.type == AirbyteStateType.STREAM:
            descriptor = state.stream.stream_descriptor
            keys = {(descriptor.namespace, descriptor.name)} & self.writers.keys()
        else:  # GLOBAL, LEGACY: every stream that has begun (it says nothing of streams not yet read)
            keys = {k for k, w in self.writers.items() if w.received}
        for key in keys:
            writer = self.writers[key]
            writer.touched = True
            writer.state_after_last_record = True
            if not writer.replace:
                writer.commit()
        self.pending.append((message, {k for k in keys if self._waiting(self.writers[k])}))
        yield from self._release()

    def status(self, key: StreamKey, status: AirbyteStreamStatus) -> Iterator[AirbyteMessage]:
        self.statuses_seen = True
        writer = self.writers.get(key)
        if writer is None:
            return
        writer.status = status
        writer.touched = True
        if status == AirbyteStreamStatus.COMPLETE:
            self._complete(key, writer)
            yield from self._release()

    def close(self) -> Iterator[AirbyteMessage]:
        """End of input: replace the streams whose completion is evidenced, send back committed states."""
        for key, writer in self.writers.items():
            if not writer.touched:
                logger.info(f"{writer.label}: left as it was, the stream received nothing")
            elif self._waiting(writer):
                if self.statuses_seen or not writer.state_after_last_record:
                    reported = writer.status.value if writer.status else "no status"
                    evidence = "" if self.statuses_seen else " and no state after its last record"
                    logger.warning(f"{writer.label}: left as it was, the stream's completion is not evidenced "
                                   f"({reported}{evidence}); {writer.received} records not applied")
                else:
                    self._complete(key, writer)
            elif not writer.replace and (writer.staged or writer.records):
                logger.warning(f"{writer.label}: {writer.staged + len(writer.records)} records after the last state "
                               f"not appended (their state never came; the next sync reads them again)")
        yield from self._release()
        if self.pending:
            logger.warning(f"{len(self.pending)} state message(s) not sent back: their streams did not complete")

    def drop_staging(self) -> None:
        for writer in self.writers.values():
            writer.drop_staging()

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
