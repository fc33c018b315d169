"""Kafka administration at the edge: creating the exchange's declared topics."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from exchange.exceptions import StackError
from exchange.settings import KafkaSettings
from exchange.topics import ALL_TOPICS, Topic


def admin_client(kafka: KafkaSettings) -> KafkaAdminClient:
    """An admin client, or a `StackError` saying how to start Kafka."""
    try:
        return KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, request_timeout_ms=15000)
    except KafkaError as exc:
        raise StackError(
            f"cannot reach Kafka at {kafka.bootstrap_servers}: {exc}. "
            "Start it with `exchange stack up` (or `make stack`)."
        ) from exc


def ensure_topics(kafka: KafkaSettings, topics: tuple[Topic, ...] = ALL_TOPICS) -> list[str]:
    """Create the topics that do not exist yet and return their names; existing ones stay as they are."""
    admin = admin_client(kafka)
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                topic.full_name(kafka),
                topic.partitions(kafka),
                kafka.replication_factor,
                topic_configs=topic.configs(),
            )
            for topic in topics
            if topic.full_name(kafka) not in existing
        ]
        if missing:
            # Another process may create them between our list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        return [new.name for new in missing]
    except KafkaError as exc:
        raise StackError(f"cannot create topics on {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        admin.close()
