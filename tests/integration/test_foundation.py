"""The foundation on the real stack: topics, a record through the broker, migrations, stack status."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from pydantic import SecretStr

from exchange import admin, database, schemas, stack, topics
from exchange.exceptions import StackError
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings, KafkaSettings, PostgresSettings, StackSettings
from exchange.stack.postgres import PostgresCluster
from exchange.subjects import subject_key

NOW = dt.datetime(2026, 11, 15, 1, 2, 3, 456000, tzinfo=dt.UTC)


def _person() -> dict[str, object]:
    return {
        "envelope": {
            "event_id": str(uuid.uuid4()),
            "department": "identity",
            "dataset": "identity.person",
            "source_record_id": "44010220011028323X",
            "source_version": 2,
            "op": "upsert",
            "occurred_at": NOW,
            "published_at": NOW,
            "trace_id": "t-1",
        },
        "citizen_id": "44010220011028323X",
        "name": "何䶮",
        "sex": "male",
        "ethnicity": "01",
        "birth_date": dt.date(2001, 10, 28),
        "address": '广州市工业大道474号之一,"东"座',
        "district": "440106",
        "household_type": "collective",
        "status": "deceased",
    }


def test_stack_status_reports_both_services_healthy(
    base_settings: ExchangeSettings, kafka_available: str, postgres_available: PostgresSettings
) -> None:
    services = {service.name: service for service in stack.status(base_settings)}
    assert services["kafka"].healthy and services["kafka"].version == "4.3.1"
    assert services["postgresql"].healthy and services["postgresql"].version
    assert services["postgresql"].address.startswith("postgresql://")


def test_topics_are_created_once_with_the_declared_layout(kafka_settings: KafkaSettings) -> None:
    created = admin.ensure_topics(kafka_settings)
    assert sorted(created) == sorted(topic.full_name(kafka_settings) for topic in topics.ALL_TOPICS)
    assert admin.ensure_topics(kafka_settings) == []
    client = admin.admin_client(kafka_settings)
    try:
        described = {
            t["name"]: t
            for t in client.describe_topics([t.full_name(kafka_settings) for t in topics.DATASET_TOPICS])
        }
    finally:
        client.close()
    assert {len(t["partitions"]) for t in described.values()} == {kafka_settings.subject_partitions}


def test_an_existing_topic_unlike_its_declaration_is_named_in_a_warning(
    kafka_settings: KafkaSettings, caplog: pytest.LogCaptureFixture
) -> None:
    # ensure_topics looked at names only: a dead-letter topic made with a day's retention stayed so
    # in silence, and dead letters older than a day were lost.
    kafka_settings = kafka_settings.model_copy(
        update={"topic_prefix": f"{kafka_settings.topic_prefix}unlike."}
    )
    name = topics.DEADLETTER.full_name(kafka_settings)
    client = admin.admin_client(kafka_settings)
    try:
        configs = {"cleanup.policy": "delete", "retention.ms": str(24 * 3600 * 1000)}
        client.create_topics([NewTopic(name, 2, 1, topic_configs=configs)], wait_for_metadata=True)
    finally:
        client.close()
    with caplog.at_level(logging.WARNING, logger="exchange.admin"):
        assert admin.ensure_topics(kafka_settings, (topics.DEADLETTER,)) == []
    text = " ".join(record.getMessage() for record in caplog.records)
    assert f"topic {name} has retention.ms=86400000, declared 31536000000" in text
    assert f"topic {name} has 2 partitions, declared {topics.DEADLETTER.partitions(kafka_settings)}" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="exchange.admin"):
        admin.ensure_topics(kafka_settings, (topics.IDENTITY_PERSON,))  # created as declared: no warning
        admin.ensure_topics(kafka_settings, (topics.IDENTITY_PERSON,))
    # The exchange's warnings only: kafka-python's own (a slow poll on a busy machine) are not the check.
    assert [record.getMessage() for record in caplog.records if record.name == "exchange.admin"] == []


def test_the_schema_set_is_on_its_topic_for_outside_readers(kafka_settings: KafkaSettings) -> None:
    admin.ensure_topics(kafka_settings, (topics.SCHEMAS,))
    assert admin.publish_schemas(kafka_settings) == admin.publish_schemas(kafka_settings)  # again: the same
    consumer = KafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers, enable_auto_commit=False)
    try:
        name = topics.SCHEMAS.full_name(kafka_settings)
        partitions = [TopicPartition(name, p) for p in range(topics.SCHEMAS.partitions(kafka_settings))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: dict[bytes, dict[str, Any]] = {}
        while any(consumer.position(p) < ends[p] for p in partitions):
            for messages in consumer.poll(timeout_ms=2000).values():
                found.update((message.key, json.loads(message.value)) for message in messages)
    finally:
        consumer.close()
    # Every version a record may carry, each under the fingerprint its header has, its schema that very one.
    assert {key.decode() for key in found} == {v.fingerprint.hex() for v in schemas.all_versions()}
    for key, document in found.items():
        canonical = to_parsing_canonical_form(parse_schema(document["schema"]))
        assert fingerprint(canonical, "CRC-64-AVRO") == key.decode()
        assert document["name"] in schemas.RECORD_SCHEMAS
    codec = AvroCodec()
    record = {
        "subject_key": "k",
        "version": 1,
        **{
            name: {"records": 0, "numbers": b"", "text": "", "dictionary": []}
            for name in ("persons", "payments", "contributions", "titles")
        },
    }
    header = codec.encode("ledger", record)[2:10]
    assert found[header.hex().encode()]["name"] == "ledger"


def test_an_encoded_record_goes_through_the_real_broker(kafka_settings: KafkaSettings) -> None:
    admin.ensure_topics(kafka_settings, (topics.IDENTITY_PERSON,))
    name = topics.IDENTITY_PERSON.full_name(kafka_settings)
    codec = AvroCodec()
    record = _person()
    key = subject_key(str(record["citizen_id"]), b"test-secret").encode()
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
    metadata = producer.send(name, key=key, value=codec.encode("identity.person", record)).get(timeout=30)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers, enable_auto_commit=False)
    partition = TopicPartition(name, metadata.partition)
    consumer.assign([partition])
    consumer.seek(partition, metadata.offset)
    batch = consumer.poll(timeout_ms=10000, max_records=1)
    consumer.close()
    [message] = batch[partition]
    assert message.key == key
    assert codec.decode(message.value) == ("identity.person", record)


def test_the_exchange_reaches_the_stacks_postgresql_through_its_socket(
    base_settings: ExchangeSettings, postgres_available: PostgresSettings
) -> None:
    # Over loopback TCP a query costs the client more CPU (`exchange bench postgres`). The socket trusts
    # whoever reaches it, so only the cluster's owner and root may.
    cluster = PostgresCluster(base_settings.stack, postgres_available)
    with psycopg.connect(postgres_available.conninfo()) as conn:
        assert conn.info.host == str(cluster.socket_dir), (
            f"connected to {conn.info.host}, not through the stack's socket: run the tests from the "
            "folder the stack was started in (its EXCHANGE_STACK__HOME is relative)"
        )
    assert stat.S_IMODE(cluster.socket_dir.stat().st_mode) == 0o700


def test_the_stack_is_healthy_only_if_the_exchanges_password_works(
    base_settings: ExchangeSettings, postgres_available: PostgresSettings
) -> None:
    # The socket lets the exchange's role in without a password; TCP does not. Asked through the socket,
    # `exchange stack status` called a stack with a wrong password healthy.
    wrong = postgres_available.model_copy(update={"password": SecretStr("not-the-password")})
    assert PostgresCluster(base_settings.stack, postgres_available).version() is not None
    assert PostgresCluster(base_settings.stack, wrong).version() is None


def test_migrations_are_applied_once_and_recorded(postgres_settings: PostgresSettings) -> None:
    shipped = database.migrations()
    assert [m.version for m in database.migrate(postgres_settings)] == [m.version for m in shipped]
    assert database.migrate(postgres_settings) == []
    with psycopg.connect(postgres_settings.conninfo()) as conn:
        recorded = conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY version").fetchall()
        tables = {
            row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert recorded == [(m.version, m.checksum) for m in shipped]
    assert "consumer_offsets" in tables


def test_a_changed_migration_is_refused(postgres_settings: PostgresSettings) -> None:
    database.migrate(postgres_settings)
    with psycopg.connect(postgres_settings.conninfo()) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    try:
        database.migrate(postgres_settings)
    except Exception as exc:
        assert "was changed after it was applied" in str(exc)
    else:
        raise AssertionError("a changed migration was accepted")


def test_the_exchange_role_may_end_an_autovacuum_worker(postgres_available: PostgresSettings) -> None:
    # DROP DATABASE … WITH (FORCE) failed in CI when autovacuum was busy in the dropped database: ending
    # that worker takes pg_signal_backend.
    with psycopg.connect(postgres_available.conninfo()) as conn:
        row = conn.execute("SELECT pg_has_role(current_user, 'pg_signal_backend', 'MEMBER')").fetchone()
    assert row == (True,)


def test_a_cluster_folder_the_postgres_user_cannot_enter_names_the_setting_to_change() -> None:
    # As root (how `make` runs here) the server runs as postgres; under a folder closed to other users
    # (/root is 0700) initdb failed with a bare "permission denied".
    assert os.geteuid() == 0, "the stack runs PostgreSQL as the postgres user when run as root (make test)"
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:  # pytest's tmp_path is itself closed
        Path(folder).chmod(0o755)
        closed = Path(folder) / "closed"
        closed.mkdir(mode=0o700)
        cluster = PostgresCluster(StackSettings(home=closed / ".stack"), PostgresSettings())
        with pytest.raises(StackError, match=r"postgres user.*EXCHANGE_STACK__HOME"):
            cluster._prepare_folder()
        closed.chmod(0o755)
        cluster._prepare_folder()  # open: no complaint
