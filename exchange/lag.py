"""Consumer lag per group, topic and partition, exported under kafka_exporter's metric names.

A `LagCollector` reads offsets when Prometheus scrapes (a few small admin requests, each bounded by a
timeout) and turns them into gauges with the names and labels kafka_exporter uses, so dashboards and
alerts written for it work unchanged. A failed read counts in `exchange_lag_scrape_errors_total` and
never raises into the scrape.

Committed offsets come from Kafka for every group of the exchange but the sink. The sink keeps its
real offsets in PostgreSQL (`consumer_offsets`, written with its rows), resumes from them (from a
partition's start where none is stored) and commits them to Kafka only afterwards, for tools, never
reading them back: its lag is counted from PostgreSQL's alone. Counted from the higher of the two, a
rebuild (which deletes the stored offsets and replays every topic) or a database restored from an
older backup showed no lag while the sink re-read everything. The processor (faust) commits to Kafka
itself.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from prometheus_client.core import GaugeMetricFamily, Metric

from exchange.database import bounded_connection
from exchange.settings import KafkaSettings, PostgresSettings
from exchange.topics import sink_group
from monitoring import metrics

_log = logging.getLogger("exchange.lag")

LAG = "kafka_consumergroup_lag"
LAG_SUM = "kafka_consumergroup_lag_sum"
CURRENT_OFFSET = "kafka_consumergroup_current_offset"
TOPIC_OFFSET = "kafka_topic_partition_current_offset"
EXPORTED_NAMES = (LAG, LAG_SUM, CURRENT_OFFSET, TOPIC_OFFSET)

# group → partition → the next offset the group will read.
Committed = Mapping[str, Mapping[TopicPartition, int]]


@dataclass(frozen=True)
class Offsets:
    """One reading: the end offset of every topic partition and the committed offsets of every group."""

    ends: Mapping[TopicPartition, int]
    committed: Committed


@dataclass(frozen=True)
class PartitionLag:
    """How far one group is behind on one partition."""

    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        """Records written and not yet read; never negative (offsets are read before the ends)."""
        return max(self.end - self.committed, 0)


def merge_committed(kafka: Committed, stored: Committed) -> dict[str, dict[TopicPartition, int]]:
    """Kafka's committed offsets, but for the groups in `stored` (those that keep their offsets in
    PostgreSQL and resume from there): theirs, and 0 (a partition's start) for a partition they
    committed to Kafka and PostgreSQL holds nothing of."""
    merged = {group: dict(partitions) for group, partitions in kafka.items()}
    for group, partitions in stored.items():
        consumed = set(merged.get(group, {})) | set(partitions)
        merged[group] = {partition: partitions.get(partition, 0) for partition in consumed}
    return merged


def partition_lags(offsets: Offsets) -> list[PartitionLag]:
    """The lag of every committed partition whose topic still exists, sorted."""
    lags = [
        PartitionLag(group, partition.topic, partition.partition, committed, offsets.ends[partition])
        for group, partitions in offsets.committed.items()
        for partition, committed in partitions.items()
        if partition in offsets.ends
    ]
    return sorted(lags, key=lambda item: (item.group, item.topic, item.partition))


def lag_by_topic(lags: Iterable[PartitionLag]) -> dict[tuple[str, str], int]:
    """Lag summed over partitions, per (group, topic)."""
    sums: dict[tuple[str, str], int] = defaultdict(int)
    for item in lags:
        sums[(item.group, item.topic)] += item.lag
    return dict(sums)


def families(offsets: Offsets) -> list[Metric]:
    """The gauges kafka_exporter would export for `offsets`."""
    lag = GaugeMetricFamily(
        LAG,
        "Current approximate lag of a consumer group at topic/partition",
        labels=["consumergroup", "topic", "partition"],
    )
    current = GaugeMetricFamily(
        CURRENT_OFFSET,
        "Current offset of a consumer group at topic/partition",
        labels=["consumergroup", "topic", "partition"],
    )
    lag_sum = GaugeMetricFamily(
        LAG_SUM,
        "Current approximate lag of a consumer group at topic for all partitions",
        labels=["consumergroup", "topic"],
    )
    ends = GaugeMetricFamily(
        TOPIC_OFFSET, "Current offset of a broker at topic/partition", labels=["topic", "partition"]
    )
    lags = partition_lags(offsets)
    for item in lags:
        labels = [item.group, item.topic, str(item.partition)]
        lag.add_metric(labels, item.lag)
        current.add_metric(labels, item.committed)
    for (group, topic), total in sorted(lag_by_topic(lags).items()):
        lag_sum.add_metric([group, topic], total)
    for partition, end in sorted(offsets.ends.items()):
        ends.add_metric([partition.topic, str(partition.partition)], end)
    return [lag, current, lag_sum, ends]


class Admin(Protocol):
    """The part of kafka-python's `KafkaAdminClient` the lag reader uses (a fake one in unit tests)."""

    def list_groups(self) -> list[dict[str, Any]]: ...
    def list_group_offsets(self, group_specs: dict[str, Any]) -> dict[str, dict[TopicPartition, Any]]: ...
    def list_topics(self) -> list[str]: ...
    def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]: ...
    def list_partition_offsets(
        self, specs: dict[TopicPartition, Any], *, timeout_ms: int
    ) -> dict[Any, Any]: ...
    def close(self) -> None: ...


