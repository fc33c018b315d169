"""Polled Kafka records decoded into rows, kept per partition until one transaction writes them all."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from kafka import TopicPartition

from consumers.exceptions import ConsumerError, UndecodableRecordError
from consumers.sink.profiles import latest_published_at, profile_row
from consumers.sink.tables import PUBLISHED_AT, RECORD_TABLES, RecordTable, Row
from exchange.exceptions import SerializationError
from exchange.profile import ProfileFormError
from exchange.serialization import AvroCodec
from exchange.settings import KafkaSettings
from exchange.topics import PROFILE

PROFILE_SCHEMA = "profile"


@dataclass
class Batch:
    """Rows and profile rows per partition, and the offset each partition resumes from once written."""

    records: dict[TopicPartition, tuple[RecordTable, list[Row]]] = field(default_factory=dict)
    profiles: dict[TopicPartition, list[Row]] = field(default_factory=dict)
    profile_published: dict[TopicPartition, list[dt.datetime]] = field(default_factory=dict)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    size: int = 0  # Kafka records taken, rows and profiles alike

    def __bool__(self) -> bool:
        return bool(self.next_offsets)

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget what was taken from `partitions` (revoked, or sought elsewhere by a rebalance)."""
        for partition in partitions:
            if self.next_offsets.pop(partition, None) is None:
                continue
            table_rows = self.records.pop(partition, None)
            self.size -= len(table_rows[1]) if table_rows else 0
            self.size -= len(self.profiles.pop(partition, ()))
            self.profile_published.pop(partition, None)

    def tables(self) -> Iterator[tuple[RecordTable, list[list[Row]]]]:
        """Each record table with its rows, one list per partition, for one COPY per table."""
        by_table: dict[str, tuple[RecordTable, list[list[Row]]]] = {}
        for table, rows in self.records.values():
            by_table.setdefault(table.name, (table, []))[1].append(rows)
        return iter(by_table.values())

    def profile_rows(self) -> list[Row]:
        """Every profile row of the batch."""
        return [row for rows in self.profiles.values() for row in rows]

    def published_at(self) -> Iterator[tuple[str, Counter[dt.datetime]]]:
        """Per table, how many rows carry each published_at (a connector stamps a chunk with one)."""
        for table, parts in self.tables():
            counts: Counter[dt.datetime] = Counter()
            for rows in parts:
                counts.update(map(itemgetter(PUBLISHED_AT), rows))
            yield table.name, counts
        profiles = Counter(stamp for stamps in self.profile_published.values() for stamp in stamps)
        if profiles:
            yield "profiles", profiles


class Decoder:
    """Decodes the sink's topics into a `Batch`; stops at the first record its topic should not hold."""

    def __init__(self, kafka: KafkaSettings, codec: AvroCodec | None = None) -> None:
        self._tables = {table.topic.full_name(kafka): table for table in RECORD_TABLES}
        self._profile_topic = PROFILE.full_name(kafka)
        self._codec = codec or AvroCodec()

    @property
    def topics(self) -> list[str]:
        """The topics the sink consumes: the four datasets and the profiles."""
        return [*self._tables, self._profile_topic]

    def add(self, batch: Batch, partition: TopicPartition, messages: Sequence[Any]) -> None:
        """Decode consecutive `messages` (kafka-python ConsumerRecords) of one partition into `batch`.

        Raises `UndecodableRecordError` for a record that is not Avro of the topic's schema or has
        no subject key; the batch is then not to be written.
        """
        if not messages:
            return
        table = self._tables.get(partition.topic)
        if table is not None:
            rows = batch.records.setdefault(partition, (table, []))[1]
            self._add_records(table, rows, partition, messages)
        elif partition.topic == self._profile_topic:
            self._add_profiles(batch, partition, messages)
        else:
            raise ConsumerError(f"{partition.topic} is not a topic of the sink: {', '.join(self.topics)}")
        batch.next_offsets[partition] = messages[-1].offset + 1
        batch.size += len(messages)

    def _decode(self, message: Any, expected: str) -> tuple[str, dict[str, Any]]:
        """The subject key and the record of one message, or `UndecodableRecordError`."""
        key, value = message.key, message.value
        if key is None or value is None:
            raise _undecodable(message, "no key" if key is None else "no value (a tombstone)")
        try:
            name, record = self._codec.decode(value)
            subject_key: str = key.decode("ascii")
        except (SerializationError, UnicodeDecodeError) as exc:
            raise _undecodable(message, str(exc)) from exc
        if name != expected:
            raise _undecodable(message, f"a {name} record, where {expected} records belong")
        return subject_key, record

    def _add_records(
        self, table: RecordTable, rows: list[Row], partition: TopicPartition, messages: Sequence[Any]
    ) -> None:
        topic, number = partition.topic, partition.partition
        decode, row, dataset = self._decode, table.row, table.dataset
        for message in messages:
            subject_key, record = decode(message, dataset)
            rows.append(row(record, (subject_key, topic, number, message.offset)))

    def _add_profiles(self, batch: Batch, partition: TopicPartition, messages: Sequence[Any]) -> None:
        rows = batch.profiles.setdefault(partition, [])
        published = batch.profile_published.setdefault(partition, [])
        for message in messages:
            subject_key, record = self._decode(message, PROFILE_SCHEMA)
            if record["subject_key"] != subject_key:
                raise _undecodable(message, "the profile's subject_key is not its Kafka key")
            try:
                row = profile_row(record, partition.topic, partition.partition, message.offset)
            except ProfileFormError as exc:
                raise _undecodable(message, str(exc)) from exc
            rows.append(row)
            latest = latest_published_at(record)
            if latest is not None:
                published.append(latest)


def _undecodable(message: Any, reason: str) -> UndecodableRecordError:
    return UndecodableRecordError(message.topic, message.partition, message.offset, reason)
