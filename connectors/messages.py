"""Records and dead letters encoded into Kafka messages, ready to send: topic, partition, key, value.

Pure — no I/O — so it runs wherever a connector prepares its records: in the process that sends
them (the table connector) or in a preparing process beside it (the file connectors,
`connectors.preparing`). The partition is chosen here with Kafka's default partitioner, so the sending
thread does not hash keys; every producer of the exchange still agrees on where a subject's records go.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from connectors.avro import RecordEncoder
from connectors.records import Converted, Rejection
from exchange.partitioning import partition_for
from exchange.settings import KafkaSettings
from exchange.subjects import subject_key
from exchange.topics import DEADLETTER, Topic

# Fixed forever, like the event namespace: a re-read rejection keeps its id.
DEADLETTER_NAMESPACE = uuid.UUID("0b8f3e8c-5d0e-4f8e-9a57-4d4c1ad9c0de")
# The most of a rejected input's bytes a dead letter carries: with its other fields well under Kafka's
# 1 MiB message, whatever the source (a file's record is at most as long, connectors.sources.lines).
MAX_ORIGINAL_BYTES = 256 << 10
# Subjects whose key and partition are remembered; a subject has many records in the tax and social
# exports.
_REMEMBERED_KEYS = 1 << 16


class Message(NamedTuple):
    """One message to produce."""

    topic: str
    partition: int
    key: bytes
    value: bytes


# A message as a plain tuple (topic, partition, key, value): what crosses from a preparing process.
RawMessage = tuple[str, int, bytes, bytes]
# A canonical message's source record: (its index among the chunk's messages, source record id, source
# version, subject): what the sending process needs to revoke a record corrected to another person.
SourceOf = tuple[int, str, int, str]


class MessageEncoder:
    """Encodes one connector's records and dead letters; `partitions` is each topic's partition count,
    by full (prefixed) name."""

    def __init__(self, secret: bytes, kafka: KafkaSettings, partitions: Mapping[str, int]) -> None:
        self.kafka = kafka
        self._secret = secret
        self._partitions = dict(partitions)
        self._deadletter_topic = DEADLETTER.full_name(kafka)
        self._codec = RecordEncoder()
        self._addressed = lru_cache(maxsize=_REMEMBERED_KEYS)(self._address)

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent to a preparing process by its ingredients: the codec and the cache are rebuilt there.
        return (MessageEncoder, (self._secret, self.kafka, self._partitions))

    def _hash(self, topic: str, key: bytes) -> int:
        try:
            return partition_for(key, self._partitions[topic])
        except KeyError:
            raise KeyError(f"no partition count known for topic {topic}") from None

    def _address(self, topic: str, subject_id: str) -> tuple[bytes, int]:
        key = subject_key(subject_id, self._secret).encode()
        return key, self._hash(topic, key)

    def record(self, topic: Topic, dataset: str, converted: Converted) -> Message:
        """A canonical record, keyed by its subject's HMAC key."""
        name = topic.full_name(self.kafka)
        key, partition = self._addressed(name, converted.subject_id)
        return Message(name, partition, key, self._codec.encode(dataset, converted.record))

    def dead_letter(
        self,
        *,
        department: str,
        dataset: str,
        source: str,
        position: str,
        rejection: Rejection,
        original: bytes,
        trace_id: str,
        origin: str | None = None,
    ) -> Message:
        """A rejected input with its reason, its native field and its original bytes, keyed by department.

        Original bytes over `MAX_ORIGINAL_BYTES` are cut to them, and the message says so: a dead letter
        Kafka refuses would stop the connector at that record on every restart.

        Its event id is the same each time the same rejection is sent (a restart re-sends the chunk it
        was in), so readers keep one per id: it is made of the department, the `origin` (a file's
        resolved path; the `source` when None) and the position. Of the file name alone, two exports
        of one name in two folders gave two different rejections one id.
        """
        message = rejection.message
        if len(original) > MAX_ORIGINAL_BYTES:
            message += (
                f" (the original's first {MAX_ORIGINAL_BYTES:,} of {len(original):,} bytes are kept; "
                f"SHA-256 of all of it {hashlib.sha256(original).hexdigest()})"
            )
            original = original[:MAX_ORIGINAL_BYTES]
        record: dict[str, Any] = {
            "event_id": str(uuid.uuid5(DEADLETTER_NAMESPACE, f"{department}|{origin or source}|{position}")),
            "department": department,
            "dataset": dataset,
            "source": source,
            "position": position,
            "reason": rejection.reason,
            "field": rejection.field,
            "message": message,
            "original": original,
            "rejected_at": dt.datetime.now(dt.UTC),
            "trace_id": trace_id,
        }
        topic = self._deadletter_topic
        key = department.encode()
        return Message(topic, self._hash(topic, key), key, self._codec.encode("deadletter", record))


class Outbox:
    """Collects a chunk's messages instead of sending them; what a preparing process hands over.

    Offers the part of `Publisher` a `ChunkPublisher` uses, so the same chunk logic serves both.
    """

    def __init__(self, encoder: MessageEncoder, *, track_sources: bool = False) -> None:
        self.encoder = encoder
        self.messages: list[Message] = []
        self._track = track_sources  # keep `sources` (the datasets of connectors.moves)
        self.sources: list[SourceOf] = []

    def publish(self, topic: Topic, dataset: str, converted: Converted) -> None:
        """Encode one canonical record into the outbox."""
        if self._track:
            envelope = converted.record["envelope"]
            source = (envelope["source_record_id"], envelope["source_version"], converted.subject_id)
            self.sources.append((len(self.messages), *source))
        self.messages.append(self.encoder.record(topic, dataset, converted))

    def dead_letter(self, **letter: Any) -> None:
        """Encode one dead letter into the outbox (the arguments of `MessageEncoder.dead_letter`)."""
        self.messages.append(self.encoder.dead_letter(**letter))

    def take(self) -> tuple[list[Message], list[SourceOf]]:
        """The messages collected since the last take, and their source records (if tracked)."""
        taken, self.messages = self.messages, []
        sources, self.sources = self.sources, []
        return taken, sources
