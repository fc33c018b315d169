"""The lean path of `POST /v1/verifications` and `POST /v1/proofs`: the common request served below
FastAPI's layers.

A verification or a proof is a cheap core (a profile read, cached facts, a signature, an audit append)
inside FastAPI's layers: routing, dependency solving, request validation, response validation and the
exception middleware cost about as much as the core itself. `LeanRoutes` sits just inside
`RequestMetrics`, in front of the whole FastAPI app (exchange.api.app.ExchangeApi), and answers the
common request directly: a JSON body the route's request model
accepts (`model_validate_json`, in Rust), a caller the same key or certificate lookup knows
(`deps.identify`), then the very function the FastAPI route runs (`verifications.answer`,
`proofs.issue`: policy, consent, facts, audit), its answer serialised as FastAPI serialises a response
model and its exceptions answered by the app's own exception handlers. An exception no handler takes
(or a handler's own) is answered by the same `ServerErrorMiddleware` FastAPI puts outermost (a 500,
then raised on to the server); FastAPI's other outer layers do nothing for these requests (telemetry
is off, and the body size limit is enforced here: a body over it goes FastAPI's way).

Anything else is handed, untouched and with its body replayed, to FastAPI: a body that does not
validate (FastAPI's 422, with its error shape), an unknown caller (audited, then 401), another content
type, a client gone mid-body, a body over the app's `max_body_size` (declared, or found so as it is
read: FastAPI's 413, audited). Nothing observable happens before that hand-over, so FastAPI answers as
if the lean path did not exist. The routes stay declared in FastAPI, so the OpenAPI description, the
metrics' route label and the handlers' `scope["route"]` are the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.api.context import Services
from exchange.api.models.proofs import ProofRequest, ProofResponse
from exchange.api.models.verifications import VerificationRequest, VerificationResponse
from exchange.api.routes import proofs, verifications
from exchange.api.routes.deps import identify
from exchange.policy import Caller

Handler = Callable[[Request, Exception], Awaitable[Response]]
_JSON = b"application/json"


@dataclass(frozen=True)
class Lean:
    """A FastAPI POST route taking a JSON body model and an authenticated caller, and the function it runs."""

    path: str
    name: str
    router: APIRouter
    request: type[BaseModel]
    answer: Callable[[Any, Caller, Services], Awaitable[BaseModel]]
    # FastAPI serialises a response model with the model's TypeAdapter: `dump_json(value, by_alias=True)`.
    response: TypeAdapter[Any]
    route: list[BaseRoute] = field(default_factory=list)  # the route object, found once

    def route_object(self) -> BaseRoute:
        """The route FastAPI's router puts in scope["route"] for this path (the metrics' label, the
        storage handler's log line)."""
        if not self.route:
            found = [
                route
                for route in self.router.routes
                if getattr(route, "path", None) == self.path and getattr(route, "name", None) == self.name
            ]
            if len(found) != 1:
                raise LookupError(f"no single route {self.name} at {self.path}")
            self.route.append(found[0])
        return self.route[0]


LEAN = (
    Lean(
        verifications.ROUTE,
        verifications.NAME,
        verifications.router,
        VerificationRequest,
        verifications.answer,
        TypeAdapter(VerificationResponse),
    ),
    Lean(proofs.PROOFS, proofs.ISSUE, proofs.router, ProofRequest, proofs.issue, TypeAdapter(ProofResponse)),
)


class LeanRoutes:
    """ASGI middleware answering the `LEAN` routes itself when it can (see the module)."""

    def __init__(self, app: ASGIApp, api: FastAPI, routes: tuple[Lean, ...] = LEAN) -> None:
        self.app = app
        self._api = api
        self._routes = {lean.path: lean for lean in routes}
        max_body: int | None = getattr(api, "max_body_size", None)
        self._max_body = max_body
        # FastAPI's outermost layer, as FastAPI builds it (`build_middleware_stack`), around the answers
        # given here: a 500 for an exception nothing handled, then raised on.
        handlers = api.exception_handlers
        self._guarded = ServerErrorMiddleware(
            self._answer_accepted,
            handler=handlers.get(500, handlers.get(Exception)),
            debug=getattr(api, "debug", False),
        )
        for lean in routes:
            lean.route_object()  # a route renamed or moved fails here, not on a request
        tls_header = api.state.services.settings.api.tls_subject_header
        self._tls_header = tls_header.lower().encode("latin-1") if tls_header else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lean = (
            self._routes.get(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path")
            else None
        )
        if lean is None:
            await self.app(scope, receive, send)
        else:
            await self._answer(lean, scope, receive, send)

    async def _answer(self, lean: Lean, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._max_body
        if limit is not None and _declared_length(scope) > limit:  # FastAPI refuses it unread
            await self.app(scope, receive, send)
            return
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: FastAPI's path says what then
                await self.app(scope, receive, send)
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if limit is not None and size > limit:  # longer than declared, or undeclared: FastAPI refuses
                await self.app(scope, _replaying(b"".join(chunks), receive, more_body=more), send)
                return
            if not more:
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        services: Services = self._api.state.services
        accepted = self._accepted(lean, scope, body, services)
        if accepted is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        scope["app"] = self._api  # as Starlette sets it: the handlers' `request.app`
        scope["route"] = lean.route_object()
        scope["exchange.lean"] = (lean, *accepted)
        await self._guarded(scope, receive, send)

    async def _answer_accepted(self, scope: Scope, receive: Receive, send: Send) -> None:
        lean, request, caller = scope.pop("exchange.lean")
        services: Services = self._api.state.services
        try:
            answered = await lean.answer(request, caller, services)
        except Exception as exc:
            handler = _handler(self._api.exception_handlers, exc)
            if handler is None:
                raise  # as FastAPI's path: ServerErrorMiddleware answers 500
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)
            return
        content = lean.response.dump_json(answered, by_alias=True)
        headers = [(b"content-length", str(len(content)).encode("latin-1")), (b"content-type", _JSON)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _accepted(
        self, lean: Lean, scope: Scope, body: bytes, services: Services
    ) -> tuple[BaseModel, Caller] | None:
        """The validated body and the caller, or None when FastAPI's path is to answer."""
        content_type = key = tls_subject = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value if content_type is None else content_type
            elif name == b"x-api-key":
                key = value if key is None else key
            elif name == self._tls_header:
                tls_subject = value if tls_subject is None else tls_subject
        if content_type != _JSON or not body:
            return None
        caller = identify(
            services,
            None if tls_subject is None else tls_subject.decode("latin-1"),
            None if key is None else key.decode("latin-1"),
        )
        if caller is None:
            return None
        try:
            return lean.request.model_validate_json(body), caller
        except ValidationError:
            return None


def _handler(handlers: Mapping[Any, Callable[..., Any]], exc: Exception) -> Handler | None:
    """The app's handler of `exc`, looked up as Starlette's exception middleware does (by its MRO)."""
    for kind in type(exc).__mro__:
        if kind in handlers:
            found: Handler = handlers[kind]
            return found
    return None


def _declared_length(scope: Scope) -> int:
    """The request's Content-Length, or -1 when it declares none (or none that is a number)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return -1


def _replaying(body: bytes, receive: Receive, *, more_body: bool = False) -> Receive:
    """`receive` with the body already read handed out again first (`more_body`: and the rest after)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": more_body}

    return replay
