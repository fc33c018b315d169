"""Consumer lag: the arithmetic, the reads through a fake admin client, and the collector's output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata, OffsetAndTimestamp
from prometheus_client import CollectorRegistry, generate_latest

from exchange.lag import (
    EXPORTED_NAMES,
    KafkaOffsets,
    LagCollector,
    Offsets,
    PartitionLag,
    lag_by_topic,
    merge_committed,
    partition_lags,
)
from exchange.settings import KafkaSettings
from monitoring import metrics

TAX0, TAX1 = TopicPartition("p.tax.payment.v1", 0), TopicPartition("p.tax.payment.v1", 1)
PROFILE0 = TopicPartition("p.exchange.profile.v1", 0)


class FakeAdmin:
    """Answers like kafka-python 3.0's KafkaAdminClient, from plain dicts; `fail` makes every call raise."""

    def __init__(
        self, committed: dict[str, dict[TopicPartition, int]], ends: dict[TopicPartition, int]
    ) -> None:
        self.committed = committed
        self.ends = ends
        self.fail: Exception | None = None
        self.closed = False
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.fail is not None:
            raise self.fail

    def list_groups(self) -> list[dict[str, Any]]:
        self._call("list_groups")
        return [{"group_id": group, "protocol_type": "consumer"} for group in self.committed]

    def list_group_offsets(self, group_specs: dict[str, Any]) -> dict[str, dict[TopicPartition, Any]]:
        self._call("list_group_offsets")
        return {
            group: {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self.committed[group].items()}
            for group in group_specs
        }

    def list_topics(self) -> list[str]:
        self._call("list_topics")
        return sorted({tp.topic for tp in self.ends} | {"__consumer_offsets"})

    def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        self._call("describe_topics")
        return [
            {
                "name": topic,
                "partitions": [{"partition_index": tp.partition} for tp in self.ends if tp.topic == topic],
            }
            for topic in topics
        ]

    def list_partition_offsets(self, specs: dict[TopicPartition, Any], *, timeout_ms: int) -> dict[Any, Any]:
        self._call("list_partition_offsets")
        assert timeout_ms == 2500
        return {tp: OffsetAndTimestamp(self.ends[tp], -1, 0) for tp in specs}

    def close(self) -> None:
        self.closed = True


def _reader(admin: FakeAdmin, prefix: str = "p.") -> tuple[KafkaOffsets, list[FakeAdmin]]:
    made: list[FakeAdmin] = []

    def connect() -> FakeAdmin:
        made.append(admin)
        return admin

    return KafkaOffsets(KafkaSettings(topic_prefix=prefix), 2.5, admin=connect), made


