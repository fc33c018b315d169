"""The sink's loop: take a batch from Kafka, write it in one PostgreSQL transaction, repeat.

Exactly once by offsets in the same transaction: the next offset of every partition in a batch is
stored in `consumer_offsets` by the transaction that writes the batch's rows, and an assigned
partition resumes from there (see rebalance.py). Kafka's own group offsets are committed
afterwards for lag tools only; they are never read.

Taking and writing overlap: while one batch is written (on a thread of its own, waiting mostly on
PostgreSQL, without the GIL), the loop polls and decodes the next. A batch is handed to the writer
only once the one before it committed, with the offsets that commit left, so the fencing is as if
they ran one after the other; an assignment waits for the write in flight before it reads the
stored offsets, so it never resumes from offsets that write is about to move.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from consumers.exceptions import ConsumerError, OffsetConflictError
from consumers.sink.batch import Batch, Decoder
from consumers.sink.database import Database
from consumers.sink.offsets import load_offsets
from consumers.sink.rebalance import OffsetSeeker, written_to_end
from consumers.sink.tables import RECORD_TABLES
from consumers.sink.writer import BatchWriter
from exchange import admin, database
from exchange.exceptions import ExchangeError
from exchange.settings import ExchangeSettings
from exchange.topics import PROFILE
from exchange.topics import sink_group as sink_group

SINK_TOPICS = (*(table.topic for table in RECORD_TABLES), PROFILE)

_log = logging.getLogger("exchange.sink")


@dataclass(frozen=True)
class SinkOptions:
    """How the sink batches and retries."""

    # A batch is written when it holds this many records, or after max_batch_seconds, or as soon as
    # a poll finds fewer records buffered than the batch has room for: a trickle is written as it
    # arrives, while a backlog (always buffered) gets big batches that amortise each transaction's
    # fixed cost.
    max_batch_records: int = 5000
    max_batch_seconds: float = 1.0
    # The longest a poll waits: how soon a SIGTERM is seen while idle.
    poll_timeout_seconds: float = 0.5
    # Transient PostgreSQL errors: attempts in all, and the first backoff (doubling).
    retry_attempts: int = 5
    retry_backoff_seconds: float = 0.5
    # How long the group waits for a sink that stopped heart-beating (killed) before its partitions
    # go to the others or to its restart: kafka-python's default of 45 s left them unwritten that long.
    session_timeout_seconds: float = 10.0
    # The longest a fetch waits at the broker for data (kafka-python's 0.5 s): kafka-python keeps one
    # fetch in flight per broker, for the partitions with nothing fetched left to read, so a busy
    # partition's next records waited behind a fetch held for the quiet ones.
    fetch_max_wait_seconds: float = 0.05


@dataclass
class SinkSummary:
    """What a run of the sink wrote."""

    batches: int = 0
    rows: Counter[str] = field(default_factory=Counter)  # per table; profiles count once
    conflicts: int = 0  # batches rolled back because another consumer moved their offsets
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Rows written, all tables together."""
        return sum(self.rows.values())


class Sink:
    """The PostgreSQL sink: dataset records, profiles and profile history, exactly once.

    `before_commit` is called in each batch's transaction just before COMMIT (tests raise there to
    crash the sink mid-batch); `progress` after each committed batch.
    """

    def __init__(
        self,
        settings: ExchangeSettings,
        options: SinkOptions | None = None,
        *,
        before_commit: Callable[[], None] | None = None,
        progress: Callable[[SinkSummary], None] | None = None,
    ) -> None:
        self._settings = settings
        self._options = options or SinkOptions()
        self._before_commit = before_commit
        self._progress = progress

    def run(self, stop: threading.Event | None = None, *, until_idle: bool = False) -> SinkSummary:
        """Consume until `stop` is set (the write in flight commits first; what was taken since is read
        again by the next run) or, with `until_idle`, until the group has written every partition of its
        topics up to the end offset.

        Raises `UndecodableRecordError` for a record its topic should not hold (nothing of its batch
        is written), `SinkWriteError` when PostgreSQL refuses a batch, `ConsumerError` when Kafka fails.
        """
        database.migrate(self._settings.postgres)
        admin.ensure_topics(self._settings.kafka, SINK_TOPICS)
        loop = _Loop(self._settings, self._options, self._before_commit, self._progress)
        try:
            return loop.run(stop or threading.Event(), until_idle)
        finally:
            loop.close()


