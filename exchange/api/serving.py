"""How `exchange api` is served by uvicorn (and the bench's baseline with it, so they compare fairly)."""

from __future__ import annotations

import importlib.util
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
