"""`exchange sink` on the real Kafka and PostgreSQL: rows, current views, profiles and their history,
exactly once across restarts, crashes, lost connections and a second sink in the group."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import Future
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from bench.profile_codec import build_profile
from consumers.exceptions import OffsetConflictError, UndecodableRecordError
from consumers.rebuild import rebuild
from consumers.sink import Sink, SinkOptions, SinkSummary, sink_group
from consumers.sink.batch import Batch, Decoder
from consumers.sink.consumer import _Loop
from consumers.sink.offsets import load_offsets, save_offsets
from consumers.sink.tables import RECORD_TABLES
from exchange import admin, database
from exchange.api.storage.documents import profile_from_document
from exchange.profile import Event, apply, empty_ledger, profile_of, to_avro
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings
from exchange.subjects import subject_key
from exchange.topics import IDENTITY_PERSON, PROFILE, TAX_PAYMENT, Topic
from exchange.topics import PROPERTY_TITLE as PROPERTY
from exchange.topics import SOCIAL_CONTRIBUTION as SOCIAL

Record = dict[str, Any]
AT = dt.datetime(2026, 3, 4, 5, 6, 7, 8000, tzinfo=dt.UTC)
CITIZEN = "440102195607099506"
CO_OWNER = "44010220011028323X"
_NAMESPACE = uuid.UUID("8d7e4b7a-2a55-4a8b-bb1e-52f1c8a0f3a9")
codec = AvroCodec()


# --- records -------------------------------------------------------------------------------------


def envelope(dataset: str, record_id: str, version: int, op: str) -> Record:
    department = dataset.split(".")[0]
    return {
        "event_id": str(uuid.uuid5(_NAMESPACE, f"{department}|{record_id}|{version}")),
        "department": department,
        "dataset": dataset,
        "source_record_id": record_id,
        "source_version": version,
        "op": op,
        "occurred_at": AT,
        "published_at": AT + dt.timedelta(minutes=version),
        "trace_id": "trace",
    }


def contribution(line: str, version: int = 1, op: str = "upsert", base: str = "8000.00") -> Record:
    return {
        "envelope": envelope("social.contribution", line, version, op),
        "citizen_id": CITIZEN,
        "name": "刘秀英",
        "insurance_type": "medical",
        "month": dt.date(2026, 1, 1),
        "employer_id": "9144011470K239T3E2",
        "employer_name": "广州餐饮有限公司",
        "base": Decimal(base),
        "employer_amount": Decimal("1120.00"),
        "personal_amount": Decimal("640.50"),
        "status": "paid",
    }


def title(owner: str, share: str, version: int = 1, op: str = "upsert") -> Record:
    other = CO_OWNER if owner == CITIZEN else CITIZEN
    record = {
        "envelope": envelope("property.title", "粤(2020)广州市不动产权第0012345号", version, op),
        "certificate_no": "粤(2020)广州市不动产权第0012345号",
        "unit_no": "440106042724487172GB06681913",
        "owner_id": owner,
        "share": Decimal(share),
        "co_owners": [{"owner_id": other, "share": Decimal("100.00") - Decimal(share)}],
        "location": "广州市天河区某路157号102房",
        "district": "440106",
        "use": "residential",
        "area": Decimal("89.07"),
        "registered_at": AT,
        "status": "current",
        "mortgaged": False,
        "seized": True,
    }
    # Each owner's record of a title has an event id of its own, as the property connector makes it.
    record["envelope"]["event_id"] = str(uuid.uuid5(_NAMESPACE, f"property|{owner}|{version}"))
    return record


def person() -> Record:
    return {
        "envelope": envelope("identity.person", CITIZEN, 1, "upsert"),
        "citizen_id": CITIZEN,
        "name": "何䶮",
        "sex": "male",
        "ethnicity": "01",
        "birth_date": dt.date(1956, 7, 9),
        "address": '广州市工业大道474号之一,"东"座',
        "district": "440106",
        "household_type": "collective",
        "status": "normal",
    }


def payment() -> Record:
    return {
        "envelope": envelope("tax.payment", "V-1", 1, "upsert"),
        "citizen_id": CITIZEN,
        "name": "何䶮",
        "income_item": "wages",
        "period_start": dt.date(2026, 1, 1),
        "period_end": dt.date(2026, 1, 31),
        "income": Decimal("12345.67"),
        "tax_paid": Decimal("-0.01"),
        "withholding_agent": None,
        "credited_on": dt.date(2026, 2, 15),
        "tax_office": "14401060000",
    }


def profile_record(key: str, lines: int, updated_at: dt.datetime) -> Record:
    """A profile after folding `lines` contribution lines (version = lines), as the processor emits it."""
    folded = empty_ledger(key)
    for number in range(lines):
        folded = apply(folded, Event("social.contribution", contribution(f"L{number}"), "s", 0, number))
    return {**to_avro(profile_of(folded)), "updated_at": updated_at, "latest_published_at": AT}


# --- Kafka and PostgreSQL helpers ----------------------------------------------------------------


def key_of(settings: ExchangeSettings, citizen_id: str) -> bytes:
    return subject_key(citizen_id, settings.subject_secret.get_secret_value().encode()).encode()


def produce(settings: ExchangeSettings, items: Iterable[tuple[Topic, bytes | None, bytes | None]]) -> None:
    """Send (topic, key, value) in order and wait for the broker to acknowledge them all."""
    admin.ensure_topics(settings.kafka)
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", linger_ms=5)
    try:
        for topic, key, value in items:
            producer.send(topic.full_name(settings.kafka), key=key, value=value)
        producer.flush()
    finally:
        producer.close()


def records(settings: ExchangeSettings, topic: Topic, citizen_id: str, *items: Record) -> None:
    key = key_of(settings, citizen_id)
    produce(settings, [(topic, key, codec.encode(str(topic.schema), item)) for item in items])


def profiles(settings: ExchangeSettings, *items: Record) -> None:
    produce(
        settings, [(PROFILE, item["subject_key"].encode(), codec.encode("profile", item)) for item in items]
    )


def run_sink(settings: ExchangeSettings, batch: int = 5000, **kwargs: Any) -> SinkSummary:
    options = SinkOptions(max_batch_records=batch, retry_backoff_seconds=0.05)
    return Sink(settings, options, **kwargs).run(until_idle=True)


def query(settings: ExchangeSettings, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        return conn.execute(statement, params).fetchall()


def current_social(settings: ExchangeSettings) -> dict[str, tuple[int, str]]:
    rows = query(settings, "SELECT source_record_id, source_version, op FROM social_contribution_current")
    return {record_id: (version, op) for record_id, version, op in rows}


def offsets(settings: ExchangeSettings) -> dict[tuple[str, int], int]:
    rows = query(
        settings,
        "SELECT topic, kafka_partition, next_offset FROM consumer_offsets WHERE consumer_group = %s",
        sink_group(settings.kafka),
    )
    return {(topic, partition): offset for topic, partition, offset in rows}


def log_ends(settings: ExchangeSettings, topic: Topic) -> dict[tuple[str, int], int]:
    """The end offset of every non-empty partition of `topic`."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        name = topic.full_name(settings.kafka)
        partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        ends = consumer.end_offsets(partitions)
    finally:
        consumer.close()
    return {(p.topic, p.partition): end for p, end in ends.items() if end}


