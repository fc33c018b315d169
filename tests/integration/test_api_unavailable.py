"""The API while its database refuses connections, on the real PostgreSQL: a 503 that tells the caller
when to ask again, then answers again once the database is back, without a restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import psycopg
from api_support import client, with_key
from psycopg import sql

from exchange import database
from exchange.settings import ExchangeSettings

BODY = {
    "subject": "440103198403037020",
    "purpose": "public-rental-housing",
    "claims": [{"fact": "identity.status", "operator": "eq", "value": "normal"}],
}


def _connections(settings: ExchangeSettings, allowed: bool) -> None:
    """Let the test's database take connections or not; when not, end the ones it has (the pool's)."""
    name = settings.postgres.database
    with psycopg.connect(settings.postgres.conninfo(database="postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.SQL("true" if allowed else "false")
            )
        )
        if not allowed:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )


async def _answered_again(http: httpx.AsyncClient, seconds: float) -> httpx.Response:
    """The first answer other than 503 within `seconds` (the pool reconnects in the background)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = await http.post("/v1/verifications", json=BODY)
        if answer.status_code != 503 or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.5)


async def test_a_database_refusing_connections_is_a_503_with_retry_after_then_answers_again(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    database.migrate(settings.postgres)
    settings = with_key(settings, tmp_path)
    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"pool_timeout_seconds": 1.0})}
    )
    async with client(settings, "housing-bureau") as http:
        before = await http.post("/v1/verifications", json=BODY)
        _connections(settings, allowed=False)
        try:
            refused = [await http.post("/v1/verifications", json=BODY) for _ in range(3)]
        finally:
            _connections(settings, allowed=True)
        after = await _answered_again(http, seconds=60)
    assert before.status_code == 200
    for answer in refused:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "unavailable"
        assert answer.headers["Retry-After"] == "5"
    assert after.status_code == 200, after.text
