"""`exchange process`: the faust processor."""

from __future__ import annotations

import argparse
from typing import Any

import faust

from exchange import admin
from exchange.settings import ExchangeSettings


def register(commands: Any) -> None:
    """Add the pipeline commands."""
    process = commands.add_parser("process", help="fold the dataset topics into profiles (faust)")
    process.set_defaults(run=_process)


def _process(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    from exchange.streams import create_app

    admin.ensure_topics(settings.kafka)
    settings.processor.datadir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    # The worker handles SIGTERM and SIGINT: it stops the agent, flushes and commits, then exits.
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
    return 0
