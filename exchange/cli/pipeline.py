"""`exchange process`: the faust processor."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import faust
import uvloop

from exchange import admin
from exchange.gc_pacing import hold_full_collections
from exchange.settings import ExchangeSettings


def register(commands: Any) -> None:
    """Add the pipeline commands."""
    process = commands.add_parser("process", help="fold the dataset topics into profiles (faust)")
    process.set_defaults(run=_process)


def _process(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    from exchange.streams import create_app

    admin.ensure_topics(settings.kafka)
    settings.processor.datadir.mkdir(parents=True, exist_ok=True)
    # Before the app and its consumer thread make their loops: uvloop's call_soon, tasks and socket
    # writes cost a fraction of asyncio's, and faust runs several of each per event.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # Full garbage collections between batches, on the app's interval, not whenever CPython would.
    hold_full_collections()
    app = create_app(settings)
    # The worker handles SIGTERM and SIGINT: it stops the agent, flushes and commits, then exits.
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
    return 0
