"""The processor: a faust app whose one agent folds the four subject topics into one profile per subject.

`Stream.join` is not implemented in faust, so the join is one agent on a multi-topic channel over the
co-partitioned dataset topics; each subject's ledger (every source record's winning version) lives in
a table (rocksdb) whose changelog has the same partition count. Events are taken in batches and
coalesced per subject: each touched ledger is decoded once, every event of the batch is folded into
it (`exchange.profile.apply`, pure and idempotent), and it is encoded and stored once, and the profile
derived from it (`profile_of`: payments and contribution lines become months) published once — at most one
profile per subject per batch. Only the sections the batch changed are packed again; the others come
from the record last stored, and the profile shares the ledger's packed sections.

Delivery is at-least-once: every profile and changelog record produced is acknowledged by the broker
before the source offsets it came from are committed (exchange.deliveries; faust's own flush before a
commit is no such guarantee), and the fold is idempotent, so a replay after a crash changes nothing. faust's
`exactly_once` guarantee is not used: faust-streaming #517, #323 and #177 report duplicates with it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
import weakref
from collections import Counter, OrderedDict, defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, NoReturn, cast

import faust
from faust.sensors import Sensor
from faust.streams import _current_event
from faust.types import TP
from faust.types.transports import ProducerT
from mode import ServiceT
from prometheus_client import generate_latest

from exchange import profile as aggregate
from exchange.deliveries import Deliveries, DeliveryError
from exchange.gc_pacing import FullCollections
from exchange.ordered_consumer import ordered_consumer_class
from exchange.profile_avro import profile_record
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings
from exchange.topics import DATASET_TOPICS, PROFILE
from monitoring import metrics

_log = logging.getLogger(__name__)

# Exit status when the agent meets an error it cannot handle: the process ends, no offsets are
# committed for the failed batch, and a restart replays it (EX_SOFTWARE).
EXIT_AGENT_FAILED = 70
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# A stored ledger as decoded: the ledger, the Avro record it was read from or encoded to, and its tax and
# social sections once computed.
_Decoded = tuple[aggregate.Ledger, Mapping[str, Any], aggregate.Tax | None, aggregate.Social | None]


def changelog_topic_name(settings: ExchangeSettings) -> str:
    """The profile table's changelog, named explicitly: a renamed derived name would orphan the state."""
    return f"{settings.kafka.topic_prefix}{settings.processor.app_id}.profiles.changelog"


class RebalanceSensor(Sensor):
    """Counts the processor's rebalances and times each, to when the worker is ready again (recovery
    included); every per-record and per-event hook is faust's no-op."""

    def on_rebalance_start(self, app: faust.types.AppT) -> dict[str, float]:
        metrics.PROCESSOR_REBALANCES.inc()
        return {"time_start": time.monotonic()}

    def on_rebalance_end(self, app: faust.types.AppT, state: dict[str, float]) -> None:
        metrics.PROCESSOR_REBALANCE_SECONDS.observe(time.monotonic() - state["time_start"])


def _exit_failed() -> NoReturn:
    """End the process at once, before anything more is committed: its restart replays from the last
    commit. Never a dead agent, or a commit past a failure, behind a live process."""
    logging.shutdown()
    os._exit(EXIT_AGENT_FAILED)


def _stop_undelivered(error: DeliveryError) -> None:
    """Stop the process before a commit covers records the broker did not acknowledge."""
    _log.error("%s; the processor stops, and its restart replays from the last commit", error)
    _exit_failed()


def _stop_stuck(reason: str) -> None:
    """Stop the process when its consumer cannot go on: its restart joins the group afresh."""
    _log.error("%s; the processor stops, and its restart replays from the last commit", reason)
    _exit_failed()


class _TrackedTable(faust.Table[bytes, bytes]):
    """faust's table, each changelog record it sends tracked until acknowledged (`_App.deliveries`)."""

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        sent = super().send_changelog(*args, **kwargs)
        cast(_App, self.app).deliveries.track(sent)
        return sent


class _App(faust.App):
    """faust's app with the `RebalanceSensor` instead of its Monitor sensor, and the deliveries its
    consumer settles before each commit.

    The Monitor keeps in-memory stats for faust's web views (turned off here) and is called for every
    record and event, in and out; the processor's metrics are its own (`monitoring.metrics`). With no
    sensor at all, faust would warn of a missing sensor state at every rebalance.
    """

    deliveries: Deliveries  # set by `source_app`
    _assigned_in = 0  # the number (`rebalancing_count`) of the rebalance whose assignment came last

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        dependencies = super().on_init_dependencies()
        self.sensors.remove(self.monitor)
        self.sensors.add(RebalanceSensor())
        return dependencies

    async def _on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self._assigned_in = self.rebalancing_count
        await super()._on_partitions_assigned(assigned, generation_id)

    def on_rebalance_end(self) -> None:
        """End the rebalance, unless a newer one began since its assignment: faust's recovery checks only
        the generation, which changes with the newer assignment, so a recovery ending meanwhile would
        clear `rebalancing` for the newer rebalance, under which the consumer holds records back."""
        if self.rebalancing_count != self._assigned_in:
            return  # the newer rebalance's recovery ends it
        super().on_rebalance_end()


