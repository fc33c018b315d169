"""The connection pool and the two ways to use it, whose psycopg errors become ours: a transaction, and
a connection for single-statement reads.

The pool's connections are in autocommit mode, so a read of one statement costs one round trip
rather than three (BEGIN, the statement, COMMIT); `transaction` opens an explicit one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from exchange.api.exceptions import StorageUnavailableError
from exchange.exceptions import StorageError
from exchange.settings import ExchangeSettings

Connection = psycopg.AsyncConnection[Any]
Query = str | sql.Composed | sql.SQL
Row = dict[str, Any]


def create_pool(settings: ExchangeSettings) -> AsyncConnectionPool[Connection]:
    """A closed pool of the exchange database; open it with `await pool.open()`."""
    return _closed_pool(settings, settings.api.pool_min, settings.api.pool_max, "exchange-api")


def create_audit_pool(settings: ExchangeSettings) -> AsyncConnectionPool[Connection]:
    """A closed pool of one connection, the audit appender's own (exchange.api.appender).

    From the requests' pool, a batch took its turn behind every request waiting for a connection to read
    with: at 2,000 verifications/s its wait reached 5–17 ms whenever PostgreSQL slowed for a moment,
    and every request in the batch, and every one queued after it, waited that long too. The appender
    writes one batch at a time, so one connection is all it uses.
    """
    return _closed_pool(settings, 1, 1, "exchange-api-audit")


def _closed_pool(
    settings: ExchangeSettings, min_size: int, max_size: int, name: str
) -> AsyncConnectionPool[Connection]:
    return AsyncConnectionPool(
        settings.postgres.conninfo(),
        min_size=min_size,
        max_size=max_size,
        timeout=settings.api.pool_timeout_seconds,
        open=False,
        name=name,
        kwargs={"autocommit": True},
    )


@asynccontextmanager
async def transaction(pool: AsyncConnectionPool[Connection]) -> AsyncIterator[Connection]:
    """A pooled connection in a transaction: committed on exit, rolled back on an exception.

    Raises `StorageUnavailableError` when PostgreSQL cannot be reached, `StorageError` when it
    refuses a statement.
    """
    async with connection(pool) as conn, conn.transaction():
        yield conn


def connection(pool: AsyncConnectionPool[Connection]) -> AbstractAsyncContextManager[Connection]:
    """A pooled connection in autocommit mode: each statement is its own transaction (for reads of one
    statement, or of several that need no common snapshot). Errors as `transaction`."""
    return _Pooled(pool)


class _Pooled(AbstractAsyncContextManager[Connection]):
    """`pool.connection()` with psycopg's errors translated (`_translated`): a class rather than a
    generator-based context manager around it, as every request enters one or two."""

    __slots__ = ("_inner",)

    def __init__(self, pool: AsyncConnectionPool[Connection]) -> None:
        self._inner = pool.connection()

    async def __aenter__(self) -> Connection:
        try:
            return await self._inner.__aenter__()
        except Exception as exc:
            translated = _translated(exc)
            if translated is exc:
                raise
            raise translated from exc

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> bool | None:
        try:
            suppressed = await self._inner.__aexit__(kind, exc, traceback)
        except Exception as raised:  # returning the connection failed, or the block's error as re-raised
            translated = _translated(raised)
            if translated is raised:
                raise
            raise translated from raised
        if isinstance(exc, Exception) and not suppressed:
            translated = _translated(exc)
            if translated is not exc:
                raise translated from exc
        return suppressed


def _translated(exc: Exception) -> Exception:
    """Ours for psycopg's errors; any other exception as it is."""
    if isinstance(exc, PoolTimeout):
        return StorageUnavailableError(f"no PostgreSQL connection within the pool timeout: {exc}")
    if isinstance(exc, psycopg.OperationalError):
        return StorageUnavailableError(f"PostgreSQL is unavailable: {exc}")
    if isinstance(exc, psycopg.Error):
        return StorageError(f"PostgreSQL refused a statement: {exc}")
    return exc


async def fetch_all(
    conn: Connection, query: Query, params: Sequence[Any] | Mapping[str, Any] = ()
) -> list[Row]:
    """Every row of `query` as dicts."""
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchall()


async def fetch_one(
    conn: Connection, query: Query, params: Sequence[Any] | Mapping[str, Any] = ()
) -> Row | None:
    """The first row of `query` as a dict, or None."""
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchone()
