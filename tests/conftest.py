"""Shared fixtures. Tests that use `emulator` must be marked `slow`."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from grader.warehouse import EmbeddedEmulator

# A runner may start the suite with SIGINT ignored (a background job of a non-interactive shell
# does), and the graders it starts would inherit that: the tests that press Ctrl-C need it
# delivered. A handler here is reset to the default in every program these tests start.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedEmulator]:
    """One embedded BigQuery emulator for the whole session (≈2-3 s to start); tests that need
    a clean warehouse call grader.warehouse.prepare_datasets first."""
    cache = tmp_path_factory.mktemp("warehouse-cache")
    with EmbeddedEmulator(cache, cache / "bqemulator.log") as warehouse:
        yield warehouse
