"""PostgreSQL at the edge: connections and the versioned schema migrations applied at start."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from exchange.exceptions import StorageError
from exchange.settings import PostgresSettings

# Any fixed number: serialises concurrent starts so two processes never apply a migration twice.
_MIGRATION_LOCK = 0x45584348

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file, `NNNN_name.sql`."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """Every migration shipped with the exchange, in version order."""
    folder = resources.files("exchange").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda migration: migration.version)


def migrate(settings: PostgresSettings) -> list[Migration]:
    """Apply the migrations not yet recorded, each in its own transaction; return those applied.

    A recorded migration whose file changed since is an error: migrations are append-only history.
    """
    applied: list[Migration] = []
    try:
        with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                conn.execute(_LEDGER)
                done: dict[int, str] = dict(
                    conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
                )
                for migration in migrations():
                    if migration.version in done:
                        if done[migration.version] != migration.checksum:
                            raise StorageError(
                                f"migration {migration.version} ({migration.name}) was changed "
                                "after it was applied; add a new migration instead"
                            )
                        continue
                    with conn.transaction():
                        conn.execute(migration.sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                    applied.append(migration)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    except psycopg.OperationalError as exc:
        raise StorageError(
            f"cannot reach PostgreSQL at {settings.url()}: {exc}. "
            "Start it with `exchange stack up` (or `make stack`)."
        ) from exc
    return applied


@contextmanager
def bounded_connection(
    settings: PostgresSettings, timeout_seconds: float
) -> Iterator[psycopg.Connection[Any]]:
    """A short-lived autocommit connection for a monitoring read: connecting and every statement give up
    after `timeout_seconds`, so a scrape never hangs on a slow or locked database."""
    with psycopg.connect(
        settings.conninfo(), connect_timeout=max(int(timeout_seconds), 1), autocommit=True
    ) as conn:
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false)", (f"{int(timeout_seconds * 1000)}ms",)
        )
        yield conn
