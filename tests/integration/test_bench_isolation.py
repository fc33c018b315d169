"""A benchmark run leaves nothing behind on the shared stack: its topics, consumer groups and database
go however it ends, and its cleanup never reaches names that are not the run's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaAdminClient

from bench.isolation import isolated, run_settings
from exchange import admin
from exchange.settings import ExchangeSettings, PostgresSettings
from exchange.topics import IDENTITY_PERSON as IDENTITY


def _database_exists(postgres: PostgresSettings) -> bool:
    with psycopg.connect(postgres.conninfo("postgres")) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (postgres.database,)).fetchone()
    return found is not None


def _topics_and_groups(settings: ExchangeSettings) -> tuple[list[str], list[str]]:
    prefix = settings.kafka.topic_prefix
    client = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        topics = [name for name in client.list_topics() if name.startswith(prefix)]
        groups = [group["group_id"] for group in client.list_groups() if group["group_id"].startswith(prefix)]
    finally:
        client.close()
    return topics, groups


def _join_and_exit_without_leaving(settings: ExchangeSettings, group: str) -> None:
    """A consumer of `group` in a process of its own that exits as the faust floor does (`os._exit`):
    it stays a member of the group until its session times out."""
    code = f"""
import os
from kafka import KafkaConsumer
consumer = KafkaConsumer({IDENTITY.full_name(settings.kafka)!r}, group_id={group!r},
                         bootstrap_servers={settings.kafka.bootstrap_servers!r}, enable_auto_commit=False)
while not consumer.assignment():
    consumer.poll(timeout_ms=500)
consumer.commit()
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_run_leaves_no_topic_group_or_database(
    base_settings: ExchangeSettings,
    kafka_available: str,
    postgres_available: PostgresSettings,
    tmp_path: Path,
) -> None:
    bench = run_settings(base_settings, "isolation", tmp_path)
    assert bench.kafka.topic_prefix.startswith("bench-isolation-")
    assert bench.postgres.database.startswith("bench_isolation_")

    with isolated(bench):
        assert _database_exists(bench.postgres)
        admin.ensure_topics(bench.kafka)
        _join_and_exit_without_leaving(bench, f"{bench.kafka.topic_prefix}reader")
        topics, groups = _topics_and_groups(bench)
        assert IDENTITY.full_name(bench.kafka) in topics
        assert groups == [f"{bench.kafka.topic_prefix}reader"]

    assert _topics_and_groups(bench) == ([], [])
    assert not _database_exists(bench.postgres)


def test_the_database_goes_even_when_the_kafka_cleanup_fails(
    base_settings: ExchangeSettings, postgres_available: PostgresSettings, tmp_path: Path
) -> None:
    # Without a topic prefix the cleanup would match every topic and group of the cluster: it refuses,
    # and the run's database is dropped all the same.
    bench = run_settings(base_settings, "isolation", tmp_path)
    unprefixed = bench.model_copy(update={"kafka": bench.kafka.model_copy(update={"topic_prefix": ""})})

    with pytest.raises(ValueError, match="topic prefix"), isolated(unprefixed):
        assert _database_exists(unprefixed.postgres)

    assert not _database_exists(unprefixed.postgres)