# --- tests ---------------------------------------------------------------------------------------


def test_every_dataset_lands_in_its_table_with_types_and_lineage(settings: ExchangeSettings) -> None:
    records(settings, SOCIAL, CITIZEN, contribution("L1"))
    records(settings, PROPERTY, CITIZEN, title(CITIZEN, "62.50"))
    records(settings, IDENTITY_PERSON, CITIZEN, person())
    records(settings, TAX_PAYMENT, CITIZEN, payment())

    summary = run_sink(settings)

    assert summary.rows == {
        "social_contribution_records": 1,
        "property_title_records": 1,
        "identity_person_records": 1,
        "tax_payment_records": 1,
    }
    key = key_of(settings, CITIZEN).decode()
    [social] = query(
        settings,
        "SELECT event_id, subject_key, op, published_at, topic, kafka_offset, base, month, sunk_at "
        "FROM social_contribution_records",
    )
    assert social[:6] == (
        uuid.UUID(contribution("L1")["envelope"]["event_id"]),
        key,
        "upsert",
        AT + dt.timedelta(minutes=1),
        SOCIAL.full_name(settings.kafka),
        0,
    )
    assert (social[6], social[7]) == (Decimal("8000.00"), dt.date(2026, 1, 1))
    assert social[8] >= social[3]
    [(share, co_owners, seized, registered_at)] = query(
        settings, "SELECT share, co_owners, seized, registered_at FROM property_title_records"
    )
    assert (share, co_owners, seized, registered_at) == (
        Decimal("62.50"),
        [{"owner_id": CO_OWNER, "share": "37.50"}],
        True,
        AT,
    )
    [(tax_paid, agent)] = query(settings, "SELECT tax_paid, withholding_agent FROM tax_payment_records")
    assert (tax_paid, agent) == (Decimal("-0.01"), None)
    [(name, address)] = query(settings, "SELECT name, address FROM identity_person_current")
    assert (name, address) == ("何䶮", '广州市工业大道474号之一,"东"座')
    # The COPY column lists and the migration agree: every column but sunk_at is written.
    for table in RECORD_TABLES:
        columns = query(
            settings, "SELECT column_name FROM information_schema.columns WHERE table_name = %s", table.name
        )
        assert sorted(name for (name,) in columns) == sorted([*table.columns, "sunk_at"])
    assert len(offsets(settings)) == 4


