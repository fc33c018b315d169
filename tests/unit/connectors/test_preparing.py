"""Preparing an export in chunks: every record once, in order, with the position just past each chunk."""

from __future__ import annotations

import datetime as dt
import pickle
from collections import Counter
from pathlib import Path

from connectors.exceptions import RecordRejected
from connectors.mappings import MAPPINGS, SOURCES
from connectors.messages import MessageEncoder
from connectors.preparing import prepare_file
from connectors.records import Converted, SourceRecord
from exchange.partitioning import partition_for
from exchange.serialization import AvroCodec
from exchange.settings import KafkaSettings
from exchange.topics import DATASET_TOPICS, DEADLETTER

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "samples"
KAFKA = KafkaSettings(topic_prefix="unit.")
AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PARTITIONS = {topic.full_name(KAFKA): 4 for topic in (*DATASET_TOPICS, DEADLETTER)}


def _encoder() -> MessageEncoder:
    return MessageEncoder(b"unit-secret", KAFKA, PARTITIONS)


def test_chunks_cover_the_file_once_in_order_with_their_end_positions(tmp_path: Path) -> None:
    export = tmp_path / "tax.csv"
    export.write_bytes((SAMPLES / "tax.csv").read_bytes() + b"not,a,valid,record\r\n")
    records = list(SOURCES["tax"].read(export))
    chunks = list(prepare_file("tax", export, 0, 3, _encoder()))

    assert [chunk.end for chunk in chunks[:-1]] == [records[n].end for n in range(2, len(records), 3)]
    assert chunks[-1].end == records[-1].end == export.stat().st_size
    assert sum(chunk.summary.read for chunk in chunks) == len(records)
    rejected: Counter[str] = Counter()
    for chunk in chunks:
        rejected.update(chunk.summary.rejected)
        assert len(chunk.messages) == chunk.summary.published + chunk.summary.rejected_total
    assert rejected == Counter({"column_count": 1})

    codec = AvroCodec()
    topic = MAPPINGS["tax"].topic.full_name(KAFKA)
    messages = [message for chunk in chunks for message in chunk.messages]
    published = [codec.decode(message.value) for message in messages if message.topic == topic]
    ids = [record["envelope"]["event_id"] for _, record in published]
    assert ids == [converted.record["envelope"]["event_id"] for converted in _convertible(records)]
    for message in messages:
        assert message.partition == partition_for(message.key, 4)


def _convertible(records: list[SourceRecord]) -> list[Converted]:
    converted = []
    for record in records:
        try:
            converted += MAPPINGS["tax"].convert(record.fields or {}, published_at=AT, trace_id="t")
        except RecordRejected:
            continue
    return converted


def test_resuming_from_a_chunks_end_prepares_exactly_the_rest(tmp_path: Path) -> None:
    export = SAMPLES / "social.jsonl"
    whole = [m for chunk in prepare_file("social", export, 0, 4, _encoder()) for m in chunk.messages]
    first = next(iter(prepare_file("social", export, 0, 4, _encoder())))
    rest = [m for chunk in prepare_file("social", export, first.end, 4, _encoder()) for m in chunk.messages]
    assert [m.key for m in first.messages + rest] == [m.key for m in whole]


def test_an_encoder_crosses_to_a_preparing_process_by_its_ingredients() -> None:
    encoder = _encoder()
    copy = pickle.loads(pickle.dumps(encoder))
    [converted] = MAPPINGS["identity"].convert(
        next(iter(SOURCES["identity"].read(SAMPLES / "identity.csv"))).fields or {},
        published_at=AT,
        trace_id="t",
    )
    topic = MAPPINGS["identity"].topic
    assert copy.record(topic, "identity.person", converted) == encoder.record(
        topic, "identity.person", converted
    )
