"""Preparing an export in chunks: every record once, in order, with the position just past each chunk."""

from __future__ import annotations

import datetime as dt
import itertools
import pickle
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from connectors.exceptions import RecordRejected
from connectors.mappings import MAPPINGS, SOURCES
from connectors.messages import MessageEncoder
from connectors.preparing import PreparedChunk, prepare_file
from connectors.records import Converted, SourceRecord
from connectors.synth.generator import generate
from exchange.partitioning import partition_for
from exchange.serialization import AvroCodec
from exchange.settings import KafkaSettings
from exchange.topics import DATASET_TOPICS, DEADLETTER

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "samples"
FILES = {"identity": "identity.csv", "tax": "tax.csv", "social": "social.jsonl"}
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


# What differs between two preparations of the same records: the time they were prepared and the trace.
_VOLATILE = frozenset({"published_at", "rejected_at", "trace_id"})


def _stable(value: object) -> object:
    if isinstance(value, dict):
        return {key: _stable(item) for key, item in value.items() if key not in _VOLATILE}
    return value


def _contents(chunks: Iterable[PreparedChunk]) -> list[tuple[object, ...]]:
    """Every chunk's end, counts and messages (topic, partition, key, decoded value), times left out."""
    codec = AvroCodec()
    return [
        (
            chunk.end,
            chunk.summary.read,
            chunk.summary.published,
            dict(chunk.summary.rejected),
            [(m.topic, m.partition, m.key, _stable(codec.decode(m.value)[1])) for m in chunk.messages],
        )
        for chunk in chunks
    ]


def _in_turn(shares: list[list[PreparedChunk]]) -> list[PreparedChunk]:
    return [chunk for turn in itertools.zip_longest(*shares) for chunk in turn if chunk is not None]


@pytest.fixture(scope="module")
def synth_exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic export of every department with many bad rows (one per five good ones)."""
    folder = tmp_path_factory.mktemp("synth")
    generate(40, 7, folder, bad_rate=0.2)
    return folder


@pytest.mark.parametrize("department", ["identity", "tax", "social"])
@pytest.mark.parametrize("chunk_records", [1, 7, 50])
@pytest.mark.parametrize("export", ["samples", "synth"])
def test_processes_preparing_chunks_in_turn_prepare_exactly_what_one_prepares(
    synth_exports: Path, export: str, department: str, chunk_records: int
) -> None:
    path = (SAMPLES if export == "samples" else synth_exports) / FILES[department]
    one = list(prepare_file(department, path, 0, chunk_records, _encoder()))
    for workers in (2, 3) if chunk_records == 7 else (2,):
        shares = [
            list(prepare_file(department, path, 0, chunk_records, _encoder(), None, (k, workers)))
            for k in range(workers)
        ]
        assert _contents(_in_turn(shares)) == _contents(one)
        # Each prepared its own chunks only.
        assert [len(share) for share in shares] == [len(one[k::workers]) for k in range(workers)]
    if export == "synth":
        assert sum(sum(chunk.summary.rejected.values()) for chunk in one) > 0


def test_resuming_in_turn_from_a_chunks_end_prepares_exactly_the_rest() -> None:
    path = SAMPLES / "tax.csv"
    whole = list(prepare_file("tax", path, 0, 4, _encoder()))
    start = whole[2].end
    shares = [list(prepare_file("tax", path, start, 4, _encoder(), None, (k, 2))) for k in range(2)]
    assert _contents(_in_turn(shares)) == _contents(whole[3:])


def test_preparing_stops_at_the_agreed_end_though_the_file_grew(tmp_path: Path) -> None:
    export = tmp_path / "social.jsonl"
    original = (SAMPLES / "social.jsonl").read_bytes()
    lines = original.splitlines(keepends=True)
    export.write_bytes(b"".join(lines[:30]))
    agreed = export.stat().st_size
    export.write_bytes(original)  # it grew after the size was taken
    chunks = list(prepare_file("social", export, 0, 7, _encoder(), agreed))
    assert chunks[-1].end == agreed
    assert sum(chunk.summary.read for chunk in chunks) == 30
    rest = list(prepare_file("social", export, agreed, 7, _encoder()))
    assert sum(chunk.summary.read for chunk in chunks + rest) == len(lines)


def test_a_chunk_crosses_to_the_sending_process_with_its_messages_as_plain_tuples() -> None:
    chunk = next(iter(prepare_file("tax", SAMPLES / "tax.csv", 0, 5, _encoder())))
    crossed = pickle.loads(pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))
    assert [type(message) for message in crossed.messages] == [tuple] * len(chunk.messages)
    assert crossed.messages == [tuple(message) for message in chunk.messages]
    assert (crossed.end, crossed.summary) == (chunk.end, chunk.summary)