def test_the_current_view_keeps_the_highest_version_and_hides_revoked_records(
    settings: ExchangeSettings,
) -> None:
    records(
        settings,
        SOCIAL,
        CITIZEN,
        contribution("late-lower", version=2, base="2.00"),
        contribution("late-lower", version=1, base="1.00"),  # arrives after the higher version
        contribution("revoked", version=1),
        contribution("revoked", version=2, op="revoke"),
        contribution("resent", version=1),
        contribution("resent", version=1),  # a connector re-sent its chunk: the same event id twice
        contribution("void-same-version", version=3),
        contribution("void-same-version", version=3, op="revoke"),
        contribution("revived", version=1, op="revoke"),
        contribution("revived", version=2),
    )
    run_sink(settings)

    assert current_social(settings) == {
        "late-lower": (2, "upsert"),
        "resent": (1, "upsert"),
        "revived": (2, "upsert"),
    }
    [(base,)] = query(
        settings, "SELECT base FROM social_contribution_current WHERE source_record_id = 'late-lower'"
    )
    assert base == Decimal("2.00")
    assert query(settings, "SELECT count(*) FROM social_contribution_records") == [(10,)]
    assert query(settings, "SELECT count(DISTINCT event_id) FROM social_contribution_records") == [(8,)]

    # A title of two owners is a record per owner; a later version drops one owner with a revoke.
    records(settings, PROPERTY, CITIZEN, title(CITIZEN, "50.00"))
    records(settings, PROPERTY, CO_OWNER, title(CO_OWNER, "50.00"))
    run_sink(settings)
    owners = "SELECT owner_id, share FROM property_title_current"
    assert sorted(query(settings, owners)) == [(CITIZEN, Decimal("50.00")), (CO_OWNER, Decimal("50.00"))]
    records(settings, PROPERTY, CITIZEN, title(CITIZEN, "100.00", version=2))
    records(settings, PROPERTY, CO_OWNER, title(CO_OWNER, "0.00", version=2, op="revoke"))
    run_sink(settings)
    assert query(settings, owners) == [(CITIZEN, Decimal("100.00"))]


def test_a_stopped_and_restarted_sink_loses_nothing_and_doubles_nothing(settings: ExchangeSettings) -> None:
    records(settings, SOCIAL, CITIZEN, *(contribution(f"A{n}") for n in range(300)))
    records(settings, SOCIAL, CO_OWNER, *(contribution(f"B{n}") for n in range(300)))
    stop = threading.Event()

    def stop_after_two_batches(summary: SinkSummary) -> None:
        if summary.batches == 2:
            stop.set()  # what SIGTERM does: the write in flight commits, then the sink returns

    options = SinkOptions(max_batch_records=100)
    first = Sink(settings, options, progress=stop_after_two_batches).run(stop)
    assert first.batches == 2 and first.total == 200
    assert query(settings, "SELECT count(*) FROM social_contribution_records") == [(200,)]

    second = Sink(settings, options).run(until_idle=True)
    assert second.total == 400
    records(settings, SOCIAL, CITIZEN, *(contribution(f"C{n}") for n in range(50)))
    assert run_sink(settings).total == 50
    assert run_sink(settings).total == 0

    rows = "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM social_contribution_records"
    assert query(settings, rows) == [(650, 650)]
    assert offsets(settings) == log_ends(settings, SOCIAL)


