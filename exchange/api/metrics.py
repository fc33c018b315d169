"""Request latency per route template: an ASGI middleware (the route is known only after routing)."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitoring import metrics


class RequestMetrics:
    """Observes `exchange_api_request_seconds{route,method,status}`; `route` is the path template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The histogram's child per label set, looked up once: `labels()` validates and locks every call.
        self._children: dict[tuple[str, str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - started
            labels = (_template(scope), scope["method"], str(status))
            child = self._children.get(labels)
            if child is None:
                child = metrics.API_REQUEST_SECONDS.labels(
                    route=labels[0], method=labels[1], status=labels[2]
                )
                self._children[labels] = child
            child.observe(elapsed)


def _template(scope: Scope) -> str:
    # Never the raw path: it can hold a citizen ID. Unmatched paths share one label.
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "/metrics" if scope.get("path") == "/metrics" else "unmatched"
