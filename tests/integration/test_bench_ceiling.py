"""The connector benchmark's ceiling loops send exactly the records they are given, each on its partition:
a ceiling that skipped or doubled records would overstate what kafka-python can send."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from kafka import KafkaConsumer

from bench import send_ceiling
from exchange import admin
from exchange.partitioning import partition_for
from exchange.settings import ExchangeSettings
from exchange.topics import TAX_PAYMENT as TAX


def _read_back(settings: ExchangeSettings, topic: str, count: int) -> Counter[tuple[int, bytes, bytes]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10_000,
    )
    seen: Counter[tuple[int, bytes, bytes]] = Counter()
    try:
        for message in consumer:
            seen[(message.partition, message.key, message.value)] += 1
            if sum(seen.values()) >= count:
                break
    finally:
        consumer.close()
    return seen


def test_the_ceiling_loops_send_every_record_on_its_partition(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    admin.ensure_topics(settings.kafka)
    topic, partitions = TAX.full_name(settings.kafka), TAX.partitions(settings.kafka)
    encoded = [(f"subject-{n:04d}".encode(), f"record {n}".encode()) for n in range(301)]

    ceiling = send_ceiling.measure(settings, topic, partitions, encoded, processes=3, folder=tmp_path)

    assert ceiling.processes == 3 and ceiling.one_loop > 0 and ceiling.parallel > 0
    # The single loop sends a warm-up record (the first) and the whole list; then each of the three
    # children a warm-up record (its own first: records 0, 1 and 2) and every third record.
    placed = [(partition_for(key, partitions), key, value) for key, value in encoded]
    expected = Counter(placed) + Counter(placed) + Counter(placed[:1]) + Counter(placed[:3])
    assert _read_back(settings, topic, sum(expected.values())) == expected