def test_a_crash_before_commit_leaves_no_rows_and_the_next_run_writes_each_once(
    settings: ExchangeSettings,
) -> None:
    records(settings, SOCIAL, CITIZEN, *(contribution(f"L{n}") for n in range(250)))
    records(settings, PROPERTY, CITIZEN, title(CITIZEN, "100.00"))
    profiles(settings, profile_record(key_of(settings, CITIZEN).decode(), 2, AT))
    calls = 0

    def crash_in_the_second_batch() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("simulated crash between COPY and COMMIT")

    with pytest.raises(RuntimeError, match="simulated crash"):
        run_sink(settings, batch=100, before_commit=crash_in_the_second_batch)
    written = query(
        settings,
        "SELECT (SELECT count(*) FROM social_contribution_records) + (SELECT count(*) FROM "
        "property_title_records) + (SELECT count(*) FROM profile_history)",
    )[0][0]
    # The first batch at most, and exactly what the stored offsets cover (every partition began at 0).
    assert written <= 100
    assert sum(offsets(settings).values()) == written

    run_sink(settings, batch=100)
    rows = "SELECT count(*), count(DISTINCT kafka_offset) FROM social_contribution_records"
    assert query(settings, rows) == [(250, 250)]
    assert query(settings, "SELECT count(*) FROM property_title_records") == [(1,)]
    assert query(settings, "SELECT count(*), max(version) FROM profile_history") == [(1, 2)]


def test_a_lost_connection_is_retried_and_the_batch_written_once(settings: ExchangeSettings) -> None:
    records(settings, SOCIAL, CITIZEN, *(contribution(f"L{n}") for n in range(120)))
    killed = 0

    def kill_the_writers_connection() -> None:
        # The writer's transaction is idle while this runs: terminating its backend makes COMMIT fail
        # with an OperationalError, as a PostgreSQL restart or a network cut would.
        nonlocal killed
        if killed < 2:
            killed += query(
                settings,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND state = 'idle in transaction'",
            )[0][0]

    summary = run_sink(settings, batch=50, before_commit=kill_the_writers_connection)
    assert killed == 2
    assert summary.total == 120
    rows = "SELECT count(*), count(DISTINCT kafka_offset) FROM social_contribution_records"
    assert query(settings, rows) == [(120, 120)]


def test_profiles_keep_the_highest_version_and_a_history_dated_by_the_sink(
    settings: ExchangeSettings,
) -> None:
    """A version is dated from the sink's transaction, when the exchange could first answer with it: dated
    from when the processor emitted it, an as-of query for the minutes a lagging sink had not written it
    yet gave it, though every query made in those minutes had answered with the version before."""
    key = key_of(settings, CITIZEN).decode()
    other = key_of(settings, CO_OWNER).decode()
    t1, t2, t3, t4 = (AT + dt.timedelta(hours=hours) for hours in (1, 2, 3, 4))  # the processor's times
    history = (
        "SELECT version, valid_from, valid_to FROM profile_history WHERE subject_key = %s ORDER BY version"
    )
    as_of = (
        "SELECT version, profile->>'version' FROM profile_history WHERE subject_key = %s "
        "AND valid_from <= %s AND %s < coalesce(valid_to, 'infinity')"
    )

    def at(instant: dt.datetime) -> list[tuple[Any, ...]]:
        return query(settings, as_of, key, instant, instant)

    ((before,),) = query(settings, "SELECT now()")
    profiles(settings, profile_record(key, 1, t1), profile_record(key, 2, t2), profile_record(other, 1, t1))
    run_sink(settings)
    (v1, v2) = query(settings, history, key)
    written = v2[1]
    assert written > before and v1[1] <= written and v1[2] == written and v2[2] is None
    assert query(settings, "SELECT subject_key, version, updated_at FROM profiles ORDER BY version DESC") == [
        (key, 2, written),
        (other, 1, query(settings, history, other)[0][1]),
    ]
    # When the processor emitted them, the exchange did not have them yet.
    assert at(t2) == [] and at(before) == []
    assert at(written) == [(2, "2")]
    # The profile documents keep the processor's times.
    assert query(settings, "SELECT profile->>'updated_at' FROM profiles WHERE subject_key = %s", key) == [
        (t2.isoformat(),)
    ]

    # Versions out of order (v4 before v3) and a re-sent v2: the chain is mended, the current stays v4,
    # and the re-sent v2 keeps its first row.
    profiles(settings, profile_record(key, 4, t4), profile_record(key, 3, t3), profile_record(key, 2, t4))
    run_sink(settings)
    rows = query(settings, history, key)
    later = rows[3][1]
    assert later > written
    assert rows == [(1, v1[1], written), (2, written, rows[2][1]), (3, rows[2][1], later), (4, later, None)]
    assert query(settings, "SELECT version, updated_at FROM profiles WHERE subject_key = %s", key) == [
        (4, later)
    ]
    assert at(later) == [(4, "4")] and at(later - dt.timedelta(microseconds=1)) == [(2, "2")]

    # One version sent twice in one batch (a processor's replay re-emits it): its first copy is kept,
    # as a sink that met the copies in two batches keeps it.
    profiles(settings, profile_record(other, 2, t2), profile_record(other, 2, t3))
    run_sink(settings)
    kept = query(
        settings,
        "SELECT version, profile->>'updated_at' FROM profile_history WHERE subject_key = %s ORDER BY version",
        other,
    )
    assert [row[:2] for row in kept] == [(1, t1.isoformat()), (2, t2.isoformat())]


