"""The benchmarks' ceilings measure what they claim: the connector benchmark's loops send exactly the
records they are given, each on its partition (a ceiling that skipped or doubled records would overstate
what kafka-python can send), and faust alone takes exactly the records of the dataset topics."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from bench import send_ceiling
from bench.isolation import free_port
from bench.pipeline_fold import faust_floor
from exchange import admin
from exchange.partitioning import partition_for
from exchange.settings import ExchangeSettings
from exchange.topics import DATASET_TOPICS
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


def test_the_faust_floor_takes_every_record_of_the_dataset_topics_once(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    """The fold benchmark's ceiling (a no-op agent on the processor's app) must time the whole backlog:
    stopping short, or counting a record twice, would misstate what faust alone can deliver."""
    admin.ensure_topics(settings.kafka)
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    try:
        for n, topic in enumerate(DATASET_TOPICS * 40):
            producer.send(topic.full_name(settings.kafka), key=f"subject-{n:03d}".encode(), value=b"x")
        producer.flush()
    finally:
        producer.close()
    processor = settings.processor.model_copy(
        update={"datadir": tmp_path / "floor", "web_port": free_port(), "app_id": "floor-test"}
    )

    floor = faust_floor(settings.model_copy(update={"processor": processor}), events=160, timeout_seconds=60)

    assert floor.taken == 160 and 0 < floor.first_batch <= 160 and floor.seconds >= 0
