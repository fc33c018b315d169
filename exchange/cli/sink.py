"""`exchange sink [--until-idle]`: dataset records, profiles and profile history into PostgreSQL."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from consumers.sink import Sink, SinkSummary
from exchange.cli.signals import stop_on_signals
from exchange.settings import ExchangeSettings
from monitoring.serve import start_metrics_server

_console = Console()
_log = logging.getLogger("exchange.sink")


def register(commands: Any) -> None:
    """Add the sink command."""
    sink = commands.add_parser(
        "sink", help="write records, profiles and profile history to PostgreSQL, exactly once"
    )
    sink.add_argument(
        "--until-idle",
        action="store_true",
        help="stop once every assigned partition is read to its end (rebuilds, tests)",
    )
    sink.set_defaults(run=_sink)
    commands.add_parser(
        "rebuild", help="rebuild the PostgreSQL views from the topics (stop the live sink first)"
    ).set_defaults(run=_rebuild)


class _Progress:
    """A log line every few seconds: rows written and the rate."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last = self.started

    def __call__(self, summary: SinkSummary) -> None:
        now = time.monotonic()
        if now - self.last >= 5:
            self.last = now
            _log.info(
                "%s rows in %s batches (%s rows/s)",
                f"{summary.total:,}",
                f"{summary.batches:,}",
                f"{summary.total / max(now - self.started, 1e-9):,.0f}",
            )


def _rebuild(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    from consumers.rebuild import rebuild

    _print(rebuild(settings))
    return 0


def _sink(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    stop = stop_on_signals()
    start_metrics_server(settings.metrics_port)
    _print(Sink(settings, progress=_Progress()).run(stop, until_idle=args.until_idle))
    return 0


def _print(summary: SinkSummary) -> None:
    table = Table("table", "rows", title=f"{summary.total / max(summary.seconds, 1e-9):,.0f} rows/s")
    for name, rows in sorted(summary.rows.items()):
        table.add_row(name, f"{rows:,}")
    table.add_row("batches", f"{summary.batches:,}")
    if summary.conflicts:
        table.add_row("batches retried after an offset conflict", f"{summary.conflicts:,}")
    _console.print(table)
