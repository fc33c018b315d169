"""Every request becomes an audit entry: allowed, refused (with the reason code) or failed.

`audited` wraps a handler's work. Refusals and failures are appended and re-raised; on success the
entry is appended before the response leaves, so nothing is disclosed that is not in the log (if
the append fails the caller gets 503 or 500, not the data). Entries of concurrent requests are
committed together (exchange.api.appender).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from exchange.api.context import Services
from exchange.api.exceptions import ApiError, RefusedError, StorageUnavailableError
from exchange.audit import AuditEntry
from monitoring import metrics

UNAUTHENTICATED = "unauthenticated"


@dataclass
class Audit:
    """The entry a handler fills in as it learns: the subject key once validated, what it returned."""

    caller: str
    action: str
    purpose: str | None
    request: dict[str, Any]
    subject_key: str | None = None
    response: dict[str, Any] = field(default_factory=dict)


def entry_of(services: Services, audit: Audit, outcome: str, reason: str | None = None) -> AuditEntry:
    """The chain entry of `audit`, under the policy version in force."""
    return AuditEntry(
        caller=audit.caller,
        action=audit.action,
        outcome=outcome,
        policy_version=services.policy.version,
        purpose=audit.purpose,
        subject_key=audit.subject_key,
        reason=reason,
        request=audit.request,
        response=audit.response,
    )


async def record(services: Services, audit: Audit, outcome: str, reason: str | None = None) -> None:
    """Append the entry to the hash chain; returns once it is committed (`AuditAppender.append`)."""
    await services.audit.append(entry_of(services, audit, outcome, reason))


def audited(
    services: Services, route: str, caller: str, action: str, purpose: str | None, request: dict[str, Any]
) -> AbstractAsyncContextManager[Audit]:
    """An `Audit` for the handler to fill (`async with audited(...) as audit`); appended when the block
    ends, however it ends: refusals and failures are appended, then raised on."""
    return _Audited(services, route, Audit(caller, action, purpose, request))


class _Audited(AbstractAsyncContextManager[Audit]):
    """`audited`: a class rather than a generator-based context manager, as every request enters one."""

    __slots__ = ("_audit", "_route", "_services")

    def __init__(self, services: Services, route: str, audit: Audit) -> None:
        self._services = services
        self._route = route
        self._audit = audit

    async def __aenter__(self) -> Audit:
        return self._audit

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        audit, services = self._audit, self._services
        if exc is None:
            await record(services, audit, "allowed")
        elif isinstance(exc, RefusedError):
            metrics.API_REFUSALS.labels(route=self._route, reason=exc.reason).inc()
            audit.response = {"refused": exc.reason, "message": exc.message}
            await record(services, audit, "refused", exc.reason)
        elif isinstance(exc, ApiError):
            audit.response = {"error": exc.code, "message": exc.message}
            await record(services, audit, "failed", exc.code)
        elif isinstance(exc, StorageUnavailableError):  # answered 503: the database is unreachable
            audit.response = {"error": "unavailable", "status": 503}
            await record(services, audit, "failed", "unavailable")
        elif isinstance(exc, Exception):
            audit.response = {"error": type(exc).__name__}
            await record(services, audit, "failed", "internal")
        # Returns None: the block's exception, if any, is raised on (a cancellation is not recorded).
