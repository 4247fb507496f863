"""Entry point: `destination-bigquery-emulator spec | check --config F | write --config F --catalog F`."""

from __future__ import annotations

import io
import logging
import sys

from airbyte_cdk.logger import AirbyteLogFormatter

from destination_bigquery_emulator.destination import DestinationBigqueryEmulator


def main() -> None:
    # Logs as Airbyte LOG messages on stdout, line by line, in order with the messages `run` prints:
    # this replaces the CDK's root handler, whose buffer is flushed only by sources' entry point.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(AirbyteLogFormatter())
    logging.basicConfig(handlers=[handler], level=logging.INFO, force=True)
    DestinationBigqueryEmulator().run(sys.argv[1:])


if __name__ == "__main__":
    main()
