"""What kafka-python can send on this machine at most: the ceiling a connector's figure sits under.

The connector benchmark's baseline is the issue's — one bare kafka-python send loop, the producer's
default partitioner choosing each record's partition. Two more loops say where the ceiling is:

- one loop that is given every record's partition (computed beforehand, as a connector's preparing
  processes do), so the sending thread does the least kafka-python allows per record;
- `processes` such loops in parallel processes, each with its own producer and its share of the
  records, started together: what the machine's cores can send when nothing else runs, no parsing,
  no conversion, no positions.

Each loop uses the publisher's producer configuration (`acks=all`, idempotent, the connectors'
compression and linger). A child reads its records from a file, so starting it costs no pickling.
"""

from __future__ import annotations

import multiprocessing
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from exchange.partitioning import partition_for
from exchange.settings import ExchangeSettings

_LENGTHS = struct.Struct("<III")  # partition, key length, value length


@dataclass(frozen=True)
class Ceiling:
    """Records/s of one loop given the partitions, and of `processes` such loops in parallel."""

    one_loop: float
    processes: int
    parallel: float


def _write(path: Path, records: Sequence[tuple[int, bytes, bytes]]) -> None:
    with path.open("wb") as out:
        for partition, key, value in records:
            out.write(_LENGTHS.pack(partition, len(key), len(value)))
            out.write(key)
            out.write(value)


def _read(path: Path) -> Iterator[tuple[int, bytes, bytes]]:
    data = path.read_bytes()
    at = 0
    while at < len(data):
        partition, key_length, value_length = _LENGTHS.unpack_from(data, at)
        at += _LENGTHS.size
        key = data[at : at + key_length]
        at += key_length
        yield partition, key, data[at : at + value_length]
        at += value_length


def _producer(options: dict[str, Any], topic: str, first: tuple[int, bytes, bytes]) -> KafkaProducer:
    """A producer with the publisher's configuration, warmed: connected, `first` sent and acknowledged."""
    producer = KafkaProducer(acks="all", enable_idempotence=True, batch_size=256 * 1024, **options)
    partition, key, value = first
    producer.send(topic, key=key, value=value, partition=partition).get(timeout=30)
    return producer


def _send(producer: KafkaProducer, topic: str, records: Sequence[tuple[int, bytes, bytes]]) -> float:
    send = producer.send
    started = time.perf_counter()
    for partition, key, value in records:
        send(topic, key=key, value=value, partition=partition)
    producer.flush()
    return time.perf_counter() - started


def _child(options: dict[str, Any], topic: str, path: Path, ready: Any, start: Event, seconds: Any) -> None:
    records = list(_read(path))
    producer = _producer(options, topic, records[0])
    ready.put(None)
    start.wait()
    seconds.put(_send(producer, topic, records))
    producer.close()


def measure(
    settings: ExchangeSettings,
    topic: str,
    partitions: int,
    encoded: Sequence[tuple[bytes, bytes]],
    processes: int,
    folder: Path,
) -> Ceiling:
    """Send `encoded` (key, value) to `topic` once from one loop, then split over `processes` loops."""
    records = [(partition_for(key, partitions), key, value) for key, value in encoded]
    options = {
        "bootstrap_servers": settings.kafka.bootstrap_servers,
        "compression_type": settings.connectors.compression,
        "linger_ms": settings.connectors.linger_ms,
    }
    producer = _producer(options, topic, records[0])
    one_loop = len(records) / _send(producer, topic, records)
    producer.close()

    context = multiprocessing.get_context("spawn")
    ready, start, seconds = context.Queue(), context.Event(), context.Queue()
    children = []
    for n in range(processes):
        path = folder / f"ceiling-{n}.bin"
        _write(path, records[n::processes])
        children.append(
            context.Process(target=_child, args=(options, topic, path, ready, start, seconds), daemon=True)
        )
    for child in children:
        child.start()
    # All start together, once each has read its file and had a warm-up record acknowledged.
    for _ in children:
        ready.get(timeout=120)
    start.set()
    slowest = max(seconds.get(timeout=600) for _ in children)
    for child in children:
        child.join(timeout=30)
        if child.exitcode != 0:
            raise RuntimeError(f"a ceiling send loop exited with {child.exitcode}")
    return Ceiling(one_loop, processes, len(records) / slowest)
