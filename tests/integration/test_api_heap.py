"""The API's process keeps what it built at start out of the garbage collector's full collections while it
serves (`gc.freeze` in the lifespan), and hands it back when it stops."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from api_support import with_key

from exchange import database
from exchange.api import create_api
from exchange.settings import ExchangeSettings


def test_the_startup_heap_is_frozen_while_the_api_serves(settings: ExchangeSettings, tmp_path: Path) -> None:
    database.migrate(settings.postgres)
    app = create_api(with_key(settings, tmp_path), relay=False)
    counts: list[int] = []

    async def serve() -> None:
        async with app.router.lifespan_context(app):
            counts.append(gc.get_freeze_count())
        counts.append(gc.get_freeze_count())

    asyncio.run(serve())
    assert counts[0] > 10_000  # the app, its models, the policy and the libraries
    assert counts[1] == 0
