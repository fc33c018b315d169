"""Dependencies every route uses: the process's services and the authenticated caller.

An authenticated route takes one dependency, `AuthDep`, that yields both: FastAPI resolves each
dependency on every request (a nested resolution, a cache key, a call), so one costs less than two.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from exchange.api.auditing import UNAUTHENTICATED, Audit, record
from exchange.api.context import Services
from exchange.api.exceptions import NotAuthenticatedError
from exchange.policy import Caller
from monitoring import metrics

_api_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="The caller's API key (local use); in deployment, mutual TLS identifies the caller.",
)


async def services(request: Request) -> Services:
    """The services `create_api` built for this process (async: FastAPI runs a sync dependency in a
    worker thread, a hand-off per request)."""
    return _services(request)


def _services(request: Request) -> Services:
    built: Services = request.app.state.services
    return built


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The caller of a request and the services to answer it with."""

    caller: Caller
    services: Services


async def authenticated(
    request: Request, key: Annotated[str | None, Security(_api_key)] = None
) -> Authenticated:
    """The authenticated caller (see `caller`) with the process's services."""
    return Authenticated(await caller(request, key), _services(request))


async def caller(request: Request, key: Annotated[str | None, Security(_api_key)] = None) -> Caller:
    """The caller the proxy's verified certificate subject (mutual TLS, when configured) or the API key
    names; an unknown or missing one is audited, then 401."""
    exchange = _services(request)  # not a sub-dependency: each one costs FastAPI a resolution per request
    header = exchange.settings.api.tls_subject_header
    found = identify(exchange, request.headers.get(header) if header else None, key)
    if found is None:
        route = request.scope.get("route")
        action = getattr(route, "name", "unknown")
        metrics.API_REFUSALS.labels(
            route=getattr(route, "path", "unmatched"), reason="not_authenticated"
        ).inc()
        await record(
            exchange,
            Audit(UNAUTHENTICATED, action, None, {"api_key": "present" if key else "missing"}),
            "refused",
            "not_authenticated",
        )
        raise NotAuthenticatedError("send the caller's API key in the X-API-Key header")
    return found


def identify(services: Services, tls_subject: str | None, key: str | None) -> Caller | None:
    """The caller a verified certificate subject (when the proxy sends one) or else an API key names, or
    None: the lookup `caller` makes, without its refusal (also used by exchange.api.lean)."""
    if tls_subject:
        return services.policy.caller_by_tls_subject(tls_subject)
    if key:
        # Only the key's hash is looked up, and nothing keeps the key itself past the request.
        return services.policy.caller_by_key_hash(hashlib.sha256(key.encode()).hexdigest())
    return None


ServicesDep = Annotated[Services, Depends(services)]
CallerDep = Annotated[Caller, Depends(caller)]
AuthDep = Annotated[Authenticated, Depends(authenticated)]
