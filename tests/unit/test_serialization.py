"""Avro single-object encoding, the schema set, and the backward-compatibility check."""

from __future__ import annotations

import copy
import json
from io import BytesIO

import pytest
from fastavro import schemaless_writer
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from fastavro.utils import generate_many

from exchange import compatibility, schemas
from exchange.exceptions import SerializationError
from exchange.serialization import MAGIC, AvroCodec


def test_fingerprint_matches_the_avro_specification_vector() -> None:
    # The spec: the schema "null" has CRC-64-AVRO 0x63dd24e7cc258f8a, written little-endian.
    assert bytes.fromhex(fingerprint(to_parsing_canonical_form("null"), "CRC-64-AVRO")) == (
        0x63DD24E7CC258F8A
    ).to_bytes(8, "little")


@pytest.mark.parametrize("name", schemas.RECORD_SCHEMAS)
def test_every_schema_round_trips(name: str) -> None:
    codec = AvroCodec()
    for record in generate_many(schemas.current(name).parsed, 20):
        data = codec.encode(name, record)
        assert data[:2] == MAGIC
        assert data[2:10] == schemas.current(name).fingerprint
        decoded_name, decoded = codec.decode(data)
        assert decoded_name == name
        # Generated records hold logical types raw (ints, arbitrary decimal bytes); once decoded they
        # are dates, datetimes and Decimals, which must survive a round trip exactly.
        assert codec.decode(codec.encode(name, decoded)) == (name, decoded)


@pytest.mark.parametrize("field", ["occurred_at"])
def test_a_time_python_cannot_hold_is_a_corrupt_record_not_a_crash(field: str) -> None:
    # fastavro raises OverflowError for it: the approvals consumer, which dead-letters a
    # SerializationError, crashed on it instead, at every restart.
    version = schemas.current("consent")
    writer = copy.deepcopy(version.parsed)
    for node in writer["fields"]:
        if node["name"] == field:
            node["type"] = "long"  # the same bytes as timestamp-millis, written raw
    body = BytesIO()
    record = {
        "event_id": "e",
        "subject_key": "k",
        "caller": "c",
        "purpose": "p",
        "delegate_key": None,
        "op": "grant",
        field: 2**62,
        "trace_id": "t",
    }
    schemaless_writer(body, parse_schema(writer), record)
    with pytest.raises(SerializationError, match="corrupt consent record"):
        AvroCodec().decode(MAGIC + version.fingerprint + body.getvalue())


def test_dataset_schemas_carry_the_envelope_inline() -> None:
    person = schemas.load("identity.person")
    envelope = person["fields"][0]
    assert envelope["name"] == "envelope" and envelope["type"]["name"] == "Envelope"


def test_an_unknown_fingerprint_is_refused() -> None:
    with pytest.raises(SerializationError, match="unknown schema fingerprint"):
        AvroCodec().decode(MAGIC + b"\x00" * 8 + b"\x02")


def test_bytes_without_the_marker_are_refused() -> None:
    with pytest.raises(SerializationError, match="C3 01"):
        AvroCodec().decode(b'{"json": true}')


def _version(name: str, schema: dict[str, object], label: str) -> schemas.SchemaVersion:
    return schemas._version(name, label, schema)


def test_a_record_written_with_an_old_version_is_read_with_the_current_one() -> None:
    current = schemas.load("deadletter")
    old = copy.deepcopy(current)
    old["fields"] = [field for field in old["fields"] if field["name"] != "field"]
    old_version = _version("deadletter", old, "v0")
    codec = AvroCodec([old_version, schemas.current("deadletter")])
    record = next(iter(generate_many(old_version.parsed, 1)))
    buffer = BytesIO()
    schemaless_writer(buffer, old_version.parsed, record)
    name, read = codec.decode(MAGIC + old_version.fingerprint + buffer.getvalue())
    assert name == "deadletter"
    assert read["field"] is None  # the added field takes its default
    assert read["reason"] == record["reason"] and read["original"] == record["original"]


def test_the_shipped_schemas_are_backward_compatible() -> None:
    assert compatibility.check_all() == []


def test_every_record_schema_has_a_frozen_first_version_to_be_checked_against() -> None:
    # Without one, `exchange schemas check` passes whatever the schema becomes (the ledger had none,
    # though the processor's changelog keeps it for good).
    assert [name for name in schemas.RECORD_SCHEMAS if not schemas.history(name)] == []


def test_an_incompatible_change_is_rejected() -> None:
    current = schemas.current("social.contribution")
    changed = json.loads(json.dumps(current.json))
    # A new required field without a default cannot be filled in when reading old records.
    changed["fields"].append({"name": "region", "type": "string"})
    problems = compatibility.check(_version("social.contribution", changed, "next"), (current,))
    assert len(problems) == 1
    assert "region" in " ".join(problems[0].messages)


def test_a_narrowed_enum_is_rejected() -> None:
    current = schemas.current("identity.person")
    changed = json.loads(json.dumps(current.json))
    status = next(field for field in changed["fields"] if field["name"] == "status")
    status["type"]["symbols"] = ["normal", "deceased"]
    assert compatibility.check(_version("identity.person", changed, "next"), (current,))


def test_a_changed_logical_type_is_rejected_though_avro_resolves_it() -> None:
    # Avro resolves the underlying bytes and long, and the fingerprint ignores logical types: old
    # records would have been read with tax_paid 123.45 as 1.2345 and occurred_at as 1970.
    current = schemas.current("tax.payment")
    changed = json.loads(json.dumps(current.json))
    tax_paid = next(field for field in changed["fields"] if field["name"] == "tax_paid")
    tax_paid["type"]["scale"] = 4
    assert _version("tax.payment", changed, "next").fingerprint == current.fingerprint
    (problem,) = compatibility.check(_version("tax.payment", changed, "next"), (current,))
    assert problem.messages == ("tax_paid: written as bytes decimal(18,2), read as bytes decimal(18,4)",)


def test_bytes_after_a_record_s_end_are_refused() -> None:
    codec = AvroCodec()
    record = next(iter(generate_many(schemas.current("deadletter").parsed, 1)))
    encoded = codec.encode("deadletter", record)
    assert codec.decode(encoded)[1]["reason"] == record["reason"]
    with pytest.raises(SerializationError, match="2 byte"):
        codec.decode(encoded + b"\x00\x01")
