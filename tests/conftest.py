"""Shared fixtures. Integration fixtures use the real Kafka and PostgreSQL of `exchange stack up`;
when one is not running the test fails (never skips) and says how to start it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from psycopg import sql

from exchange import admin
from exchange.settings import ExchangeSettings, KafkaSettings, PostgresSettings

_HOW_TO_START = "start the stack with `make stack` (or `.venv/bin/exchange stack up`)"


@pytest.fixture(scope="session")
def base_settings() -> ExchangeSettings:
    """The settings the local stack runs with (environment overrides apply, as in every process)."""
    return ExchangeSettings()


@pytest.fixture(scope="session")
def kafka_available(base_settings: ExchangeSettings) -> str:
    """The bootstrap address of a broker that answers."""
    servers = base_settings.kafka.bootstrap_servers
    try:
        client = KafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=5000)
        client.describe_cluster()
        client.close()
    except KafkaError as exc:
        pytest.fail(f"Kafka is not reachable at {servers} ({exc}): {_HOW_TO_START}", pytrace=False)
    return servers


@pytest.fixture(scope="session")
def postgres_available(base_settings: ExchangeSettings) -> PostgresSettings:
    """The settings of a PostgreSQL that answers."""
    try:
        psycopg.connect(base_settings.postgres.conninfo(), connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {base_settings.postgres.url()} ({exc}): {_HOW_TO_START}",
            pytrace=False,
        )
    return base_settings.postgres


@pytest.fixture
def kafka_settings(kafka_available: str, base_settings: ExchangeSettings) -> Iterator[KafkaSettings]:
    """Kafka settings with a topic prefix of this test's own, so tests never see each other's records;
    the test's topics and consumer groups are deleted afterwards."""
    kafka = base_settings.kafka.model_copy(update={"topic_prefix": f"test-{uuid.uuid4().hex[:10]}."})
    yield kafka
    admin.remove_prefixed(kafka)


@pytest.fixture
def postgres_settings(postgres_available: PostgresSettings) -> Iterator[PostgresSettings]:
    """A fresh database of this test's own, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_available.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield postgres_available.model_copy(update={"database": name})
    with psycopg.connect(postgres_available.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def settings(
    base_settings: ExchangeSettings, kafka_settings: KafkaSettings, postgres_settings: PostgresSettings
) -> ExchangeSettings:
    """Whole-process settings isolated for one integration test."""
    return base_settings.model_copy(update={"kafka": kafka_settings, "postgres": postgres_settings})
