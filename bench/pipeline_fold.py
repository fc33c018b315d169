"""The fold of `exchange bench pipeline`: a bare aiokafka consume → fold → produce loop as the processor's
baseline, and a cProfile of the processor's own `BatchFolder.fold` over the same backlog."""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import datetime as dt
import json
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioPartition
from kafka import KafkaConsumer, TopicPartition

from exchange import profile as aggregate
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings, child_environment
from exchange.streams import BatchFolder
from exchange.topics import DATASET_TOPICS

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ROOT = f"{Path(__file__).resolve().parents[1]}/"


@dataclass(frozen=True)
class Folded:
    """Events folded, in how long, and how many profiles that produced."""

    events: int
    seconds: float
    profiles: int

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


def bare_loop(settings: ExchangeSettings, scratch_topic: str) -> Folded:
    """Consume the four dataset topics from the beginning, fold, and produce each changed profile once
    per batch to `scratch_topic`, until every record on them is consumed (nothing is committed)."""
    return asyncio.run(_bare_loop(settings, scratch_topic))


async def _bare_loop(settings: ExchangeSettings, scratch_topic: str) -> Folded:
    servers = settings.kafka.bootstrap_servers
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, client_id="bench-bare")
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", client_id="bench-bare")
    await consumer.start()
    await producer.start()
    try:
        partitions = [
            AioPartition(topic.full_name(settings.kafka), number)
            for topic in DATASET_TOPICS
            for number in range(settings.kafka.subject_partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        firsts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        total = sum(ends[tp] - firsts[tp] for tp in partitions)
        started = time.perf_counter()
        consumed, profiles = await _fold_all(consumer, producer, scratch_topic, total, settings)
        await producer.flush()
        return Folded(consumed, time.perf_counter() - started, profiles)
    finally:
        await consumer.stop()
        await producer.stop()


async def _fold_all(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    scratch_topic: str,
    total: int,
    settings: ExchangeSettings,
) -> tuple[int, int]:
    codec = AvroCodec()
    state: dict[bytes, aggregate.Ledger] = {}
    consumed = produced = 0
    while consumed < total:
        polled = await consumer.getmany(timeout_ms=1000, max_records=settings.processor.batch_events)
        latest: dict[bytes, dt.datetime] = {}
        changed: set[bytes] = set()
        for messages in polled.values():
            for message in messages:
                key = message.key
                dataset, record = codec.decode(message.value)
                before = state.get(key) or aggregate.empty_ledger(key.decode())
                event = aggregate.Event(dataset, record, message.topic, message.partition, message.offset)
                after = aggregate.apply(before, event)
                if after is not before:
                    state[key] = after
                    changed.add(key)
                latest[key] = max(latest.get(key, _EPOCH), record["envelope"]["published_at"])
            consumed += len(messages)
        now = dt.datetime.now(dt.UTC)
        for key in changed:
            profile = aggregate.profile_of(state[key])
            encoded = codec.encode(
                "profile",
                {**aggregate.to_avro(profile), "updated_at": now, "latest_published_at": latest[key]},
            )
            await producer.send(scratch_topic, encoded, key=key)
        produced += len(changed)
    return consumed, produced


@dataclass(frozen=True)
class Floor:
    """faust alone: the events its no-op agent took, how many came in its first batch, and how long the
    rest took after that batch."""

    taken: int
    first_batch: int
    seconds: float

    @property
    def per_second(self) -> float:
        return (self.taken - self.first_batch) / self.seconds


def faust_floor(settings: ExchangeSettings, events: int, timeout_seconds: float = 300.0) -> Floor:
    """faust alone over the backlog (`bench.faust_floor`): the processor's app with an agent that takes
    its batches and does nothing else, until it has taken `events` events. `settings` name a consumer
    group and state directory of its own. Timed from its first batch to its last."""
    with tempfile.TemporaryDirectory(prefix="exchange-faust-floor-") as scratch:
        result = Path(scratch) / "floor.json"
        log = Path(scratch) / "floor.log"
        with log.open("wb") as output:
            process = subprocess.run(
                [sys.executable, "-m", "bench.faust_floor", str(events), str(result)],
                env=child_environment(settings),
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=timeout_seconds,
                check=False,
            )
        if not result.exists():
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the faust floor exited {process.returncode} without a result:\n{tail}")
        timing = json.loads(result.read_text())
    return Floor(int(timing["taken"]), int(timing["first_batch"]), float(timing["seconds"]))


class _Event:
    """What `BatchFolder.fold` reads of a faust event; weakly referenceable, as faust's are."""

    __slots__ = ("__weakref__", "key", "message", "value")

    def __init__(self, message: Any) -> None:
        self.key = message.key
        self.value = message.value
        self.message = message


def _backlog(settings: ExchangeSettings) -> Generator[list[_Event], None, None]:
    """The dataset topics from the beginning, in polls of up to the processor's batch size."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic.full_name(settings.kafka), number)
            for topic in DATASET_TOPICS
            for number in range(settings.kafka.subject_partitions)
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            polled = consumer.poll(timeout_ms=1000, max_records=settings.processor.batch_events)
            yield [_Event(message) for messages in polled.values() for message in messages]
    finally:
        consumer.close(autocommit=False)


def profile_fold(settings: ExchangeSettings, limit: int) -> tuple[int, pstats.Stats]:
    """`BatchFolder.fold` over the first `limit` or so events of the backlog under cProfile, into a dict
    standing in for the processor's table (no RocksDB, no changelog); only the fold calls are profiled.
    Returns the events folded and the profile."""
    folder = BatchFolder(AvroCodec())
    table: dict[bytes, bytes] = {}
    profiler = cProfile.Profile()
    events = 0
    with contextlib.closing(_backlog(settings)) as batches:
        for batch in batches:
            if events >= limit:
                break
            profiler.enable()
            folder.fold(batch, table)  # type: ignore[arg-type]  # duck-typed faust events
            profiler.disable()
            events += len(batch)
    return events, pstats.Stats(profiler)


@dataclass(frozen=True)
class HotSpot:
    """One function of a profile: calls, own time and time including its callees, in seconds."""

    function: str
    calls: int
    own_seconds: float
    cumulative_seconds: float


def hot_spots(stats: pstats.Stats, limit: int, by_own: bool = False) -> list[HotSpot]:
    """The `limit` functions with the most cumulative time (or own time, with `by_own`)."""
    spots = [
        HotSpot(_label(file, line, name), calls, own, cumulative)
        for (file, line, name), (_, calls, own, cumulative, _) in stats.stats.items()  # type: ignore[attr-defined]
    ]
    spots.sort(key=lambda spot: spot.own_seconds if by_own else spot.cumulative_seconds, reverse=True)
    return spots[:limit]


def _label(file: str, line: int, name: str) -> str:
    if file == "~":  # a built-in
        return name
    for marker in ("site-packages/", _ROOT):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{file}:{line} {name}"
