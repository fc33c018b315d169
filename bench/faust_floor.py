"""The processor's ceiling, for `exchange bench pipeline`: faust alone, delivering the dataset topics in
the processor's batches to an agent that does nothing with them.

The app is the processor's own (`exchange.streams.source_app`: its settings, its consumer, its source
channel, uvloop), with an agent that takes the same batches (`take_events`, the same size and time)
and only counts them: no decoding, no fold, no table, nothing produced. Whatever rate it reaches is
the most the processor could reach with a fold that cost nothing.

Run as `python -m bench.faust_floor EVENTS RESULT` with the bench's `EXCHANGE_*` environment: it reads
until it has taken EVENTS events, writes its timing to RESULT as JSON and exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import faust
import uvloop

from exchange.settings import ExchangeSettings, load_settings
from exchange.streams import source_app


def create_floor_app(settings: ExchangeSettings, events: int, result: Path) -> faust.App:
    """The processor's app with a counting agent; it writes `result` and exits once `events` are taken."""
    app, sources = source_app(settings)
    processor = settings.processor

    @app.agent(sources, name="floor")
    async def floor(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        batches = cast(faust.Stream[bytes], stream).take_events(
            processor.batch_events, within=processor.batch_seconds
        )
        taken = 0
        first: tuple[float, int] | None = None
        async for batch in batches:
            taken += len(batch)
            if first is None:
                first = (time.perf_counter(), taken)
            if taken >= events:
                seconds = time.perf_counter() - first[0]
                result.write_text(json.dumps({"taken": taken, "first_batch": first[1], "seconds": seconds}))
                os._exit(0)  # the measurement is done: no commit, no graceful stop to wait for
            yield None

    return app


def main() -> None:
    events, result = int(sys.argv[1]), Path(sys.argv[2])
    settings = load_settings()
    settings.processor.datadir.mkdir(parents=True, exist_ok=True)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = create_floor_app(settings, events, result)
    faust.Worker(app, loglevel=settings.log_level, quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
