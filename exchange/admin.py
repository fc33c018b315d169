"""Kafka administration at the edge: creating the exchange's declared topics, removing a run's own."""

from __future__ import annotations

import json
import logging
import time

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, MemberToRemove, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from exchange import schemas
from exchange.exceptions import StackError
from exchange.settings import KafkaSettings
from exchange.topics import ALL_TOPICS, SCHEMAS, Topic

_log = logging.getLogger("exchange.admin")


def kafka_unreachable(kafka: KafkaSettings, exc: KafkaError) -> StackError:
    """The error for a client that could not reach Kafka, saying how to start it."""
    return StackError(
        f"cannot reach Kafka at {kafka.bootstrap_servers}: {exc}. "
        "Start it with `exchange stack up` (or `make stack`)."
    )


def admin_client(kafka: KafkaSettings) -> KafkaAdminClient:
    """An admin client, or a `StackError` saying how to start Kafka."""
    try:
        return KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, request_timeout_ms=15000)
    except KafkaError as exc:
        raise kafka_unreachable(kafka, exc) from exc


def ensure_topics(kafka: KafkaSettings, topics: tuple[Topic, ...] = ALL_TOPICS) -> list[str]:
    """Create the topics that do not exist yet and return their names; existing ones stay as they are,
    each way they differ from their declaration (partitions, cleanup, retention) logged as a warning."""
    admin = admin_client(kafka)
    try:
        existing = set(admin.list_topics())
        for problem in _differences(admin, kafka, [t for t in topics if t.full_name(kafka) in existing]):
            _log.warning("%s; the exchange leaves existing topics as they are: change it by hand", problem)
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
        if not missing:
            return []
        # Per topic: another process may create one between our list and create (already exists: not
        # ours). Whatever this call returns, the topics are in the broker's metadata with their leaders,
        # so a list, a describe or a producer right after it sees them: read too early, the metadata
        # had once listed none of them, and a second call "created" them all again.
        answered = admin.create_topics(missing, raise_errors=False)["topics"]
        created, refused = [], []
        for topic in answered:
            if topic["error_code"] == 0:
                created.append(topic["name"])
            elif topic["error_code"] != TopicAlreadyExistsError.errno:
                refused.append(f"{topic['name']}: {topic.get('error_message') or topic['error_code']}")
        if refused:
            raise StackError(f"Kafka refused to create topics: {'; '.join(refused)}")
        names = [new.name for new in missing]
        admin.wait_for_topics(names, timeout_ms=30_000)
        return [name for name in names if name in created]
    except KafkaError as exc:
        raise StackError(f"cannot create topics on {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        admin.close()


def _differences(admin: KafkaAdminClient, kafka: KafkaSettings, topics: list[Topic]) -> list[str]:
    """How existing `topics` differ from their declaration: a dead-letter topic made with finite
    retention, a profile topic not compacted, another partition count than the subject topics'."""
    declared = {topic.full_name(kafka): topic for topic in topics}
    if not declared:
        return []
    problems = []
    for described in admin.describe_topics(list(declared)):
        name, count = described["name"], len(described["partitions"])
        if name in declared and count != declared[name].partitions(kafka):
            problems.append(
                f"topic {name} has {count} partitions, declared {declared[name].partitions(kafka)}"
            )
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in declared]
    configs = admin.describe_configs(resources, config_filter="all")["topic"]
    for name, topic in declared.items():
        for key, wanted in topic.configs().items():
            actual = configs.get(name, {}).get(key, {}).get("value")
            if actual != wanted:
                problems.append(f"topic {name} has {key}={actual}, declared {wanted}")
    return problems


def publish_schemas(kafka: KafkaSettings) -> int:
    """Put the schema set on `exchange.schemas.v1` for outside readers, one JSON document per version
    keyed by its fingerprint (`schemas.documents`); the topic is compacted, so publishing again changes
    nothing. Returns the versions published; `StackError` when Kafka cannot be reached."""
    documents = schemas.documents()
    try:
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    except KafkaError as exc:
        raise kafka_unreachable(kafka, exc) from exc
    try:
        topic = SCHEMAS.full_name(kafka)
        for key, document in documents.items():
            producer.send(topic, key=key.encode(), value=json.dumps(document, ensure_ascii=False).encode())
        producer.flush(timeout=30)
    except KafkaError as exc:
        raise kafka_unreachable(kafka, exc) from exc
    finally:
        producer.close()
    return len(documents)


def remove_prefixed(kafka: KafkaSettings, wait_seconds: float = 0.0) -> None:
    """Delete every topic and consumer group named under `kafka.topic_prefix`: what a test, a benchmark
    run or the demo made under a prefix of its own. An empty prefix would match the whole cluster:
    refused.

    A group still holding a member (a process killed, or one that exited without leaving, stays a
    member until its session times out) has the member removed first: the broker refuses to delete a
    group with members. A group it still refuses (a consumer that joined again) is logged, not raised.

    A topic's deletion completes after the request returns; with `wait_seconds`, wait up to that long
    until the broker no longer lists the topics (before creating topics of the same names again)."""
    prefix = kafka.topic_prefix
    if not prefix:
        raise ValueError("only names under a topic prefix of their own are removed; this one is empty")
    admin = admin_client(kafka)
    try:
        topics = [name for name in admin.list_topics() if name.startswith(prefix)]
        if topics:
            admin.delete_topics(topics)
        groups = [group["group_id"] for group in admin.list_groups() if group["group_id"].startswith(prefix)]
        if groups:
            _delete_groups(admin, groups)
        deadline = time.monotonic() + wait_seconds
        while topics and time.monotonic() < deadline:
            time.sleep(0.2)
            topics = [name for name in admin.list_topics() if name.startswith(prefix)]
    finally:
        admin.close()


def _delete_groups(admin: KafkaAdminClient, groups: list[str]) -> None:
    for group, described in admin.describe_groups(groups).items():
        members = [MemberToRemove(member_id=member["member_id"]) for member in described["members"]]
        if members:
            admin.remove_group_members(group, members)
    for group, outcome in admin.delete_groups(groups).items():
        if outcome != "OK":
            _log.warning("consumer group %s was not deleted: %s", group, outcome)
