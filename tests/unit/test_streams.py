"""The processor in-process: the batch fold (coalescing per subject, idempotence, the profile cache,
repacking only changed sections, metrics per batch) and how the app and its worker are configured."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import gc
import logging
from pathlib import Path
from typing import Any

import canonical
import faust
import pytest
import uvloop
from prometheus_client import REGISTRY

from exchange import admin, profile_avro
from exchange import profile as aggregate
from exchange.cli import pipeline
from exchange.gc_pacing import NEVER
from exchange.ordered_consumer import _ReadOffsets
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings, ProcessorSettings
from exchange.streams import BatchFolder, ProfileCache, create_app

CODEC = AvroCodec()
_EVENTS = "exchange_processor_events_total"
_EMITTED = "exchange_processor_profiles_emitted_total"


@dataclasses.dataclass
class _Message:
    topic: str
    partition: int
    offset: int


@dataclasses.dataclass
class _Event:
    """What faust hands the agent: key, value and the message's position."""

    key: bytes
    value: bytes
    message: _Message


def _events(key: bytes, records: list[dict[str, Any]], start: int = 0) -> list[_Event]:
    return [
        _Event(key, CODEC.encode(record["envelope"]["dataset"], record), _Message("t", 0, start + i))
        for i, record in enumerate(records)
    ]


def _stored(table: dict[bytes, bytes], key: bytes) -> aggregate.Ledger:
    name, record = CODEC.decode(table[key])
    assert name == "ledger"
    return aggregate.ledger_from_avro(record)


def _emitted(encoded: bytes) -> aggregate.Profile:
    name, record = CODEC.decode(encoded)
    assert name == "profile"
    return aggregate.from_avro(record)


def test_a_batch_emits_one_profile_per_changed_subject() -> None:
    table: dict[bytes, bytes] = {}
    batch = [
        *_events(b"a", [canonical.person("440102195607099506"), canonical.contribution("L1", "2026-01")]),
        *_events(b"b", [canonical.contribution("L2", "2026-02")], start=10),
        *_events(b"a", [canonical.contribution("L3", "2026-02")], start=20),
    ]
    emitted = BatchFolder(CODEC).fold(batch, table)  # type: ignore[arg-type]
    assert [key for key, _ in emitted] == [b"a", b"b"]
    assert set(table) == {b"a", b"b"}
    assert len(_stored(table, b"a").contributions) == 2
    assert _stored(table, b"b").version == 1
    # The table keeps each line; the profile emitted is the one the ledger stands for: months as ranges.
    for key, encoded in emitted:
        assert _emitted(encoded) == aggregate.profile_of(_stored(table, key))
    months = aggregate.ranges([aggregate.month_index(dt.date(2026, 1, 1)) + i for i in (0, 1)])
    assert _emitted(dict(emitted)[b"a"]).social.received["pension"] == months


def test_replaying_a_batch_changes_nothing_and_emits_the_same_profile_again() -> None:
    # The table is written at once and the profile later: a crash between the two leaves the state
    # folded and the profile unsent, so the replay after the restart must send it.
    table: dict[bytes, bytes] = {}
    folder = BatchFolder(CODEC)
    batch = _events(b"a", [canonical.contribution("L1", "2026-01"), canonical.contribution("L2", "2026-02")])
    [(_, first)] = folder.fold(batch, table)  # type: ignore[arg-type]
    before = dict(table)
    # A fresh folder has no cache: the replay decodes the stored profile, as after a restart.
    [(key, again)] = BatchFolder(CODEC).fold(batch, table)  # type: ignore[arg-type]
    assert key == b"a" and _emitted(again) == _emitted(first)
    assert table == before


def test_the_fold_across_batches_equals_the_fold_of_all_events_at_once() -> None:
    records = [canonical.contribution(f"L{i}", f"2025-{i:02d}") for i in range(1, 13)]
    events = _events(b"a", records)
    split: dict[bytes, bytes] = {}
    folder = BatchFolder(CODEC)
    split_emitted: list[tuple[bytes, bytes]] = []
    for start in range(0, 12, 5):
        split_emitted += folder.fold(events[start : start + 5], split)  # type: ignore[arg-type]
    whole: dict[bytes, bytes] = {}
    whole_emitted = BatchFolder(CODEC).fold(events, whole)  # type: ignore[arg-type]
    assert _stored(split, b"a").contributions == _stored(whole, b"a").contributions
    assert _emitted(split_emitted[-1][1]).social == _emitted(whole_emitted[-1][1]).social


