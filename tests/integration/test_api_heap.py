"""The API's process keeps what it built at start out of the garbage collector's full collections while it
serves (`gc.freeze` in the lifespan) and collects young objects less often, and restores both when it
stops; the bench's bare baseline does the same."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from api_support import with_key

from bench.bare_api import create_app as create_bare_app
from exchange import database
from exchange.api import create_api
from exchange.api.serving import YOUNG_COLLECTION_AFTER
from exchange.settings import ExchangeSettings


def test_the_startup_heap_is_frozen_and_young_objects_collected_less_often_while_serving(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    database.migrate(settings.postgres)
    app = create_api(with_key(settings, tmp_path), relay=False)
    counts: list[int] = []
    thresholds = [gc.get_threshold()]

    async def serve() -> None:
        async with app.router.lifespan_context(app):
            counts.append(gc.get_freeze_count())
            thresholds.append(gc.get_threshold())
        counts.append(gc.get_freeze_count())
        thresholds.append(gc.get_threshold())

    asyncio.run(serve())
    assert counts[0] > 10_000  # the app, its models, the policy and the libraries
    assert counts[1] == 0
    assert thresholds[1] == (10_000, *thresholds[0][1:])
    assert thresholds[2] == thresholds[0]


def test_the_bench_baseline_runs_its_garbage_collector_as_the_api_does(settings: ExchangeSettings) -> None:
    # A baseline left with the default collector would be tuned differently from what it is compared to.
    database.migrate(settings.postgres)
    app = create_bare_app(settings)
    seen: list[tuple[int, tuple[int, ...]]] = []

    async def serve() -> None:
        async with app.router.lifespan_context(app):
            seen.append((gc.get_freeze_count(), gc.get_threshold()))

    before = gc.get_threshold()
    asyncio.run(serve())
    assert seen[0][0] > 1_000 and seen[0][1] == (YOUNG_COLLECTION_AFTER, *before[1:])
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
