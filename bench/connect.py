"""`exchange bench connect`: records/s of each file connector on a large export, against a bare
kafka-python send loop of the same pre-encoded records, measured in the same run on the same broker."""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaProducer
from rich.console import Console
from rich.table import Table

from bench import send_ceiling
from bench.exports import WRITERS
from connectors.files import PREPARING_WORKERS, run_file
from connectors.mappings import MAPPINGS, SOURCES
from connectors.positions import PositionStore
from connectors.publisher import Publisher
from exchange import admin
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings
from exchange.subjects import subject_key

_console = Console()


@dataclass(frozen=True)
class Result:
    """One connector's figure and its baseline."""

    department: str
    records: int
    connector_per_second: float
    baseline_per_second: float
    ceiling: send_ceiling.Ceiling

    @property
    def ratio(self) -> float:
        return self.connector_per_second / self.baseline_per_second


def _pre_encoded(settings: ExchangeSettings, department: str, path: Path) -> list[tuple[bytes, bytes]]:
    mapping, codec = MAPPINGS[department], AvroCodec()
    secret = settings.subject_secret.get_secret_value().encode()
    now = dt.datetime.now(dt.UTC)
    encoded = []
    for record in SOURCES[department].read(path):
        assert record.fields is not None, record.problem
        for converted in mapping.convert(record.fields, published_at=now, trace_id="bench"):
            encoded.append(
                (
                    subject_key(converted.subject_id, secret).encode(),
                    codec.encode(mapping.dataset, converted.record),
                )
            )
    return encoded


def _baseline(settings: ExchangeSettings, topic: str, encoded: list[tuple[bytes, bytes]]) -> float:
    """The bare loop: the same producer configuration as the publisher, no parsing, no conversion."""
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        compression_type=settings.connectors.compression,
        linger_ms=settings.connectors.linger_ms,
        batch_size=256 * 1024,
    )
    started = time.perf_counter()
    for key, value in encoded:
        producer.send(topic, key=key, value=value)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return len(encoded) / elapsed


def _connector(settings: ExchangeSettings, department: str, path: Path, state: Path) -> tuple[int, float]:
    publisher = Publisher(settings, client_id=f"bench-{department}")
    started = time.perf_counter()
    summary = run_file(
        department,
        path,
        publisher=publisher,
        positions=PositionStore(state),
        chunk_records=settings.connectors.chunk_records,
    )
    elapsed = time.perf_counter() - started
    publisher.close()
    return summary.read, summary.read / elapsed


def _prefixed(settings: ExchangeSettings, prefix: str) -> ExchangeSettings:
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"topic_prefix": prefix})})


def run(
    settings: ExchangeSettings, records: int, departments: list[str], ceiling_processes: int = 3
) -> list[Result]:
    """Run the benchmark for `departments` on `records`-record exports; print and return the figures."""
    # kafka-python's IO thread warns whenever a busy process makes it wait; here that is expected.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    bench = _prefixed(settings, prefix)
    # The baseline writes to topics of its own with the very same layout.
    base = _prefixed(settings, f"{prefix}baseline.")
    admin.ensure_topics(bench.kafka)
    admin.ensure_topics(base.kafka)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="exchange-bench-") as folder:
            for department in departments:
                name, write = WRITERS[department]
                path = Path(folder) / name
                with _console.status(f"writing a {records:,}-record {department} export…"):
                    write(path, records)
                with _console.status(f"{department}: encoding the baseline's records…"):
                    encoded = _pre_encoded(bench, department, path)
                topic = MAPPINGS[department].topic.full_name(base.kafka)
                with _console.status(f"{department}: bare kafka-python send loop…"):
                    baseline = _baseline(base, topic, encoded)
                with _console.status(f"{department}: the machine's send ceiling…"):
                    ceiling = send_ceiling.measure(
                        base,
                        topic,
                        MAPPINGS[department].topic.partitions(base.kafka),
                        encoded,
                        ceiling_processes,
                        Path(folder),
                    )
                del encoded
                with _console.status(f"{department}: connector…"):
                    read, rate = _connector(bench, department, path, Path(folder) / "state")
                results.append(Result(department, read, rate, baseline, ceiling))
    finally:
        admin.remove_prefixed(bench.kafka)
    table = Table(
        "connector",
        "records",
        "connector records/s",
        "bare send loop records/s",
        "ratio",
        "ceiling: 1 loop, partitions given",
        f"ceiling: {ceiling_processes} loops in parallel",
        title=f"exchange bench connect ({PREPARING_WORKERS} preparing processes per connector)",
    )
    for r in results:
        table.add_row(
            r.department,
            f"{r.records:,}",
            f"{r.connector_per_second:,.0f}",
            f"{r.baseline_per_second:,.0f}",
            f"{r.ratio:.2f}",
            f"{r.ceiling.one_loop:,.0f}",
            f"{r.ceiling.parallel:,.0f}",
        )
    _console.print(table)
    _console.print(
        "ratio = connector / bare send loop (the issue's baseline: one kafka-python producer choosing "
        "partitions with its default partitioner). Ceilings: the same records sent with their partitions "
        f"computed beforehand, by one loop and split over {ceiling_processes} loops in parallel processes: "
        f"the most kafka-python sends on this machine's {os.cpu_count()} cores with nothing else to do."
    )
    return results