def test_the_cache_is_used_only_for_the_bytes_it_was_decoded_from() -> None:
    cache = ProfileCache(capacity=1)
    ledger = aggregate.empty_ledger("a")
    decoded = (ledger, aggregate.ledger_to_avro(ledger), None)
    cache.put(b"a", b"v1", decoded)
    assert cache.get(b"a", b"v1") is decoded
    assert cache.get(b"a", b"v2") is None
    cache.put(b"b", b"v1", decoded)
    assert cache.get(b"a", b"v1") is None  # evicted: capacity 1


def _packed_sections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The datasets whose sections `ledger_to_avro` packs from here on."""
    packed: list[str] = []
    pack = profile_avro._section_to_avro

    def counting(section: Any, form: Any) -> dict[str, Any]:
        packed.append(form.dataset)
        return pack(section, form)

    monkeypatch.setattr(profile_avro, "_section_to_avro", counting)
    return packed


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "decoded from the table"])
def test_only_the_sections_a_batch_changed_are_packed_again(
    monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    table: dict[bytes, bytes] = {}
    first = _events(b"a", [canonical.person("440102195607099506"), canonical.contribution("L1", "2026-01")])
    BatchFolder(CODEC).fold(first, table)  # type: ignore[arg-type]
    folder = BatchFolder(CODEC)
    if cached:
        folder.fold(_events(b"a", [canonical.payment("V1", "2026-01")], start=5), table)  # type: ignore[arg-type]
    packed = _packed_sections(monkeypatch)
    folder.fold(_events(b"a", [canonical.contribution("L2", "2026-02")], start=10), table)  # type: ignore[arg-type]
    assert packed == [aggregate.SOCIAL]
    # ...and the record is the one packing every section would give.
    stored = CODEC.decode(table[b"a"])[1]
    assert aggregate.ledger_to_avro(aggregate.ledger_from_avro(stored)) == stored
    assert len(_stored(table, b"a").contributions) == 2


def test_the_social_section_is_computed_again_only_when_the_lines_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table: dict[bytes, bytes] = {}
    folder = BatchFolder(CODEC)
    folder.fold(_events(b"a", [canonical.contribution("L1", "2026-01")]), table)  # type: ignore[arg-type]
    computed: list[int] = []
    social_of = aggregate.social_of

    def counting(lines: Any) -> aggregate.Social:
        computed.append(len(lines))
        return social_of(lines)

    monkeypatch.setattr(aggregate, "social_of", counting)
    ((_, payment),) = folder.fold(_events(b"a", [canonical.payment("V1", "2026-01")], start=5), table)  # type: ignore[arg-type]
    assert computed == []
    assert _emitted(payment).social == social_of(_stored(table, b"a").contributions)
    folder.fold(_events(b"a", [canonical.contribution("L2", "2026-02")], start=10), table)  # type: ignore[arg-type]
    assert computed == [2]


def _sample(counter: Any, **labels: str) -> float:
    value = REGISTRY.get_sample_value(counter, labels)
    return value or 0.0


def test_events_and_profiles_are_counted_per_dataset() -> None:
    before = {
        dataset: _sample(_EVENTS, dataset=dataset) for dataset in (aggregate.IDENTITY, aggregate.SOCIAL)
    }
    emitted_before = _sample(_EMITTED)
    batch = [
        *_events(b"a", [canonical.person("440102195607099506"), canonical.contribution("L1", "2026-01")]),
        *_events(b"b", [canonical.contribution("L2", "2026-02"), canonical.contribution("L3", "2026-03")]),
    ]
    BatchFolder(CODEC).fold(batch, {})  # type: ignore[arg-type]
    assert _sample(_EVENTS, dataset=aggregate.IDENTITY) - before[aggregate.IDENTITY] == 1
    assert _sample(_EVENTS, dataset=aggregate.SOCIAL) - before[aggregate.SOCIAL] == 3
    assert _sample(_EMITTED) - emitted_before == 2


def test_the_app_batches_what_it_produces(tmp_path: Path) -> None:
    settings = ExchangeSettings(
        processor=ProcessorSettings(
            datadir=tmp_path, store="memory://", producer_linger_seconds=0.03, producer_batch_bytes=65536
        )
    )
    app = create_app(settings)
    assert app.conf.producer_linger == 0.03
    assert app.conf.producer_max_batch_size == 65536


def test_a_killed_worker_is_given_up_on_after_the_configured_session_timeout(tmp_path: Path) -> None:
    # faust's own 60 s left a crashed worker's partitions unfolded for a minute after its restart.
    default = create_app(ExchangeSettings(processor=ProcessorSettings(datadir=tmp_path, store="memory://")))
    assert default.conf.broker_session_timeout == 10.0
    settings = ExchangeSettings(
        processor=ProcessorSettings(datadir=tmp_path, store="memory://", session_timeout_seconds=7.5)
    )
    assert create_app(settings).conf.broker_session_timeout == 7.5


def test_a_batch_of_table_writes_fits_the_producer_buffer(tmp_path: Path) -> None:
    # Past its limit faust warns and stalls delivery before every record until the buffer drains.
    settings = ExchangeSettings(
        processor=ProcessorSettings(datadir=tmp_path, store="memory://", batch_events=777)
    )
    assert create_app(settings).producer.buffer.max_messages == 777


def test_the_app_consumes_with_the_ordered_consumer(tmp_path: Path) -> None:
    settings = ExchangeSettings(processor=ProcessorSettings(datadir=tmp_path, store="memory://"))
    consumer = create_app(settings).consumer
    assert type(consumer).__name__ == "OrderedConsumer"
    assert isinstance(consumer._read_offset, _ReadOffsets)
    assert "identity.person.v1" in consumer._read_offset.guarded
    # The check for a hole at the end of a partition runs as one of the consumer's service tasks.
    assert "_rewind_stalled" in type(consumer)._tasks[type(consumer)._get_class_id()]


async def _assigned_without_recovery(self: faust.App, assigned: set[object], generation_id: int = 0) -> None:
    """faust's handling of an assignment (the table recovery it starts), left out of these tests."""