class KafkaOffsets:
    """Reads the exchange's groups' committed offsets and its topics' end offsets from the brokers.

    Only groups and topics named with the settings' prefix count (all of them with the default empty
    prefix). One admin client is kept between reads and replaced after an error. Not thread-safe:
    `LagCollector` serialises reads.
    """

    def __init__(
        self, kafka: KafkaSettings, timeout_seconds: float, admin: Callable[[], Admin] | None = None
    ):
        self.prefix = kafka.topic_prefix
        self.timeout_ms = max(int(timeout_seconds * 1000), 1)
        self._connect = admin or (lambda: _admin_client(kafka, self.timeout_ms))
        self._admin: Admin | None = None

    def committed(self) -> dict[str, dict[TopicPartition, int]]:
        """The next offset each group will read, for every partition it committed."""
        admin = self._client()
        groups = [
            group["group_id"] for group in admin.list_groups() if group["group_id"].startswith(self.prefix)
        ]
        if not groups:
            return {}
        found = admin.list_group_offsets({group: None for group in groups})
        return {
            group: {partition: meta.offset for partition, meta in partitions.items() if meta.offset >= 0}
            for group, partitions in found.items()
        }

    def ends(self) -> dict[TopicPartition, int]:
        """The end offset (next offset to be written) of every partition of the exchange's topics."""
        admin = self._client()
        topics = [
            name for name in admin.list_topics() if name.startswith(self.prefix) and not name.startswith("__")
        ]
        if not topics:
            return {}
        partitions = [
            TopicPartition(topic["name"], partition["partition_index"])
            for topic in admin.describe_topics(topics)
            for partition in topic["partitions"]
        ]
        found = admin.list_partition_offsets(
            {partition: OffsetSpec.LATEST for partition in partitions}, timeout_ms=self.timeout_ms
        )
        return {partition: result.offset for partition, result in found.items()}

    def reset(self) -> None:
        """Drop the admin client (after an error); the next read connects anew."""
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:  # closing a broken client must not hide the error that broke it
                _log.debug("closing the lag reader's admin client failed", exc_info=True)
        self._admin = None

    def _client(self) -> Admin:
        if self._admin is None:
            self._admin = self._connect()
        return self._admin


def _admin_client(kafka: KafkaSettings, timeout_ms: int) -> Admin:
    client: Admin = KafkaAdminClient(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id="exchange-lag",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )
    return client


_STORED = """
SELECT consumer_group, topic, kafka_partition, next_offset FROM consumer_offsets
WHERE starts_with(consumer_group, %s)
"""


def stored_offsets(postgres: PostgresSettings, prefix: str, timeout_seconds: float) -> Committed:
    """The offsets consumers keep in PostgreSQL (the sink's), per group; none before the migrations ran."""
    with bounded_connection(postgres, timeout_seconds) as conn:
        try:
            rows = conn.execute(_STORED, (prefix,)).fetchall()
        except psycopg.errors.UndefinedTable:
            return {}
    stored: dict[str, dict[TopicPartition, int]] = defaultdict(dict)
    for group, topic, partition, offset in rows:
        stored[group][TopicPartition(topic, partition)] = offset
    return dict(stored)


class LagCollector:
    """A prometheus_client collector: reads offsets on each scrape and yields kafka_exporter's gauges.

    `stored` returns the offsets kept outside Kafka (PostgreSQL); None reads Kafka's only. A failure
    reading Kafka yields no lag series for that scrape; a failure reading `stored` yields Kafka's.
    Both count in `exchange_lag_scrape_errors_total{source}`.
    """

    def __init__(self, kafka: KafkaOffsets, stored: Callable[[], Committed] | None = None) -> None:
        self._kafka = kafka
        self._stored = stored
        self._lock = threading.Lock()

    def read(self) -> Offsets | None:
        """Committed offsets first, then ends (so lag is never negative); None when Kafka failed."""
        with self._lock:
            try:
                committed = self._kafka.committed()
                stored = self._read_stored()
                ends = self._kafka.ends()
            except Exception as exc:  # a scrape must never fail: count it, log it, report nothing
                metrics.LAG_SCRAPE_ERRORS.labels(source="kafka").inc()
                _log.warning("reading consumer offsets from Kafka failed: %s", exc)
                self._kafka.reset()
                return None
        return Offsets(ends=ends, committed=merge_committed(committed, stored))

    def collect(self) -> Iterable[Metric]:
        """Called by prometheus_client on each scrape."""
        offsets = self.read()
        return families(offsets) if offsets is not None else []

    def describe(self) -> Iterable[Metric]:
        """The families' names without reading anything (registering must not touch the brokers)."""
        return families(Offsets(ends={}, committed={}))

    def _read_stored(self) -> Committed:
        if self._stored is None:
            return {}
        try:
            return self._stored()
        except Exception as exc:
            metrics.LAG_SCRAPE_ERRORS.labels(source="postgres").inc()
            _log.warning("reading the offsets stored in PostgreSQL failed: %s", exc)
            return {}


def lag_collector(
    kafka: KafkaSettings, postgres: PostgresSettings | None, timeout_seconds: float
) -> LagCollector:
    """The collector for the exchange's groups; with `postgres`, the sink's lag from its stored offsets
    (none stored, as after a rebuild began, is a sink at every partition's start)."""
    reader = KafkaOffsets(kafka, timeout_seconds)
    if postgres is None:
        return LagCollector(reader)
    sink = sink_group(kafka)
    return LagCollector(
        reader, lambda: {sink: {}, **stored_offsets(postgres, kafka.topic_prefix, timeout_seconds)}
    )
