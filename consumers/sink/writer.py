"""One batch, one PostgreSQL transaction: COPY the record rows, fold the profiles, move the offsets."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping

from kafka import TopicPartition

from consumers.sink.batch import Batch
from consumers.sink.database import Connection, Database
from consumers.sink.history import create_staging, write_profiles
from consumers.sink.offsets import save_offsets
from exchange.settings import PostgresSettings
from monitoring import metrics


class BatchWriter:
    """Writes whole batches exactly once: rows and the offsets they were read up to commit together.

    `before_commit`, when given, is called inside each transaction after everything is written and
    before COMMIT; whatever it raises rolls the batch back (tests use it to crash the sink there).
    """

    def __init__(
        self,
        postgres: PostgresSettings,
        group: str,
        *,
        attempts: int,
        backoff_seconds: float,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        self._group = group
        self._before_commit = before_commit
        self._db = Database(
            postgres, attempts=attempts, backoff_seconds=backoff_seconds, prepare=create_staging
        )

    def write(self, batch: Batch, expected: Mapping[TopicPartition, int | None]) -> None:
        """Write `batch` and store its next offsets, fenced on `expected` (the stored ones it started from).

        Raises `OffsetConflictError` when the stored offsets moved (nothing is written), and
        `SinkWriteError` when PostgreSQL refuses the batch.
        """
        started = time.perf_counter()
        self._db.run(lambda conn: self._write(conn, batch, expected), "writing a batch")
        committed = dt.datetime.now(dt.UTC)
        metrics.SINK_COMMIT_SECONDS.observe(time.perf_counter() - started)
        _record_metrics(batch, committed)

    def _write(self, conn: Connection, batch: Batch, expected: Mapping[TopicPartition, int | None]) -> None:
        with conn.transaction(), conn.cursor() as cursor:
            for table, parts in batch.tables():
                with cursor.copy(table.copy) as copy:
                    write_row = copy.write_row
                    for rows in parts:
                        for row in rows:
                            write_row(row)
            save_offsets(conn, self._group, batch.next_offsets, expected)
            profiles = batch.profile_rows()
            if profiles:  # last: its versions are dated as the transaction is about to commit
                write_profiles(cursor, profiles)
            if self._before_commit is not None:
                self._before_commit()

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


def _record_metrics(batch: Batch, committed: dt.datetime) -> None:
    for table, parts in batch.tables():
        metrics.SINK_ROWS_WRITTEN.labels(table=table.name).inc(sum(map(len, parts)))
    profiles = sum(map(len, batch.profiles.values()))
    if profiles:
        metrics.SINK_ROWS_WRITTEN.labels(table="profiles").inc(profiles)
    for name, counts in batch.published_at():
        freshness = metrics.SINK_FRESHNESS_SECONDS.labels(table=name)
        for published_at, count in counts.items():
            # A connector's clock ahead of the sink's is not negative freshness.
            seconds = max((committed - published_at).total_seconds(), 0.0)
            metrics.observe_repeated(freshness, seconds, count)