def test_a_rebalance_begun_during_another_ones_recovery_is_not_ended_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # faust's recovery checks only the generation, which the newer rebalance changes at its assignment:
    # a recovery ending before that cleared `rebalancing`, under which the consumer holds records back.
    monkeypatch.setattr(faust.App, "_on_partitions_assigned", _assigned_without_recovery)
    app = create_app(ExchangeSettings(processor=ProcessorSettings(datadir=tmp_path, store="memory://")))
    list(app.on_init_dependencies())
    app.on_rebalance_start()
    asyncio.run(app._on_partitions_assigned(set()))  # type: ignore[attr-defined]
    app.on_rebalance_start()  # the next one's revoke, on the consumer's thread
    app.on_rebalance_end()  # the first one's recovery ends
    assert app.rebalancing
    asyncio.run(app._on_partitions_assigned(set()))  # type: ignore[attr-defined]
    app.on_rebalance_end()
    assert not app.rebalancing


def test_the_app_leaves_out_faust_monitor_sensor(tmp_path: Path) -> None:
    # The Monitor is called for every record and event; nothing here reads it.
    app = create_app(ExchangeSettings(processor=ProcessorSettings(datadir=tmp_path, store="memory://")))
    list(app.on_init_dependencies())  # what starting the app does, where faust adds the Monitor
    assert app.monitor not in set(app.sensors)


def test_each_rebalance_is_counted_and_timed_with_no_missing_state_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(faust.App, "_on_partitions_assigned", _assigned_without_recovery)
    app = create_app(ExchangeSettings(processor=ProcessorSettings(datadir=tmp_path, store="memory://")))
    list(app.on_init_dependencies())
    rebalances = REGISTRY.get_sample_value("exchange_processor_rebalances_total") or 0.0
    timed = REGISTRY.get_sample_value("exchange_processor_rebalance_seconds_count") or 0.0
    with caplog.at_level(logging.WARNING):
        app.on_rebalance_start()
        asyncio.run(app._on_partitions_assigned(set()))  # type: ignore[attr-defined]
        app.on_rebalance_return()
        app.on_rebalance_end()
    assert REGISTRY.get_sample_value("exchange_processor_rebalances_total") == rebalances + 1
    assert REGISTRY.get_sample_value("exchange_processor_rebalance_seconds_count") == timed + 1
    assert "Missing sensor state" not in caplog.text


def test_the_process_command_runs_the_worker_on_uvloop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    policies: list[asyncio.AbstractEventLoopPolicy] = []
    thresholds = gc.get_threshold()

    class _Worker:
        def __init__(self, app: faust.App, **options: Any) -> None:
            policies.append(asyncio.get_event_loop_policy())
            # Full collections are the agent's, between batches (exchange.gc_pacing).
            assert gc.get_threshold()[2] == NEVER

        def execute_from_commandline(self) -> None:
            pass

    monkeypatch.setattr(admin, "ensure_topics", lambda kafka: None)
    monkeypatch.setattr(faust, "Worker", _Worker)
    settings = ExchangeSettings(processor=ProcessorSettings(datadir=tmp_path, store="memory://"))
    try:
        assert pipeline._process(settings, argparse.Namespace()) == 0
    finally:
        asyncio.set_event_loop_policy(None)
        gc.set_threshold(*thresholds)
    assert [type(policy) for policy in policies] == [uvloop.EventLoopPolicy]
