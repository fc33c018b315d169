"""`create_api(settings)`: the FastAPI app of the exchange. No module-level app: build it per process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from exchange.api import relay_process
from exchange.api.auditing import UNAUTHENTICATED, Audit, record
from exchange.api.context import Services
from exchange.api.exceptions import ApiError, InvalidRequestError, RefusedError, StorageUnavailableError
from exchange.api.lean import LeanRoutes
from exchange.api.metrics import RequestMetrics
from exchange.api.models.common import RETRY_AFTER_SECONDS
from exchange.api.routes import applications, proofs, subjects, verifications
from exchange.api.routes.deps import identify
from exchange.api.serving import serving_heap
from exchange.api.signing import load_signer
from exchange.api.storage.policies import archive_policy
from exchange.api.storage.pool import create_pool, transaction
from exchange.exceptions import StorageError
from exchange.policy import load_policy
from exchange.settings import ExchangeSettings

_log = logging.getLogger("exchange.api")

DESCRIPTION = """
The 数据跑腿 Exchange API for approval services: yes/no verifications, signed electronic proofs
(电子证明), granted profile fields (also as of an earlier instant) and automated decisions (秒批).

Every request names a purpose (事项) and is allowed only as the caller's grants in the policy files
say (deny by default; a refusal is 403 with the missing grant); every request is written to the
hash-chained audit log (电子监察). Authenticate with `X-API-Key`; deployments use mutual TLS.
"""


def _handlers(app: FastAPI, services: Services) -> None:
    @app.exception_handler(RefusedError)
    async def refused(request: Request, exc: RefusedError) -> JSONResponse:
        body = {"error": exc.code, "reason": exc.reason, "message": exc.message}
        return JSONResponse({**body, "policy_version": services.policy.version}, status_code=exc.status)

    @app.exception_handler(InvalidRequestError)
    async def invalid(request: Request, exc: InvalidRequestError) -> JSONResponse:
        detail = [{"loc": list(exc.location), "msg": exc.message, "type": exc.code}]
        return JSONResponse({"detail": detail}, status_code=exc.status)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "APIKey"} if exc.status == 401 else None
        return JSONResponse(
            {"error": exc.code, "message": exc.message}, status_code=exc.status, headers=headers
        )

    @app.exception_handler(StorageUnavailableError)
    async def unavailable(request: Request, exc: StorageUnavailableError) -> JSONResponse:
        _log.warning("storage unavailable: %s", type(exc.__cause__).__name__)
        return JSONResponse(
            {"error": "unavailable", "message": "the exchange's database is unavailable"},
            503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(StorageError)
    async def storage(request: Request, exc: StorageError) -> JSONResponse:
        _log.error("storage error on %s", request.scope.get("route") and request.scope["route"].path)
        return JSONResponse({"error": "internal", "message": "the exchange could not answer"}, 500)

    async def refused_unread(
        request: Request, status: int, reason: str, asked: dict[str, Any]
    ) -> Response | None:
        """Audit a request refused before any handler read it (a body or parameters that do not
        validate, no such route or method): by the caller its credentials name, the route's template
        (never the path itself: it may hold an ID) and what was wrong, never the values sent. None
        once appended; the database's answer (503, 500) when the entry cannot be."""
        route = request.scope.get("route")
        header = services.settings.api.tls_subject_header
        found = identify(
            services, request.headers.get(header) if header else None, request.headers.get("X-API-Key")
        )
        audit = Audit(
            UNAUTHENTICATED if found is None else found.code,
            getattr(route, "name", "unrouted"),
            None,
            {"method": request.method, "route": getattr(route, "path", None), **asked},
            response={"status": status},
        )
        try:
            await record(services, audit, "refused", reason)
        except StorageUnavailableError as exc:
            return await unavailable(request, exc)
        except StorageError as exc:
            return await storage(request, exc)
        return None

    @app.exception_handler(RequestValidationError)
    async def unprocessable(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own 422, except for what the body held that its answer cannot render (each was a
        # 500): a NaN or Infinity (Python's JSON parser takes them) is named as a string, and bytes
        # that are not UTF-8 (each bad byte as U+FFFD) or a lone surrogate (an escape such as "\ud800",
        # as "?") are replaced.
        errors = exc.errors()
        wrong = [{"loc": list(error.get("loc", ())), "type": error.get("type")} for error in errors]
        unread = await refused_unread(request, 422, "invalid_request", {"errors": wrong})
        return unread or JSONResponse(
            {"detail": _renderable(jsonable_encoder(_text(errors)))}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI's own answer (a body it cannot read, no such route or method), audited first.
        reason = _HTTP_REASONS.get(exc.status_code, f"http_{exc.status_code}")
        unread = await refused_unread(request, exc.status_code, reason, {})
        return unread or await http_exception_handler(request, exc)


async def _metrics(request: Request) -> Response:
    """This process's Prometheus metrics, for operators' scrapes; not audited (no subject, no caller)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


_HTTP_REASONS = {
    400: "invalid_request",
    404: "no_such_route",
    405: "method_not_allowed",
    413: "body_too_large",
}


def _renderable(value: Any) -> Any:
    """`value` with every float that is not finite as its name ("nan", "inf", "-inf") and every string
    encodable as UTF-8 (a lone surrogate replaced by "?")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(value) else value
    if isinstance(value, dict):
        return {_renderable(key): _renderable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_renderable(item) for item in value]
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _text(value: Any) -> Any:
    """`value` with bytes decoded as UTF-8, what is not UTF-8 replaced (FastAPI's encoder raised)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict):
        return {key: _text(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_text(item) for item in value]
    return value


class ExchangeApi(FastAPI):
    """FastAPI behind the exchange's own outer layers: `RequestMetrics` first, then the lean path.

    Both sit in front of FastAPI's whole stack rather than among its middleware: the lean path then
    answers its requests without passing through FastAPI's and Starlette's outer layers (each one a
    frame every resumption of the request's coroutine passes through again), and takes their error
    behaviour with it (exchange.api.lean). Every other request goes to FastAPI unchanged.
    """

    front: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.front(scope, receive, send)

    def fastapi(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """FastAPI's own handling of a request (what `front` hands a request it does not answer to)."""
        return super().__call__(scope, receive, send)


def create_api(settings: ExchangeSettings, *, relay: bool = True, lean: bool = True) -> ExchangeApi:
    """The app: policy and signing key loaded now; the pool opened (and the audit relay's process
    started) by the lifespan. `lean`: verifications take the lean path (exchange.api.lean) where it
    answers as FastAPI would; without it every request goes through FastAPI (the tests compare both)."""
    policy = load_policy(settings.api.policy_dir)
    services = Services(settings, policy, create_pool(settings), load_signer(settings.api))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.open()
        async with transaction(services.pool) as conn:
            await archive_policy(conn, policy)
        stop = asyncio.Event()
        # The relay runs in a child process (exchange.api.relay_process), off this event loop.
        relaying = asyncio.create_task(relay_process.supervise(settings, stop)) if relay else None
        try:
            with serving_heap():
                yield
        finally:
            stop.set()
            if relaying is not None:
                await relaying
            await services.close()

    app = ExchangeApi(
        title="数据跑腿 Exchange API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # The exchange's metrics are Prometheus (/metrics); with OpenTelemetry off FastAPI skips asking
        # for its providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # A path with a trailing slash is a 404 (audited), not a redirect no audit entry would record.
        redirect_slashes=False,
        # Past it a 413 (StarletteHTTPException, audited by `http_error`); the lean path hands such a
        # body to FastAPI's path.
        max_body_size=settings.api.max_body_bytes,
    )
    app.state.services = services
    for module in (verifications, proofs, subjects, applications):
        app.include_router(module.router)
    _handlers(app, services)
    # A route, not a mount: a mount matches "/metrics/…" only, and with redirect_slashes off the
    # "/metrics" Prometheus scrapes was a 404 (each audited).
    app.add_route("/metrics", _metrics, include_in_schema=False)
    # Metrics outermost: the lean path's answers are measured as FastAPI's are.
    app.front = RequestMetrics(LeanRoutes(app.fastapi, api=app) if lean else app.fastapi)
    return app
