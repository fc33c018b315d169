"""How `exchange api` is served by uvicorn (and the bench's baseline with it, so they compare fairly)."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
from collections.abc import Iterator
from typing import Any

from exchange.settings import ExchangeSettings


def server_options(settings: ExchangeSettings) -> dict[str, Any]:
    """uvicorn's options: uvloop and httptools when installed (they are dependencies; the fallbacks keep
    a bare install serving), no access log, warnings only."""
    return {
        "host": settings.api.host,
        "port": settings.api.port,
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
        # No access log: request paths can hold a citizen ID, and identifiers never reach the logs.
        "access_log": False,
        "log_level": "warning",
    }


# The garbage collector's first threshold while a server serves (`serving_heap`).
YOUNG_COLLECTION_AFTER = 10_000


@contextlib.contextmanager
def serving_heap() -> Iterator[None]:
    """The garbage collector as a server runs it, for the lifespan of the API (and the bench's baseline).

    What is built by the time it serves (the app, its routes and models, the policy, the libraries:
    some 100,000 objects) lives as long as the process: frozen, the collector stops walking it on
    every full collection (each one cost ~0.1 s of a busy API's CPU, ~3 % in all). A request's objects
    are freed by their reference counts, not by the collector: it runs after 10,000 net new container
    objects rather than 700 (from ~100 young collections a second to a few a minute). Both are undone
    when the block ends.
    """
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