def test_a_version_is_dated_as_its_batch_commits_not_as_the_batch_began(
    settings: ExchangeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query made while the sink wrote a batch answered with the version before. Dated from the start
    of the batch's transaction, the new version was the one an as-of query for that instant gave."""
    key = key_of(settings, CITIZEN).decode()
    profiles(settings, profile_record(key, 1, AT))
    run_sink(settings)
    writing, asked = threading.Event(), threading.Event()

    def held(*args: Any) -> None:  # the batch's other writes, taking their time
        writing.set()
        asked.wait(30)
        save_offsets(*args)

    monkeypatch.setattr("consumers.sink.writer.save_offsets", held)
    profiles(settings, profile_record(key, 2, AT))
    sink = threading.Thread(target=run_sink, args=(settings,))
    sink.start()
    assert writing.wait(30)
    ((instant, answered),) = query(
        settings, "SELECT clock_timestamp(), version FROM profiles WHERE subject_key = %s", key
    )
    asked.set()
    sink.join(60)
    as_of = (
        "SELECT version FROM profile_history WHERE subject_key = %s "
        "AND valid_from <= %s AND %s < coalesce(valid_to, 'infinity')"
    )
    assert answered == 1 and query(settings, as_of, key, instant, instant) == [(1,)]
    assert query(settings, "SELECT version FROM profiles WHERE subject_key = %s", key) == [(2,)]


def test_a_rebuild_keeps_the_history_the_compacted_profile_topic_no_longer_holds(
    settings: ExchangeSettings,
) -> None:
    # Compaction leaves each subject's last profile record: the rebuild emptied profile_history and read
    # the topic again, so every earlier version (and the as-of answers from it) was gone, and the
    # current profile came from the replay's copy of its version rather than the first one.
    name = PROFILE.full_name(settings.kafka)
    client = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        # What the log cleaner does, done at once: records before the last one deleted (DeleteRecords
        # needs the delete policy beside compaction).
        client.create_topics(
            [
                NewTopic(
                    name,
                    settings.kafka.subject_partitions,
                    1,
                    topic_configs={"cleanup.policy": "compact,delete"},
                )
            ]
        )
        key = key_of(settings, CITIZEN).decode()
        t1, t2, t3 = (AT + dt.timedelta(hours=hours) for hours in (1, 2, 3))
        profiles(settings, profile_record(key, 1, t1), profile_record(key, 2, t2), profile_record(key, 2, t3))
        run_sink(settings)
        history = "SELECT version, valid_from, valid_to, kafka_offset FROM profile_history ORDER BY version"
        current = "SELECT version, updated_at, kafka_offset, profile FROM profiles"
        live = query(settings, history), query(settings, current)
        (first, second) = live[0]
        assert (first[0], first[2], second[0], second[2]) == (1, second[1], 2, None)
        ((partition, end),) = log_ends(settings, PROFILE).items()
        client.delete_records({TopicPartition(*partition): end - 1})
    finally:
        client.close()
    rebuild(settings)
    assert (query(settings, history), query(settings, current)) == live


def test_a_poison_record_stops_the_sink_and_names_its_position(settings: ExchangeSettings) -> None:
    key = key_of(settings, CITIZEN)
    produce(
        settings,
        [
            (SOCIAL, key, codec.encode("social.contribution", contribution("L1"))),
            (SOCIAL, key, b"not avro at all"),
            (SOCIAL, key, codec.encode("social.contribution", contribution("L2"))),
        ],
    )
    with pytest.raises(UndecodableRecordError) as raised:
        run_sink(settings)
    assert raised.value.topic == SOCIAL.full_name(settings.kafka) and raised.value.offset == 1
    assert "offset 1: not Avro single-object encoded" in str(raised.value)
    assert query(settings, "SELECT count(*) FROM social_contribution_records") == [(0,)]
    assert offsets(settings) == {}


def test_offsets_move_only_from_the_offsets_a_batch_started_from(settings: ExchangeSettings) -> None:
    database.migrate(settings.postgres)
    group, partition = "group", TopicPartition("topic", 0)
    with psycopg.connect(settings.postgres.conninfo(), autocommit=True) as conn:
        save_offsets(conn, group, {partition: 10}, {partition: None})
        with pytest.raises(OffsetConflictError):
            save_offsets(conn, group, {partition: 20}, {partition: None})  # another consumer started it
        with pytest.raises(OffsetConflictError):
            save_offsets(conn, group, {partition: 20}, {partition: 5})  # it moved since
        save_offsets(conn, group, {partition: 20}, {partition: 10})
        assert load_offsets(conn, group, [partition, TopicPartition("topic", 1)]) == {partition: 20}


@pytest.mark.parametrize(
    ("option", "value", "setting", "default", "given"),
    [
        # kafka-python's default of 45 s left a crashed sink's partitions unwritten that long after
        # its restart.
        ("session_timeout_seconds", 7.5, "session_timeout_ms", 10_000, 7_500),
        # kafka-python's 0.5 s held a busy partition's next records behind a fetch for the quiet ones.
        ("fetch_max_wait_seconds", 0.12, "fetch_max_wait_ms", 50, 120),
    ],
)
def test_the_sinks_consumer_takes_its_timeouts_from_the_options(
    settings: ExchangeSettings, option: str, value: float, setting: str, default: int, given: int
) -> None:
    database.migrate(settings.postgres)
    for options, expected in ((SinkOptions(), default), (SinkOptions(**{option: value}), given)):
        loop = _Loop(settings, options, None, None)
        try:
            assert loop._consumer.config[setting] == expected
        finally:
            loop.close()


def test_after_an_offset_conflict_only_the_partitions_still_held_are_sought_again(
    settings: ExchangeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In the eager protocol kafka-python lists partitions being revoked in assignment() until the group
    # has joined again; sought after a conflict, they were this member's again (owned()), and
    # `--until-idle` then asked the position of a partition it no longer had.
    database.migrate(settings.postgres)
    held, revoking = TopicPartition("t", 0), TopicPartition("t", 1)
    loop = _Loop(settings, SinkOptions(), None, None)
    try:
        monkeypatch.setattr(loop._consumer, "assignment", lambda: {held, revoking})
        monkeypatch.setattr(loop._consumer, "seek", lambda partition, offset: None)
        monkeypatch.setattr(loop._consumer, "seek_to_beginning", lambda *partitions: None)
        loop._seeker.on_partitions_revoked({revoking})
        loop._seeker.seek({held}, {held: 5})
        conflict: Future[None] = Future()
        conflict.set_exception(OffsetConflictError("another sink moved the offsets"))
        loop._writing = (Batch(), conflict)
        assert loop._finish_write() is False
        assert loop._seeker.owned() == {held}
    finally:
        loop.close()


def test_two_sinks_in_one_group_write_each_record_once(settings: ExchangeSettings) -> None:
    subjects = [f"4401021956070995{n:02d}" for n in range(8)]
    for number, subject in enumerate(subjects):
        records(settings, SOCIAL, subject, *(contribution(f"S{number}-{n}") for n in range(150)))
    results: list[SinkSummary | BaseException] = []

    def one_sink() -> None:
        try:
            results.append(run_sink(settings, batch=50))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=one_sink) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.5)  # the second joins while the first is writing: a rebalance mid-stream
    for thread in threads:
        thread.join(timeout=120)
    assert all(isinstance(result, SinkSummary) for result in results), results
    run_sink(settings)  # whatever a member left (it stops once its own partitions are at their end)
    rows = "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM social_contribution_records"
    assert query(settings, rows) == [(1200, 1200)]
    assert offsets(settings) == log_ends(settings, SOCIAL)


