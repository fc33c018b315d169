"""The shared publisher: canonical records and dead letters to Kafka with kafka-python.

`acks=all` with idempotence (kafka-python 3's default, set explicitly here), LZ4-compressed batches.
A connector hands over a chunk of records, then calls `flush`, which returns only once the broker
acknowledged every one of them — only then may the connector store its position. Records are encoded
and given their partition by a `MessageEncoder` — here, or in a preparing process that hands over
ready messages (`send_all`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from connectors.exceptions import ConnectorError
from connectors.messages import Message, MessageEncoder, RawMessage
from connectors.records import Converted
from exchange.settings import ExchangeSettings
from exchange.topics import DATASET_TOPICS, DEADLETTER, Topic


class Publisher:
    """Publishes one connector's records; not thread-safe, one per connector run."""

    def __init__(self, settings: ExchangeSettings, *, client_id: str) -> None:
        self._settings = settings
        self._failure: BaseException | None = None
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=settings.kafka.bootstrap_servers,
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                compression_type=settings.connectors.compression,
                linger_ms=settings.connectors.linger_ms,
                batch_size=256 * 1024,
            )
        except KafkaError as exc:
            raise ConnectorError(f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: {exc}") from exc
        # Learn the partitions now, not at the first record: kafka-python fetches one topic's metadata
        # at a time, about 0.5 s for the five, which would otherwise land inside the first chunk
        # (after its `published_at`), and a missing topic is reported before anything is read.
        try:
            partitions = self.partition_counts()
        except ConnectorError:
            self._producer.close()
            raise
        secret = settings.subject_secret.get_secret_value().encode()
        self.encoder = MessageEncoder(secret, settings.kafka, partitions)

    def partition_counts(self) -> dict[str, int]:
        """How many partitions each topic a connector writes to has, by full name, from the broker."""
        counts = {}
        for topic in (*DATASET_TOPICS, DEADLETTER):
            name = topic.full_name(self._settings.kafka)
            try:
                partitions = self._producer.partitions_for(name)
            except KafkaError as exc:
                raise ConnectorError(f"cannot learn the partitions of topic {name}: {exc}") from exc
            if not partitions:
                raise ConnectorError(f"topic {name} has no partitions: run `exchange topics ensure`")
            counts[name] = len(partitions)
        return counts

    def _failed(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc

    def send(self, message: Message) -> None:
        """Queue one ready message on its own partition."""
        if self._failure is not None:
            raise ConnectorError(f"the broker refused a record: {self._failure}") from self._failure
        self._producer.send(
            message.topic, key=message.key, value=message.value, partition=message.partition
        ).add_errback(self._failed)

    def send_all(self, messages: Iterable[RawMessage]) -> None:
        """Queue ready messages — `Message`s or their plain tuples — in order.

        `send` inlined: this loop, with kafka-python's `send`, is the sending process's whole work.
        """
        send, failed = self._producer.send, self._failed
        for topic, partition, key, value in messages:
            if self._failure is not None:
                raise ConnectorError(f"the broker refused a record: {self._failure}") from self._failure
            send(topic, key=key, value=value, partition=partition).add_errback(failed)

    def publish(self, topic: Topic, dataset: str, converted: Converted) -> None:
        """Queue one canonical record, keyed by its subject's HMAC key."""
        self.send(self.encoder.record(topic, dataset, converted))

    def dead_letter(self, **letter: Any) -> None:
        """Queue a rejected input with its reason, its native field and its original bytes (the arguments
        of `MessageEncoder.dead_letter`)."""
        self.send(self.encoder.dead_letter(**letter))

    def flush(self) -> None:
        """Return once the broker acknowledged everything queued; raise if it refused anything."""
        try:
            self._producer.flush()
        except KafkaError as exc:
            raise ConnectorError(f"flushing to Kafka failed: {exc}") from exc
        if self._failure is not None:
            raise ConnectorError(f"the broker refused a record: {self._failure}") from self._failure

    def close(self) -> None:
        """Flush and close the producer."""
        self._producer.close()