class _Loop:
    """One run's Kafka consumer, PostgreSQL connections and counters."""

    def __init__(
        self,
        settings: ExchangeSettings,
        options: SinkOptions,
        before_commit: Callable[[], None] | None,
        progress: Callable[[SinkSummary], None] | None,
    ) -> None:
        self._options = options
        self._progress = progress
        self._group = sink_group(settings.kafka)
        self._decoder = Decoder(settings.kafka)
        retries: dict[str, Any] = {
            "attempts": options.retry_attempts,
            "backoff_seconds": options.retry_backoff_seconds,
        }
        # The rebalance listener runs on kafka-python's IO thread: it reads with a connection of its own.
        self._reader = Database(settings.postgres, **retries)
        self._writer = BatchWriter(settings.postgres, self._group, before_commit=before_commit, **retries)
        self.summary = SinkSummary()
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=settings.kafka.bootstrap_servers,
                group_id=self._group,
                client_id="exchange-sink",
                enable_auto_commit=False,
                # Every assigned partition is sought explicitly; a stored offset outside the log is an
                # error to see (a recreated topic), not one to paper over by re-reading or skipping.
                auto_offset_reset="none",
                max_poll_records=options.max_batch_records,
                max_partition_fetch_bytes=8 * 1024 * 1024,
                session_timeout_ms=int(options.session_timeout_seconds * 1000),
                fetch_max_wait_ms=round(options.fetch_max_wait_seconds * 1000),
            )
        except KafkaError as exc:
            raise ConsumerError(f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: {exc}") from exc
        # One write at a time, beside the loop; `_writing` is the one in flight, if any.
        self._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exchange-sink-writer")
        self._writing: tuple[Batch, Future[None]] | None = None
        self._seeker = OffsetSeeker(self._consumer, self._load_offsets, settle=self._settle)

    def _await_metadata(self, timeout_seconds: float = 30.0) -> None:
        """Wait until the client knows every topic: the group leader assigns only partitions it knows
        of, and a topic created a moment ago would otherwise be left out of the first assignment."""
        deadline = time.monotonic() + timeout_seconds
        while missing := [
            topic for topic in self._decoder.topics if not self._consumer.partitions_for_topic(topic)
        ]:
            if time.monotonic() > deadline:
                raise ConsumerError(f"Kafka does not show the topics {', '.join(missing)}")
            time.sleep(0.2)

    def _load_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return self._reader.run(lambda conn: load_offsets(conn, self._group, partitions), "reading offsets")

    def run(self, stop: threading.Event, until_idle: bool) -> SinkSummary:
        started = time.monotonic()
        self._await_metadata()
        self._consumer.subscribe(self._decoder.topics, listener=self._seeker)
        while not stop.is_set():
            batch = self._take(stop)
            # The batch before this one was written meanwhile; a conflict there made this one moot.
            if not self._finish_write():
                continue
            if stop.is_set():
                break  # this batch is not written: its offsets are not stored, so it is read again
            if batch:
                self._start_write(batch)
            elif until_idle and self._at_end():
                break
            self.summary.seconds = time.monotonic() - started
        self._finish_write()
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _take(self, stop: threading.Event) -> Batch:
        """Poll until the batch is full, its time is up, or a poll finds fewer records than it asked for.

        A poll returns as soon as it has records, up to as many as asked for; fewer means the consumer
        has nothing more buffered, so the records in hand are written rather than held back for more.
        (Not a poll of a few milliseconds instead: with kafka-python 3.0.12 such polls during a group
        rejoin were seen to leave the sink with no partitions fetched until it restarted.)
        """
        batch = Batch()
        limit = self._options.max_batch_records
        deadline = time.monotonic() + self._options.max_batch_seconds
        while batch.size < limit and not stop.is_set():
            wait = min(deadline - time.monotonic(), self._options.poll_timeout_seconds)
            if wait <= 0:
                break
            wanted = limit - batch.size
            polled = self._poll(wait, wanted)
            # Rows taken before a rebalance from a partition it moved or re-sought are not written.
            batch.drop(self._seeker.take_dropped())
            for partition, messages in polled.items():
                self._decoder.add(batch, partition, messages)
            if sum(map(len, polled.values())) < wanted:
                break
        return batch

    def _poll(self, wait_seconds: float, max_records: int) -> dict[TopicPartition, list[Any]]:
        try:
            polled: dict[TopicPartition, list[Any]] = self._consumer.poll(
                timeout_ms=max(int(wait_seconds * 1000), 1), max_records=max_records
            )
        except KafkaError as exc:
            raise self._listener_failure() or ConsumerError(f"consuming from Kafka failed: {exc}") from exc
        failure = self._listener_failure()
        if failure is not None:
            raise failure
        return polled

    def _listener_failure(self) -> ExchangeError | None:
        failure = self._seeker.failure
        if failure is None:
            return None
        if isinstance(failure, ExchangeError):
            return failure
        error = ConsumerError(f"seeking assigned partitions to their stored offsets failed: {failure}")
        error.__cause__ = failure
        return error

    def _start_write(self, batch: Batch) -> None:
        """Hand `batch` to the writer, fenced on the offsets the writes before it left."""
        expected = self._seeker.expected(batch.next_offsets)
        self._writing = (batch, self._writer_thread.submit(self._writer.write, batch, expected))

    def _finish_write(self) -> bool:
        """Wait for the write in flight, if any, and account for it; False if it met an offset conflict
        (then every assigned partition is sought to its stored offset, and what was taken since is moot).

        Raises what the write raised otherwise (`SinkWriteError`, or whatever `before_commit` raised).
        """
        if self._writing is None:
            return True
        batch, writing = self._writing
        self._writing = None
        try:
            writing.result()
        except OffsetConflictError as exc:
            _log.warning("%s", exc)
            self.summary.conflicts += 1
            # The partitions this member holds: in the eager protocol `assignment()` still lists those
            # being revoked, and sought here they would count as this member's again (`owned`).
            owned = self._seeker.owned()
            self._seeker.seek(owned, self._load_offsets(sorted(owned)))
            return False
        self._seeker.advance(batch.next_offsets)
        self._count(batch)
        self._commit_to_kafka(batch)
        return True

    def _settle(self) -> None:
        """Wait until the write in flight, if any, has committed or failed (for the rebalance listener)."""
        writing = self._writing
        if writing is not None:
            wait([writing[1]])

    def _count(self, batch: Batch) -> None:
        self.summary.batches += 1
        for table, parts in batch.tables():
            self.summary.rows[table.name] += sum(map(len, parts))
        profiles = sum(map(len, batch.profiles.values()))
        if profiles:
            self.summary.rows["profiles"] += profiles
        if self._progress is not None:
            self._progress(self.summary)

    def _commit_to_kafka(self, batch: Batch) -> None:
        """Tell Kafka too, for lag tools; best effort, as PostgreSQL already holds the truth."""
        offsets = {
            partition: OffsetAndMetadata(offset, "", -1) for partition, offset in batch.next_offsets.items()
        }
        try:
            self._consumer.commit_async(offsets, callback=_log_commit)
        except KafkaError as exc:
            _log.debug("committing offsets to Kafka failed: %s", exc)

    def _at_end(self) -> bool:
        """Whether the group has written every partition of the sink's topics up to its end offset.

        The group's stored offsets are the measure, not this member's assignment, so that with several
        sinks in the group none stops while a partition is unread, whoever holds it. A partition of this
        member also counts as done when its position is at the end (`written_to_end`).
        """
        if not self._seeker.assigned:
            return False
        partitions: list[TopicPartition] = []
        for topic in self._decoder.topics:
            numbers = self._consumer.partitions_for_topic(topic)
            if not numbers:
                return False
            partitions += [TopicPartition(topic, number) for number in sorted(numbers)]
        ends: dict[TopicPartition, int] = self._consumer.end_offsets(partitions)
        stored = self._load_offsets(partitions)
        return written_to_end(ends, stored, self._seeker.owned(), self._consumer.position)

    def close(self) -> None:
        self._writer_thread.shutdown(wait=True)
        self._consumer.close(autocommit=False)
        self._writer.close()
        self._reader.close()


def _log_commit(offsets: object, response: object) -> None:
    if isinstance(response, Exception):
        _log.debug("committing offsets to Kafka failed: %s", response)
