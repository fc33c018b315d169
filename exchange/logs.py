"""Reading a topic from its beginning to its end now: for operators' commands, rebuilds and tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from exchange.admin import kafka_unreachable
from exchange.serialization import AvroCodec
from exchange.settings import KafkaSettings

# How long a reader waits for Kafka to answer before saying it cannot be reached (kafka-python: 30 s).
BOOTSTRAP_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class LoggedRecord:
    """A decoded record and where it sits in the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    schema: str
    value: dict[str, Any]


def read_all(kafka: KafkaSettings, topic: str, *, codec: AvroCodec | None = None) -> Iterator[LoggedRecord]:
    """Every record of `topic` up to the end offsets at the time of the call, partition by partition."""
    codec = codec or AvroCodec()
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers,
            enable_auto_commit=False,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        )
    except KafkaError as exc:
        raise kafka_unreachable(kafka, exc) from exc
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        while any(consumer.position(p) < ends[p] for p in partitions):
            for part, messages in consumer.poll(timeout_ms=2000).items():
                for message in messages:
                    if message.offset >= ends[part]:
                        continue
                    schema, value = codec.decode(message.value)
                    yield LoggedRecord(topic, message.partition, message.offset, message.key, schema, value)
    finally:
        consumer.close()
