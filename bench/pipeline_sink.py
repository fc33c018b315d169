"""The sink of `exchange bench pipeline`: the real sink over everything on the topics, against a raw
COPY of the very same rows into a copy of its tables, 5000 rows per transaction."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import REGISTRY
from psycopg import sql

from consumers.sink import Sink
from consumers.sink.batch import Batch, Decoder
from consumers.sink.consumer import SinkSummary, sink_group
from consumers.sink.profiles import PROFILE_COLUMNS
from consumers.sink.tables import RECORD_TABLES, Row
from exchange.lag import stored_offsets
from exchange.settings import ExchangeSettings, PostgresSettings
from exchange.topics import PROFILE

RAW_SCHEMA = "bench_raw"
RAW_BATCH_ROWS = 5000
# The sink's tables, emptied before it runs again over the same topics.
SINK_TABLES = (*(table.name for table in RECORD_TABLES), "profiles", "profile_history", "consumer_offsets")
_COMMIT_SECONDS = "exchange_sink_commit_seconds_sum"


@dataclass(frozen=True)
class Sunk:
    """The sink's run: rows written between its first and its last committed batch and how long that
    took; its whole run (group join, first batch and the last idle check included); the part of the
    steady span spent in PostgreSQL transactions; whether it stopped at the time limit, not idle."""

    rows: int
    seconds: float
    wall_seconds: float
    total_rows: int
    batches: int
    transaction_seconds: float
    stopped: bool

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds


def empty_sink_tables(postgres: PostgresSettings) -> None:
    """Empty the sink's tables and stored offsets, so the next sink starts over from the beginning."""
    with psycopg.connect(postgres.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, SINK_TABLES))))


def run_sink(settings: ExchangeSettings, limit_seconds: float) -> Sunk:
    """The sink in this process, `until_idle` or at most `limit_seconds` after its first commit (it then
    commits the write in flight and stops), timed at each committed batch."""
    marks: list[tuple[float, int, float]] = []
    stop = threading.Event()

    def progress(summary: SinkSummary) -> None:
        marks.append((time.perf_counter(), summary.total, REGISTRY.get_sample_value(_COMMIT_SECONDS) or 0.0))
        if marks[-1][0] - marks[0][0] > limit_seconds:
            stop.set()

    started = time.perf_counter()
    summary = Sink(settings, progress=progress).run(stop, until_idle=True)
    wall = time.perf_counter() - started
    if len(marks) < 2:
        raise RuntimeError(f"the sink wrote {len(marks)} batch(es): too few to time")
    (first, first_rows, first_commit), (last, last_rows, last_commit) = marks[0], marks[-1]
    return Sunk(
        rows=last_rows - first_rows,
        seconds=last - first,
        wall_seconds=wall,
        total_rows=summary.total,
        batches=summary.batches,
        transaction_seconds=last_commit - first_commit,
        stopped=stop.is_set(),
    )


def stored(settings: ExchangeSettings) -> dict[TopicPartition, int]:
    """Where the sink's group stopped: the next offset PostgreSQL holds for each partition."""
    kafka = settings.kafka
    return dict(stored_offsets(settings.postgres, kafka.topic_prefix, 10.0).get(sink_group(kafka), {}))


@dataclass
class Rows:
    """Every row the sink writes for the topics' records, mapped as it maps them, and what mapping cost."""

    records: dict[str, list[Row]] = field(default_factory=dict)  # per record table
    profiles: list[Row] = field(default_factory=list)
    record_seconds: float = 0.0  # Avro decode + row mapping
    profile_seconds: float = 0.0  # Avro decode + profile document as JSON

    @property
    def total(self) -> int:
        return sum(map(len, self.records.values())) + len(self.profiles)


def read_rows(settings: ExchangeSettings, upto: dict[TopicPartition, int]) -> Rows:
    """Read the sink's topics from the beginning up to `upto` and map them with the sink's `Decoder`."""
    kafka = settings.kafka
    decoder = Decoder(kafka)
    profile_topic = PROFILE.full_name(kafka)
    batch = Batch()
    rows = Rows()
    for partition, messages in _read(settings, upto):
        started = time.perf_counter()
        decoder.add(batch, partition, messages)
        if partition.topic == profile_topic:
            rows.profile_seconds += time.perf_counter() - started
        else:
            rows.record_seconds += time.perf_counter() - started
    for table, parts in batch.tables():
        rows.records[table.name] = [row for part in parts for row in part]
    rows.profiles = batch.profile_rows()
    return rows


def _read(
    settings: ExchangeSettings, upto: dict[TopicPartition, int]
) -> Iterator[tuple[TopicPartition, list[Any]]]:
    """Each partition's records before its offset in `upto`, a poll at a time."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        wanted = {partition: end for partition, end in upto.items() if end > 0}
        consumer.assign(list(wanted))
        consumer.seek_to_beginning(*wanted)
        while wanted:
            for partition, messages in consumer.poll(timeout_ms=1000, max_records=RAW_BATCH_ROWS).items():
                taken = [message for message in messages if message.offset < wanted.get(partition, 0)]
                if taken:
                    yield partition, taken
            for partition in [tp for tp, end in wanted.items() if consumer.position(tp) >= end]:
                del wanted[partition]
                consumer.pause(partition)
    finally:
        consumer.close(autocommit=False)


def raw_copy(postgres: PostgresSettings, rows: Rows) -> float:
    """COPY `rows` into fresh copies of the tables, `RAW_BATCH_ROWS` per transaction; the seconds taken.

    The record tables are copied with their index and defaults; `profile_history`, the table that gets
    every profile row, with its compression (migration 0004) and its primary key's index made
    non-unique, as the same profile version may sit on the topic twice (the sink skips it, a raw COPY
    cannot).
    """
    with psycopg.connect(postgres.conninfo(), autocommit=True) as conn:
        _create_raw_tables(conn)
        work = [
            (_copy_statement(table.name, table.columns), rows.records.get(table.name, []))
            for table in RECORD_TABLES
        ]
        work.append((_copy_statement("profile_history", PROFILE_COLUMNS), rows.profiles))
        started = time.perf_counter()
        with conn.cursor() as cursor:
            for statement, table_rows in work:
                for start in range(0, len(table_rows), RAW_BATCH_ROWS):
                    with conn.transaction(), cursor.copy(statement) as copy:
                        for row in table_rows[start : start + RAW_BATCH_ROWS]:
                            copy.write_row(row)
        return time.perf_counter() - started


def _create_raw_tables(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    schema = sql.Identifier(RAW_SCHEMA)
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
    for table in RECORD_TABLES:
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                sql.Identifier(RAW_SCHEMA, table.name), sql.Identifier("public", table.name)
            )
        )
    history = sql.Identifier(RAW_SCHEMA, "profile_history")
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMPRESSION)"
        ).format(history, sql.Identifier("public", "profile_history"))
    )
    conn.execute(sql.SQL("CREATE INDEX ON {} (subject_key, version)").format(history))
    # Dated by its transaction, as the sink dates a version (consumers.sink.history).
    conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN valid_from SET DEFAULT now()").format(history))


def _copy_statement(name: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(RAW_SCHEMA, name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
