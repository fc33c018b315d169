"""`storage.pool.connection`: psycopg's errors become the exchange's, wherever they arise (taking the
connection, in the block, returning it), anything else passes unchanged, and the connection goes back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from exchange.api.exceptions import StorageUnavailableError
from exchange.api.storage.pool import connection
from exchange.exceptions import StorageError


class FakePool:
    def __init__(self, on_take: Exception | None = None, on_return: Exception | None = None) -> None:
        self.on_take, self.on_return = on_take, on_return
        self.returned: list[BaseException | None] = []

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        if self.on_take is not None:
            raise self.on_take
        try:
            yield self
        except BaseException as exc:
            self.returned.append(exc)
            raise
        else:
            self.returned.append(None)
        finally:
            if self.on_return is not None:
                raise self.on_return


async def _use(pool: Any, raised: BaseException | None) -> Any:
    async with connection(pool) as conn:
        if raised is not None:
            raise raised
        return conn


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (psycopg.errors.UniqueViolation("duplicate"), StorageError),
        (psycopg.OperationalError("gone"), StorageUnavailableError),
        (ValueError("ours"), ValueError),
    ],
    ids=["refused", "unavailable", "other"],
)
def test_an_error_in_the_block_is_translated_and_the_connection_returned(
    raised: Exception, expected: type[Exception]
) -> None:
    pool = FakePool()
    with pytest.raises(expected) as caught:
        asyncio.run(_use(pool, raised))
    assert pool.returned == [raised]
    assert (caught.value is raised) == (expected is ValueError)
    if caught.value is not raised:
        assert caught.value.__cause__ is raised


def test_a_pool_timeout_taking_the_connection_is_unavailable() -> None:
    with pytest.raises(StorageUnavailableError, match="pool timeout"):
        asyncio.run(_use(FakePool(on_take=PoolTimeout("busy")), None))


def test_an_error_returning_the_connection_is_translated() -> None:
    pool = FakePool(on_return=psycopg.OperationalError("gone"))
    with pytest.raises(StorageUnavailableError):
        asyncio.run(_use(pool, None))
    assert pool.returned == [None]


def test_a_cancelled_block_is_not_translated() -> None:
    pool = FakePool()
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(_use(pool, asyncio.CancelledError()))
    assert len(pool.returned) == 1


def test_a_block_without_error_gets_the_connection() -> None:
    pool = FakePool()
    assert asyncio.run(_use(pool, None)) is pool
    assert pool.returned == [None]
