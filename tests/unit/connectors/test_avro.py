"""The connectors' compiled Avro encoder writes exactly AvroCodec's bytes, and leaves to fastavro what it
does not take."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest

from bench.exports import WRITERS
from connectors import avro
from connectors.avro import RecordEncoder
from connectors.mappings import MAPPINGS, SOURCES
from connectors.messages import MessageEncoder
from connectors.records import Rejection
from exchange.exceptions import SerializationError
from exchange.serialization import AvroCodec
from exchange.settings import KafkaSettings
from exchange.topics import DATASET_TOPICS, DEADLETTER

PUBLISHED_AT = dt.datetime(2026, 11, 23, 4, 0, 0, 123456, tzinfo=dt.UTC)
FILES = {"identity": "identity.csv", "tax": "tax.csv", "social": "social.jsonl"}


def _records(department: str, path: Path) -> list[dict[str, Any]]:
    mapping = MAPPINGS[department]
    records = []
    for source in SOURCES[department].read(path):
        if source.fields is None:
            continue
        try:
            converted = mapping.convert(source.fields, published_at=PUBLISHED_AT, trace_id="t")
        except Exception:  # a sample row the mapping rejects has nothing to encode
            continue
        records.extend(item.record for item in converted)
    return records


@pytest.mark.parametrize("department", ["identity", "tax", "social"])
def test_compiled_bytes_are_fastavros_for_every_sample_and_bench_record(
    department: str, samples: Path, tmp_path: Path
) -> None:
    name, write = WRITERS[department]
    write(tmp_path / name, 300)
    records = _records(department, samples / FILES[department]) + _records(department, tmp_path / name)
    assert len(records) > 300
    dataset = MAPPINGS[department].dataset
    fast, codec = RecordEncoder(), AvroCodec()
    assert fast.compiled(dataset)
    for record in records:
        assert fast.encode(dataset, record) == codec.encode(dataset, record)


def _letter(**changes: Any) -> dict[str, Any]:
    letter: dict[str, Any] = {
        "event_id": "0b8f3e8c-5d0e-4f8e-9a57-4d4c1ad9c0de",
        "department": "tax",
        "dataset": "tax.payment",
        "source": "tax.csv",
        "position": "line 12 (byte 3456)",
        "reason": "bad_amount",
        "field": "SE",
        "message": "金额不是数字 𠮷",
        "original": b"\xff\x00,\xc3\x01",
        "rejected_at": PUBLISHED_AT,
        "trace_id": "t",
    }
    return letter | changes


@pytest.mark.parametrize(
    "letter",
    [
        _letter(),
        _letter(field=None),
        _letter(original=b""),
        _letter(rejected_at=dt.datetime(1960, 1, 1, tzinfo=dt.UTC)),
        _letter(message="x" * 300),
    ],
)
def test_compiled_dead_letters_are_fastavros(letter: dict[str, Any]) -> None:
    fast = RecordEncoder()
    assert fast.compiled("deadletter")
    assert fast.encode("deadletter", letter) == AvroCodec().encode("deadletter", letter)


def _tax_record(**changes: Any) -> dict[str, Any]:
    path = Path(__file__).resolve().parents[3].parent / "shared" / "samples" / "tax.csv"
    record = _records("tax", path)[0]
    return record | changes


@pytest.mark.parametrize(
    "changes",
    [
        {},
        # values fastavro converts but the compiled path does not take: the same bytes all the same
        {"income": 12.5},
        {"income": Decimal("-0.01")},
        {"income": Decimal("-128.00")},
        {"income": Decimal("99999999.99")},
    ],
)
def test_edge_values_encode_as_fastavro_does(changes: dict[str, Any]) -> None:
    record = _tax_record()
    if "income" not in record:
        pytest.skip("the tax schema has no income field")
    record |= changes
    try:
        expected: bytes | type[Exception] = AvroCodec().encode("tax.payment", record)
    except SerializationError:
        expected = SerializationError
    if expected is SerializationError:
        with pytest.raises(SerializationError):
            RecordEncoder().encode("tax.payment", record)
    else:
        assert RecordEncoder().encode("tax.payment", record) == expected


def test_a_record_that_does_not_fit_raises_the_codecs_error() -> None:
    record = _tax_record()
    del record["envelope"]
    with pytest.raises(SerializationError):
        RecordEncoder().encode("tax.payment", record)
    wrong = _tax_record()
    wrong["envelope"] = dict(wrong["envelope"], source_version="one")
    with pytest.raises(SerializationError):
        RecordEncoder().encode("tax.payment", wrong)


def test_a_record_the_compiled_path_does_not_take_goes_to_fastavro() -> None:
    # a long given as a bool: fastavro decides (it writes it as an int)
    record = _tax_record()
    record["envelope"] = dict(record["envelope"], source_version=True)
    assert RecordEncoder().encode("tax.payment", record) == AvroCodec().encode("tax.payment", record)


def test_the_compiled_path_does_not_call_fastavro(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = RecordEncoder()

    def refuse(*args: Any) -> bytes:
        raise AssertionError("fastavro was asked")

    monkeypatch.setattr(AvroCodec, "encode", refuse)
    fast.encode("tax.payment", _tax_record())
    fast.encode("deadletter", _letter())


def test_message_encoder_encodes_with_the_compiled_path() -> None:
    kafka = KafkaSettings()
    partitions = {topic.full_name(kafka): 3 for topic in (*DATASET_TOPICS, DEADLETTER)}
    encoder = MessageEncoder(b"secret", kafka, partitions)
    message = encoder.dead_letter(
        department="tax",
        dataset="tax.payment",
        source="tax.csv",
        position="line 2 (byte 10)",
        rejection=Rejection("bad_amount", "SE", "not a number"),
        original=b"x",
        trace_id="t",
    )
    name, decoded = AvroCodec().decode(message.value)
    assert name == "deadletter"
    assert decoded["original"] == b"x" and decoded["field"] == "SE"


# Every inline writer, with values on both sides of the one-byte shortcut and of the type's range.
_SHORTCUTS = {
    "type": "record",
    "name": "unit.Shortcuts",
    "fields": [
        {"name": "long", "type": "long"},
        {"name": "int", "type": "int"},
        {"name": "text", "type": "string"},
        {"name": "data", "type": "bytes"},
        {
            "name": "symbol",
            "type": {"type": "enum", "name": "unit.Many", "symbols": [f"S{n}" for n in range(200)]},
        },
        {"name": "maybe", "type": ["null", "long"]},
        {
            "name": "inner",
            "type": {"type": "record", "name": "unit.Inner", "fields": [{"name": "flag", "type": "boolean"}]},
        },
    ],
}
_NUMBERS = [*range(-200, 200), -(1 << 31), (1 << 31) - 1, 1 << 20, -(1 << 20)]
_SIZES = [0, 1, 62, 63, 64, 65, 127, 128, 129, 8191, 8192, 20000]


def _shortcut_records() -> list[dict[str, Any]]:
    records = []
    for n in range(max(len(_NUMBERS), len(_SIZES))):
        number, size = _NUMBERS[n % len(_NUMBERS)], _SIZES[n % len(_SIZES)]
        records.append(
            {
                "long": number * (1 << 20) if n % 3 == 0 else number,
                "int": number,
                "text": ("税" if n % 2 else "a") * size,
                "data": b"b" * size,
                "symbol": f"S{n % 200}",
                "maybe": None if n % 2 else number,
                "inner": {"flag": n % 2 == 0},
            }
        )
    return records


def test_generated_writers_write_fastavros_bytes_around_every_shortcut() -> None:
    parsed = fastavro.parse_schema(_SHORTCUTS)
    write = avro.compile_schema(parsed, parsed.get("__named_schemas", {}))
    for record in _shortcut_records():
        expected = io.BytesIO()
        fastavro.schemaless_writer(expected, parsed, record)
        out = bytearray()
        write(out, record)
        assert bytes(out) == expected.getvalue(), record


@pytest.mark.parametrize(
    "change",
    [
        {"int": 1 << 31},
        {"long": 1 << 63},
        {"text": b"bytes"},
        {"symbol": "S200"},
        {"maybe": "x"},
        {"inner": []},
    ],
)
def test_generated_writers_refuse_what_they_do_not_take_exactly(change: dict[str, Any]) -> None:
    parsed = fastavro.parse_schema(_SHORTCUTS)
    write = avro.compile_schema(parsed, parsed.get("__named_schemas", {}))
    record = _shortcut_records()[5] | change
    with pytest.raises((avro._NotTaken, KeyError)):
        write(bytearray(), record)
