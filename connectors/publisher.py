"""The shared publisher: canonical records and dead letters to Kafka with kafka-python.

`acks=all` with idempotence (kafka-python 3's default, set explicitly here), LZ4-compressed batches.
A connector hands over a chunk of records, then calls `flush`, which returns only once the broker
acknowledged every one of them — only then may the connector store its position.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from connectors.exceptions import ConnectorError
from connectors.records import Converted, Rejection
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings
from exchange.subjects import subject_key
from exchange.topics import DEADLETTER, Topic

# Fixed forever, like the event namespace: a re-read rejection keeps its id.
DEADLETTER_NAMESPACE = uuid.UUID("0b8f3e8c-5d0e-4f8e-9a57-4d4c1ad9c0de")


class Publisher:
    """Publishes one connector's records; not thread-safe, one per connector run."""

    def __init__(self, settings: ExchangeSettings, *, client_id: str) -> None:
        self._settings = settings
        self._secret = settings.subject_secret.get_secret_value().encode()
        self._codec = AvroCodec()
        self._deadletter_topic = DEADLETTER.full_name(settings.kafka)
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

    def _failed(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc

    def _send(self, topic: str, key: bytes, value: bytes) -> None:
        if self._failure is not None:
            raise ConnectorError(f"the broker refused a record: {self._failure}") from self._failure
        self._producer.send(topic, key=key, value=value).add_errback(self._failed)

    def publish(self, topic: Topic, dataset: str, converted: Converted) -> None:
        """Queue one canonical record, keyed by its subject's HMAC key."""
        key = subject_key(converted.subject_id, self._secret).encode()
        self._send(topic.full_name(self._settings.kafka), key, self._codec.encode(dataset, converted.record))

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
    ) -> None:
        """Queue a rejected input with its reason, its native field and its original bytes."""
        record: dict[str, Any] = {
            "event_id": str(uuid.uuid5(DEADLETTER_NAMESPACE, f"{department}|{source}|{position}")),
            "department": department,
            "dataset": dataset,
            "source": source,
            "position": position,
            "reason": rejection.reason,
            "field": rejection.field,
            "message": rejection.message,
            "original": original,
            "rejected_at": dt.datetime.now(dt.UTC),
            "trace_id": trace_id,
        }
        self._send(self._deadletter_topic, department.encode(), self._codec.encode("deadletter", record))

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
