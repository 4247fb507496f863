"""Apply our changes to bqemulator before it starts (imported by `python -m exercise_warehouse`)."""

from __future__ import annotations

import os
import signal

_applied = False


def apply() -> None:
    """Patch bqemulator in this process: lockdown, host refusal, translation fixes, query interrupt.

    SIGUSR1 interrupts whatever the engine is running (the grader sends it when a dbt command
    ran out of time, so the queries that follow do not wait behind an abandoned one).
    """
    global _applied
    if _applied:
        return
    _applied = True
    from bqemulator.domain.errors import InvalidQueryError
    from bqemulator.domain.result import Err
    from bqemulator.sql.translator import SQLTranslator
    from bqemulator.storage.engine import DuckDBEngine

    from exercise_warehouse import lockdown, translation

    original_start = DuckDBEngine.start

    async def start(self: DuckDBEngine) -> None:
        await original_start(self)
        lockdown.lock_connection(self.connection, os.environ.get("EXERCISE_WAREHOUSE_ALLOWED_DIR"),
                                 os.environ.get("EXERCISE_WAREHOUSE_MEMORY_LIMIT"))
        signal.signal(signal.SIGUSR1, lambda _signum, _frame: _interrupt(self))

    original_translate = SQLTranslator.translate

    def translate(self: SQLTranslator, bq_sql: str, **kwargs):
        reason = lockdown.refusal(bq_sql)
        if reason is not None:
            return Err(InvalidQueryError(reason))
        return original_translate(self, translation.before(bq_sql), **kwargs)

    DuckDBEngine.start = start  # type: ignore[method-assign]
    SQLTranslator.translate = translate  # type: ignore[method-assign]
    translation.install()


def _interrupt(engine) -> None:
    connection = getattr(engine, "_connection", None)
    if connection is not None:
        connection.interrupt()
