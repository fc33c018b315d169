"""The connection pool and the two ways to use it, whose psycopg errors become ours: a transaction, and
a connection for single-statement reads.

The pool's connections are in autocommit mode, so a read of one statement costs one round trip
rather than three (BEGIN, the statement, COMMIT); `transaction` opens an explicit one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
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
    return AsyncConnectionPool(
        settings.postgres.conninfo(),
        min_size=settings.api.pool_min,
        max_size=settings.api.pool_max,
        timeout=settings.api.pool_timeout_seconds,
        open=False,
        name="exchange-api",
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


@asynccontextmanager
async def connection(pool: AsyncConnectionPool[Connection]) -> AsyncIterator[Connection]:
    """A pooled connection in autocommit mode: each statement is its own transaction (for reads of one
    statement, or of several that need no common snapshot). Errors as `transaction`."""
    async with _translated(), pool.connection() as conn:
        yield conn


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except PoolTimeout as exc:
        raise StorageUnavailableError(f"no PostgreSQL connection within the pool timeout: {exc}") from exc
    except psycopg.OperationalError as exc:
        raise StorageUnavailableError(f"PostgreSQL is unavailable: {exc}") from exc
    except psycopg.Error as exc:
        raise StorageError(f"PostgreSQL refused a statement: {exc}") from exc


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