def _batch_producer_class(base: type[ProducerT], batch_events: int) -> type[ProducerT]:
    """faust's producer, its buffer of table changelog writes sized for a whole batch.

    A table write is queued in that buffer, and before delivering each record faust waits while it
    holds more than its 100 messages (logging "producer buffer full" at WARNING). A batch changes up to
    `batch_events` ledgers, so catching up on a backlog warned and stalled on every batch. faust still
    flushes the buffer before it commits the source offsets, so what a commit covers is unchanged.
    """

    class BatchProducer(base):  # type: ignore[valid-type,misc]  # a class made from a runtime value
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.buffer.max_messages = batch_events

    return cast(type[ProducerT], BatchProducer)


def source_app(settings: ExchangeSettings) -> tuple[_App, faust.TopicT]:
    """The processor's app, configured but without its table and agent, and the channel over the four
    dataset topics that its agent reads (`exchange bench pipeline` times a no-op agent on the same)."""
    kafka = settings.kafka
    processor = settings.processor
    app = _App(
        f"{kafka.topic_prefix}{processor.app_id}",
        broker=f"kafka://{kafka.bootstrap_servers}",
        store=processor.store,
        datadir=str(processor.datadir.resolve()),
        topic_partitions=kafka.subject_partitions,
        topic_replication_factor=kafka.replication_factor,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=processor.commit_interval_seconds,
        broker_session_timeout=processor.session_timeout_seconds,
        web_bind="127.0.0.1",
        web_port=processor.web_port,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        table_standby_replicas=0,
        stream_buffer_maxsize=processor.batch_events * 2,
        producer_linger=processor.producer_linger_seconds,
        producer_max_batch_size=processor.producer_batch_bytes,
        # Everything is bytes: Avro single-object encoded values, HMAC subject keys.
        key_serializer="raw",
        value_serializer="raw",
    )
    app.deliveries = Deliveries(processor.delivery_timeout_seconds, _stop_undelivered)
    source_names = [topic.full_name(kafka) for topic in DATASET_TOPICS]
    # faust can drop fetched records in a rebalance and then commit past them: this consumer re-reads.
    app.transport.Consumer = ordered_consumer_class(  # type: ignore[misc]  # read per instance
        source_names, round(processor.fetch_max_wait_seconds * 1000), _stop_stuck
    )
    app.transport.Producer = _batch_producer_class(  # type: ignore[misc]  # read per instance
        app.transport.Producer, processor.batch_events
    )
    sources = app.topic(
        *source_names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    return app, sources


def create_app(settings: ExchangeSettings) -> faust.App:
    """Build the processor app, its table and its agent from the settings."""
    kafka = settings.kafka
    processor = settings.processor
    app, sources = source_app(settings)
    profiles_out = app.topic(PROFILE.full_name(kafka), key_serializer="raw", value_serializer="raw")
    table = app.tables.add(
        _TrackedTable(
            app,
            name="profiles",
            default=None,
            beacon=app.tables.beacon,
            partitions=kafka.subject_partitions,
            key_type=bytes,
            value_type=bytes,
            changelog_topic=app.topic(
                changelog_topic_name(settings),
                partitions=kafka.subject_partitions,
                compacting=True,
                key_serializer="raw",
                value_serializer="raw",
            ),
        )
    )
    folder = BatchFolder(AvroCodec())
    collections = FullCollections(processor.full_collection_interval_seconds)

    @app.agent(sources, name="fold")
    async def fold(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        # take_events is on faust's Stream, not on its StreamT protocol.
        batches = cast(faust.Stream[bytes], stream).take_events(
            processor.batch_events, within=processor.batch_seconds
        )
        async for batch in batches:
            try:
                for key, encoded in folder.fold(batch, table):
                    # A future of aiokafka's, resolved on the broker's acknowledgement.
                    sent = await profiles_out.send(key=key, value=encoded)
                    app.deliveries.track(cast("asyncio.Future[object]", sent))
            except Exception:
                # Never a dead agent behind a live process: stop hard, before anything is committed.
                _log.exception("folding a batch of %d events failed; the processor stops", len(batch))
                _exit_failed()
            collections.after_batch()
            yield None

    @app.page("/metrics")
    async def metrics_page(self: Any, request: Any) -> Any:
        return self.bytes(generate_latest(), content_type="text/plain; version=0.0.4")

    return app


class ProfileCache:
    """Decoded ledgers of recently touched subjects, so a subject's stored ledger is decoded only once.

    Each entry keeps the ledger's Avro record too, so that the next encode packs only the sections the
    fold changed (`ledger_to_avro`'s `since`), and its tax and social sections, each computed again only
    when its records changed. An entry is used only while the table still holds the very bytes
    it was decoded from; anything else (a rebalance, a restore from the changelog) makes it a miss.
    Bounded: least recently used entries go first.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[bytes, tuple[bytes, _Decoded]] = OrderedDict()

    def get(self, key: bytes, stored: bytes) -> _Decoded | None:
        """The ledger, record, tax and social sections decoded from `stored`, if cached."""
        entry = self._entries.get(key)
        if entry is None or entry[0] != stored:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: bytes, stored: bytes, decoded: _Decoded) -> None:
        """Remember that `stored` decodes to `decoded`."""
        self._entries[key] = (stored, decoded)
        self._entries.move_to_end(key)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


class BatchFolder:
    """Folds a batch of events into the table, coalescing per subject; the agent's whole logic."""

    def __init__(self, codec: AvroCodec, cache: ProfileCache | None = None) -> None:
        self.codec = codec
        self.cache = cache or ProfileCache(50_000)

    def fold(self, batch: Sequence[faust.EventT[bytes]], table: Any) -> list[tuple[bytes, bytes]]:
        """Fold `batch` into `table`; return (subject key, encoded profile) for each changed subject."""
        started = time.perf_counter()
        by_subject: dict[bytes, list[faust.EventT[bytes]]] = defaultdict(list)
        for event in batch:
            by_subject[event.key].append(event)  # type: ignore[index]
        # Counted per batch: a labelled counter's lookup and lock per event cost as much as a fold step.
        datasets: Counter[str] = Counter()
        changed = [self._fold_subject(key, events, table, datasets) for key, events in by_subject.items()]
        for dataset, count in datasets.items():
            metrics.PROCESSOR_EVENTS.labels(dataset).inc(count)
        emitted = [item for item in changed if item is not None]
        metrics.PROCESSOR_PROFILES_EMITTED.inc(len(emitted))
        metrics.PROCESSOR_BATCH_EVENTS.observe(len(batch))
        metrics.PROCESSOR_FOLD_SECONDS.observe(time.perf_counter() - started)
        return emitted

    def _fold_subject(
        self, key: bytes, events: list[faust.EventT[bytes]], table: Any, datasets: Counter[str]
    ) -> tuple[bytes, bytes] | None:
        # faust's table picks the store and changelog partition from the *current event*; in a batch
        # that is the last event taken, so point it at this subject's own event first.
        _current_event.set(weakref.ref(events[-1]))
        stored = self._stored(key, table.get(key))
        before = after = stored[0] if stored else aggregate.empty_ledger(key.decode())
        latest = _EPOCH
        for event in events:
            message = event.message
            dataset, record = self.codec.decode(event.value)
            after = aggregate.apply(
                after, aggregate.Event(dataset, record, message.topic, message.partition, message.offset)
            )
            latest = max(latest, record["envelope"]["published_at"])
            datasets[dataset] += 1
        if after is before and stored is None:
            return None  # nothing stored and nothing learnt
        # A subject whose events change nothing (all folded before) is stored and emitted again all
        # the same: the table is written at once (RocksDB) while the profile and the changelog record
        # leave later, so after a crash the replayed batch finds its own effect stored, and emitting
        # nothing then would lose that profile and that changelog record for good. Downstream keeps
        # each version once; duplicates outside a replay are rare.
        ledger_record = aggregate.ledger_to_avro(
            after, since=None if stored is None else (stored[0], stored[1])
        )
        tax = stored[2] if stored and after.payments is stored[0].payments else None
        if tax is None:
            tax = aggregate.tax_of(after.payments)
        social = stored[3] if stored and after.contributions is stored[0].contributions else None
        if social is None:
            social = aggregate.social_of(after.contributions)
        encoded_ledger = self.codec.encode("ledger", ledger_record)
        table[key] = encoded_ledger
        self.cache.put(key, encoded_ledger, (after, ledger_record, tax, social))
        profile = {
            **profile_record(ledger_record, tax, social),
            "updated_at": dt.datetime.now(dt.UTC),
            "latest_published_at": latest,
        }
        return key, self.codec.encode("profile", profile)

    def _stored(self, key: bytes, stored: bytes | None) -> _Decoded | None:
        """The subject's stored ledger and its record; None when the table holds none.

        A table written before the ledger had its own schema holds profile records of the same fields,
        which read as ledgers just the same.
        """
        if not stored:
            return None
        cached = self.cache.get(key, stored)
        if cached is not None:
            return cached
        record = self.codec.decode(stored)[1]
        decoded = (aggregate.ledger_from_avro(record), record, None, None)
        self.cache.put(key, stored, decoded)
        return decoded