def _samples(collector: LagCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def _errors(source: str) -> float:
    return float(metrics.LAG_SCRAPE_ERRORS.labels(source=source)._value.get())


def test_lag_is_end_minus_committed_never_negative_and_only_for_live_topics() -> None:
    offsets = Offsets(
        ends={TAX0: 100, TAX1: 5, PROFILE0: 7},
        committed={"p.g": {TAX0: 60, TAX1: 9, TopicPartition("p.deleted.v1", 0): 3}, "p.sink": {PROFILE0: 7}},
    )
    assert partition_lags(offsets) == [
        PartitionLag("p.g", TAX0.topic, 0, 60, 100),
        PartitionLag("p.g", TAX1.topic, 1, 9, 5),
        PartitionLag("p.sink", PROFILE0.topic, 0, 7, 7),
    ]
    assert [item.lag for item in partition_lags(offsets)] == [40, 0, 0]
    assert lag_by_topic(partition_lags(offsets)) == {("p.g", TAX0.topic): 40, ("p.sink", PROFILE0.topic): 0}


def test_the_sink_s_lag_is_counted_from_the_offsets_it_resumes_from() -> None:
    # Its Kafka offsets trail (committed after PostgreSQL's, for tools) or run ahead: after a rebuild
    # deleted the stored ones, the higher of the two showed no lag while the sink re-read every topic.
    kafka = {"p.sink": {PROFILE0: 5, TAX0: 10}, "p.processor": {TAX0: 3}}
    assert merge_committed(kafka, {"p.sink": {PROFILE0: 9, TAX0: 8}}) == {
        "p.sink": {PROFILE0: 9, TAX0: 8},
        "p.processor": {TAX0: 3},
    }
    # A partition PostgreSQL holds nothing of is read from its start; none at all, as a rebuild begins.
    assert merge_committed(kafka, {"p.sink": {PROFILE0: 9}})["p.sink"] == {PROFILE0: 9, TAX0: 0}
    assert merge_committed(kafka, {"p.sink": {}})["p.sink"] == {PROFILE0: 0, TAX0: 0}
    assert merge_committed(kafka, {}) == kafka  # PostgreSQL unreadable: Kafka's, rather than nothing


def test_the_reader_keeps_to_the_prefix_and_skips_uncommitted_partitions() -> None:
    admin = FakeAdmin({"p.g": {TAX0: 4, TAX1: -1}, "other.g": {TAX0: 1}}, {TAX0: 10, TAX1: 0})
    admin.ends[TopicPartition("other.topic", 0)] = 3
    reader, _ = _reader(admin)
    assert reader.committed() == {"p.g": {TAX0: 4}}
    assert reader.ends() == {TAX0: 10, TAX1: 0}


def test_the_collector_exports_kafka_exporters_series() -> None:
    admin = FakeAdmin(
        {"p.processor": {TAX0: 60, TAX1: 5}, "p.sink": {PROFILE0: 2}}, {TAX0: 100, TAX1: 5, PROFILE0: 7}
    )
    reader, _ = _reader(admin)
    samples = _samples(LagCollector(reader, stored=lambda: {"p.sink": {PROFILE0: 7}}))
    lag = (("consumergroup", "p.processor"), ("partition", "0"), ("topic", TAX0.topic))
    assert samples[("kafka_consumergroup_lag", lag)] == 40
    assert samples[("kafka_consumergroup_current_offset", lag)] == 60
    assert (
        samples[("kafka_consumergroup_lag_sum", (("consumergroup", "p.processor"), ("topic", TAX0.topic)))]
        == 40
    )
    # PostgreSQL's offset for the sink is ahead of the one it committed to Kafka: the sink is caught up.
    sink = (("consumergroup", "p.sink"), ("partition", "0"), ("topic", PROFILE0.topic))
    assert samples[("kafka_consumergroup_lag", sink)] == 0
    assert samples[("kafka_topic_partition_current_offset", (("partition", "1"), ("topic", TAX1.topic)))] == 5
    # Committed offsets are read before the end offsets, so a lag is never negative.
    assert admin.calls.index("list_group_offsets") < admin.calls.index("list_partition_offsets")


def test_the_exposition_uses_kafka_exporters_names_and_labels() -> None:
    admin = FakeAdmin({"p.processor": {TAX0: 1}}, {TAX0: 3})
    reader, _ = _reader(admin)
    registry = CollectorRegistry()
    registry.register(LagCollector(reader))
    text = generate_latest(registry).decode()
    assert (
        'kafka_consumergroup_lag{consumergroup="p.processor",partition="0",topic="p.tax.payment.v1"} 2.0'
        in text
    )
    for name in EXPORTED_NAMES:
        assert f"# TYPE {name} gauge" in text


def test_registering_the_collector_does_not_touch_the_brokers() -> None:
    admin = FakeAdmin({}, {})
    reader, made = _reader(admin)
    CollectorRegistry().register(LagCollector(reader))
    assert made == [] and admin.calls == []


@pytest.mark.parametrize("error", [OSError("broker gone"), RuntimeError("unexpected answer")])
def test_a_failed_kafka_read_counts_an_error_and_reports_nothing(error: Exception) -> None:
    admin = FakeAdmin({"p.g": {TAX0: 1}}, {TAX0: 2})
    reader, made = _reader(admin)
    collector = LagCollector(reader)
    before = _errors("kafka")
    admin.fail = error
    assert list(collector.collect()) == []
    assert _errors("kafka") == before + 1
    assert admin.closed
    admin.fail = None
    assert _samples(collector)  # the next scrape connects anew and reports again
    assert len(made) == 2


def test_a_failed_postgres_read_counts_an_error_and_keeps_kafkas_offsets() -> None:
    admin = FakeAdmin({"p.sink": {PROFILE0: 2}}, {PROFILE0: 7})
    reader, _ = _reader(admin)

    def broken() -> dict[str, dict[TopicPartition, int]]:
        raise OSError("connection refused")

    stored: Callable[[], dict[str, dict[TopicPartition, int]]] = broken
    before = _errors("postgres")
    samples = _samples(LagCollector(reader, stored=stored))
    assert _errors("postgres") == before + 1
    sink = (("consumergroup", "p.sink"), ("partition", "0"), ("topic", PROFILE0.topic))
    assert samples[("kafka_consumergroup_lag", sink)] == 5
