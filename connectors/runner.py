"""Runs a connector: source → converter → publisher, in chunks, saving the position after each.

The position is saved only after `Publisher.flush` returned, i.e. after the broker acknowledged every
record up to it. Killed at any moment, a connector restarts from the last saved position and re-sends
at most one chunk, with the same event ids (the exchange's consumers are idempotent on them).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.exceptions import RecordRejected
from connectors.mappings import Mapping
from connectors.records import Converted, Rejection, SourceRecord
from exchange.topics import Topic


@dataclass
class Summary:
    """What a connector run did: native records read, canonical records published, rejections by reason."""

    read: int = 0
    published: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    # How far a file connector has read (its stored position, in bytes); None for a table.
    position: int | None = None

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def add(self, other: Summary) -> None:
        """Count `other`'s records in too."""
        self.read += other.read
        self.published += other.published
        self.rejected.update(other.rejected)


ProgressCallback = Callable[[Summary], None]


class RecordSink(Protocol):
    """Where a chunk's records go: a `Publisher` (sent), or an `Outbox` (encoded for a sending process)."""

    def publish(self, topic: Topic, dataset: str, converted: Converted) -> None: ...

    def dead_letter(self, **letter: Any) -> None: ...


class ChunkPublisher:
    """Converts and publishes records of one department, counting as it goes; shared by every connector.

    Counts go to `summary`; the process that sends them counts them into the metrics (`account`),
    as the converting may happen in another process (`connectors.sending.account`).
    """

    def __init__(
        self,
        mapping: Mapping,
        publisher: RecordSink,
        source: str,
        summary: Summary,
        origin: str | None = None,
    ) -> None:
        self.mapping = mapping
        self.publisher = publisher
        self.source = source
        self.origin = origin  # what tells this source from another of the same name (a file's path)
        self.summary = summary
        self.new_chunk()

    def new_chunk(self) -> None:
        """Start a chunk: one publication time and trace id for all its records."""
        self.published_at = dt.datetime.now(dt.UTC)
        self.trace_id = uuid.uuid4().hex

    def reject(self, position: str, rejection: Rejection, original: bytes) -> None:
        """Dead-letter one native record."""
        self.publisher.dead_letter(
            department=self.mapping.department,
            dataset=self.mapping.dataset,
            source=self.source,
            position=position,
            rejection=rejection,
            original=original,
            trace_id=self.trace_id,
            origin=self.origin,
        )
        self.summary.rejected[rejection.reason] += 1

    def convert(self, fields: dict[str, object], position: str, original: bytes) -> list[Converted]:
        """The canonical records of one native record, or [] after dead-lettering it."""
        self.summary.read += 1
        try:
            return self.mapping.convert(fields, published_at=self.published_at, trace_id=self.trace_id)
        except RecordRejected as rejected:
            self.reject(position, rejected.rejection, original)
            return []

    def publish(self, records: Iterable[Converted]) -> None:
        """Queue canonical records for the mapping's topic."""
        count = 0
        for converted in records:
            self.publisher.publish(self.mapping.topic, self.mapping.dataset, converted)
            count += 1
        self.summary.published += count


def publish_source_record(chunk: ChunkPublisher, record: SourceRecord) -> None:
    """One record a file source read: dead-letter it or publish what it converts to."""
    if record.problem is not None or record.fields is None:
        problem = record.problem or Rejection("unparseable", None, "the record could not be parsed")
        chunk.summary.read += 1
        chunk.reject(record.position, problem, record.original)
        return
    chunk.publish(chunk.convert(record.fields, record.position, record.original))


def stopped(stop: threading.Event | None) -> bool:
    """Whether a stop was asked for (SIGTERM, Ctrl-C): finish the chunk, save, exit."""
    return stop is not None and stop.is_set()
