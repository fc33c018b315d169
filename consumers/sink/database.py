"""One PostgreSQL connection of the sink: transient errors are retried, bounded, on a fresh connection."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from consumers.exceptions import SinkWriteError
from exchange.settings import PostgresSettings

T = TypeVar("T")
Connection = psycopg.Connection[Any]

_log = logging.getLogger("exchange.sink")


class Database:
    """An autocommit connection, opened on first use and reopened after a transient error.

    `run(work)` calls `work(connection)`; `work` opens its own transaction. An `OperationalError`
    (connection lost, server restarting, serialization failure, deadlock) discards the connection
    and runs `work` again after a backoff, at most `attempts` times in all; any other PostgreSQL
    error, or the last transient one, raises `SinkWriteError`. Other exceptions pass through.
    """

    def __init__(
        self,
        settings: PostgresSettings,
        *,
        attempts: int,
        backoff_seconds: float,
        prepare: Callable[[Connection], None] | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._settings = settings
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._prepare = prepare
        self._conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._settings.conninfo(), autocommit=True)
            try:
                if self._prepare is not None:
                    self._prepare(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def run(self, work: Callable[[Connection], T], what: str) -> T:
        """`work(connection)`, retried on transient errors; `what` names it in errors and logs."""
        for attempt in range(1, self._attempts + 1):
            try:
                return work(self._connection())
            except psycopg.OperationalError as exc:
                self.close()
                if attempt == self._attempts:
                    raise SinkWriteError(
                        f"{what}: PostgreSQL at {self._settings.url()} failed {attempt} times in a row; "
                        f"the last error: {exc}"
                    ) from exc
                delay = self._backoff * 2 ** (attempt - 1)
                _log.warning(
                    "%s: %s; retrying in %.1f s (%d of %d)", what, exc, delay, attempt, self._attempts
                )
                time.sleep(delay)
            except psycopg.Error as exc:
                raise SinkWriteError(
                    f"{what}: PostgreSQL at {self._settings.url()} refused it: {exc}"
                ) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")

    def close(self) -> None:
        """Close the connection, if open; the next `run` opens a new one."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
