"""How `audited` records a request that ends in each kind of failure."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.api import auditing
from exchange.api.auditing import Audit, audited
from exchange.api.exceptions import StorageUnavailableError
from exchange.exceptions import StorageError


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None, dict[str, Any]]]:
    entries: list[tuple[str, str | None, dict[str, Any]]] = []

    async def keep(services: Any, audit: Audit, outcome: str, reason: str | None = None) -> None:
        entries.append((outcome, reason, audit.response))

    monkeypatch.setattr(auditing, "record", keep)
    return entries


async def test_a_request_answered_503_is_audited_as_unavailable_not_as_an_internal_failure(
    recorded: list[tuple[str, str | None, dict[str, Any]]],
) -> None:
    with pytest.raises(StorageUnavailableError):
        async with audited(None, "/v1/verifications", "housing-bureau", "verify", "p", {}):  # type: ignore[arg-type]
            raise StorageUnavailableError("no PostgreSQL connection within the pool timeout")
    assert recorded == [("failed", "unavailable", {"error": "unavailable", "status": 503})]


async def test_any_other_failure_is_audited_as_internal(
    recorded: list[tuple[str, str | None, dict[str, Any]]],
) -> None:
    with pytest.raises(StorageError):
        async with audited(None, "/v1/verifications", "housing-bureau", "verify", "p", {}):  # type: ignore[arg-type]
            raise StorageError("a constraint failed")
    assert recorded == [("failed", "internal", {"error": "StorageError"})]