def _exchange(settings: ExchangeSettings, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "EXCHANGE_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "EXCHANGE_POSTGRES__DATABASE": settings.postgres.database,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "exchange", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_the_command_commits_on_sigterm_and_exits_non_zero_on_poison(settings: ExchangeSettings) -> None:
    records(settings, SOCIAL, CITIZEN, *(contribution(f"L{n}") for n in range(20)))
    sink = _exchange(settings, "sink")
    deadline = time.monotonic() + 60
    while not (_migrated(settings) and offsets(settings)) and time.monotonic() < deadline:
        time.sleep(0.2)
    sink.send_signal(signal.SIGTERM)
    _, err = sink.communicate(timeout=60)
    assert sink.returncode == 0, err.decode()
    assert query(settings, "SELECT count(*) FROM social_contribution_records") == [(20,)]

    produce(settings, [(SOCIAL, key_of(settings, CITIZEN), b"\xc3\x01garbage")])
    poisoned = _exchange(settings, "sink", "--until-idle")
    _, err = poisoned.communicate(timeout=60)
    assert poisoned.returncode == 1
    assert f"{SOCIAL.full_name(settings.kafka)} partition" in err.decode() and "offset 20" in err.decode()


def _migrated(settings: ExchangeSettings) -> bool:
    return bool(query(settings, "SELECT 1 FROM pg_tables WHERE tablename = 'consumer_offsets'"))


def test_a_trickle_is_written_as_it_comes_not_held_for_a_full_batch(settings: ExchangeSettings) -> None:
    records(settings, SOCIAL, CITIZEN, contribution("T0"))  # the topics exist before the sink starts
    lines = 6
    stop = threading.Event()

    def stop_once_all_are_written(summary: SinkSummary) -> None:
        if summary.total >= lines:
            stop.set()

    def trickle() -> None:
        for number in range(1, lines):
            time.sleep(0.2)
            records(settings, SOCIAL, CITIZEN, contribution(f"T{number}"))

    producer = threading.Thread(target=trickle)
    producer.start()
    # Batches could grow for an hour and each first poll waits for records up to 5 s: only the sink's
    # writing what it has once nothing more is buffered gives more than one batch.
    options = SinkOptions(max_batch_records=5000, max_batch_seconds=3600, poll_timeout_seconds=5)
    summary = Sink(settings, options, progress=stop_once_all_are_written).run(stop)
    producer.join()
    assert summary.total == lines
    assert summary.batches > 1


def test_the_next_batch_is_taken_while_one_is_written(
    settings: ExchangeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    records(settings, SOCIAL, CITIZEN, *(contribution(f"P{n}") for n in range(300)))
    second_taken = threading.Event()
    decode = Decoder.add

    def add(self: Decoder, batch: Batch, partition: TopicPartition, messages: Any) -> None:
        decode(self, batch, partition, messages)
        if messages and messages[-1].offset >= 100:
            second_taken.set()

    monkeypatch.setattr(Decoder, "add", add)
    seen: list[tuple[str, bool]] = []

    def first_commit_waits_for_the_second_batch() -> None:
        if not seen:
            # Written one after the other, the second batch would be taken only after this returns.
            seen.append((threading.current_thread().name, second_taken.wait(timeout=20)))

    summary = run_sink(settings, batch=100, before_commit=first_commit_waits_for_the_second_batch)
    assert seen == [(seen[0][0], True)] and seen[0][0].startswith("exchange-sink-writer")
    assert summary.total == 300
    rows = "SELECT count(*), count(DISTINCT kafka_offset) FROM social_contribution_records"
    assert query(settings, rows) == [(300, 300)]
    assert offsets(settings) == log_ends(settings, SOCIAL)


def test_profile_documents_are_compressed_with_lz4_where_the_server_has_it(
    settings: ExchangeSettings,
) -> None:
    key = key_of(settings, CITIZEN).decode()
    folded = dataclasses.replace(build_profile(3), subject_key=key)  # a document of ~7 KB
    profiles(settings, {**to_avro(folded), "updated_at": AT, "latest_published_at": AT})
    run_sink(settings)
    [(available,)] = query(
        settings,
        "SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
    )
    method = "lz4" if available else "pglz"
    for table in ("profiles", "profile_history"):
        assert query(settings, f"SELECT pg_column_compression(profile) FROM {table}") == [(method,)]
    [(document,)] = query(settings, "SELECT profile::text FROM profile_history")
    assert profile_from_document(json.loads(document)) == folded
