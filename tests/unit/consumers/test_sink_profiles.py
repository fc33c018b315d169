"""A profile record's row: the whole record as JSON, the processor's updated_at in it (the tables date a
version from the sink's transaction)."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from fastavro import schemaless_writer
from sink_records import EMPLOYER, PUBLISHED, contribution, ledger_from, payment, person, profile, title

from consumers.sink.documents import to_json
from consumers.sink.profiles import (
    EPOCH,
    PROFILE_COLUMNS,
    SECTIONS,
    latest_published_at,
    profile_document,
    profile_row,
)
from exchange import schemas
from exchange.profile import (
    Contribution,
    Payment,
    Person,
    ProfileFormError,
    Title,
    from_avro,
    ledger_to_avro,
)
from exchange.profile_avro import REF_COLUMNS, social_from_avro
from exchange.serialization import MAGIC, AvroCodec

UPDATED = dt.datetime(2026, 3, 5, 8, 0, 0, 250000, tzinfo=dt.UTC)


def test_a_profile_row_holds_the_profile_as_a_readable_document() -> None:
    codec = AvroCodec()
    folded = [contribution("L-1"), payment(), title(), contribution("L-2", op="revoke")]
    _, record = codec.decode(codec.encode("profile", profile("k" * 64, folded, UPDATED)))
    row = dict(zip(PROFILE_COLUMNS, profile_row(record, "exchange.profile.v1", 2, 77), strict=True))
    assert (row["subject_key"], row["version"]) == ("k" * 64, 4) and "updated_at" not in row
    assert (row["topic"], row["kafka_partition"], row["kafka_offset"]) == ("exchange.profile.v1", 2, 77)
    document = json.loads(row["profile"])
    assert document["form"] == "columns"
    assert document["subject_key"] == "k" * 64 and document["version"] == 4
    assert document["updated_at"] == "2026-03-05T08:00:00.250000+00:00"
    assert document["latest_published_at"] == PUBLISHED.isoformat()
    assert document["persons"]["source_record_id"] == [] and document["persons"]["data"]["name"] == []
    # The lines are not in the profile: its social section is months; L-2 was revoked, but read.
    january = 2026 * 12
    assert "contributions" not in document
    assert document["social"] == {
        "received": {"pension": [january, january]},
        "arrears": {},
        "employer": {
            "month": january,
            "employer_id": EMPLOYER,
            "event_id": contribution("L-1")["envelope"]["event_id"],
            "source_record_id": "L-1",
            "source_version": 1,
            "topic": "social.contribution.v1",
            "partition": 0,
            "offset": 0,
        },
        "read_to": [{"topic": "social.contribution.v1", "partition": 0, "offset": 3}],
    }
    # A refund of 0.01 credited to 2026-01, which no payment of tax covers; read at offset 1.
    assert "payments" not in document
    assert document["tax"] == {
        "paid": [],
        "totals": [january, january, -1],
        "read_to": [{"topic": "tax.payment.v1", "partition": 0, "offset": 1}],
    }
    owned = document["titles"]["data"]
    assert owned["share"] == ["62.50"] and owned["area"] == ["89.07"]
    assert owned["mortgaged"] == [True]


def test_latest_published_at_is_none_when_not_recorded() -> None:
    assert latest_published_at({"latest_published_at": PUBLISHED}) == PUBLISHED
    assert latest_published_at({"latest_published_at": EPOCH}) is None
    assert latest_published_at({}) is None


def test_json_keeps_unicode_and_exact_values() -> None:
    value = {"name": "何䶮", "on": dt.date(2001, 10, 28), "share": Decimal("37.50"), "n": [1, None, True]}
    assert to_json(value) == '{"name":"何䶮","on":"2001-10-28","share":"37.50","n":[1,null,true]}'
    with pytest.raises(TypeError, match="bytes has no JSON form"):
        to_json({"original": b"\x00"})


RECORD_TYPES = {"persons": Person, "payments": Payment, "contributions": Contribution, "titles": Title}


def _columns_through_profile(record: dict[str, Any]) -> dict[str, Any]:
    """The sections as columns built through `from_avro` and `Profile`: the reference they must match."""
    folded = from_avro(record)
    document: dict[str, Any] = {}
    for name in SECTIONS:
        section = getattr(folded, name)
        entries = [section[record_id] for record_id in sorted(section)]
        fields = RECORD_TYPES[name]._fields
        columns: dict[str, Any] = {
            field: [entry.ref._asdict()[field] for entry in entries] for field in REF_COLUMNS
        }
        columns["live"] = [entry.data is not None for entry in entries]
        live = [entry.data for entry in entries if entry.data is not None]
        columns["data"] = {field: [getattr(data, field) for data in live] for field in fields}
        document[name] = columns
    return document


def test_the_document_read_straight_from_the_packed_columns_is_the_profiles() -> None:
    # Revoked records between live ones, in several sections; text holding the separator itself.
    folded = [
        contribution("L-1"),
        contribution("L-2", op="revoke"),
        contribution("L-3", base="9000.00"),
        payment(),
        person(name="何\x00䶮"),
        person(version=2, op="revoke"),
        title(),
        contribution("L-0", version=3),
    ]
    codec = AvroCodec()
    _, record = codec.decode(codec.encode("profile", profile("k" * 64, folded, UPDATED)))
    document = profile_document(record)
    for name, columns in _columns_through_profile(record).items():
        assert json.loads(to_json(document[name])) == json.loads(to_json(columns))
    assert social_from_avro(json.loads(to_json(document["social"]))) == from_avro(record).social
    assert document["persons"]["data"]["name"] == []  # its only record was revoked


def test_a_profile_whose_packed_columns_do_not_fit_together_is_a_profile_form_error() -> None:
    codec = AvroCodec()
    _, record = codec.decode(codec.encode("profile", profile("k" * 64, [title()], UPDATED)))
    section = record["titles"]
    broken = {**record, "titles": {**section, "numbers": section["numbers"][:-2]}}
    with pytest.raises(ProfileFormError, match="inconsistent"):
        profile_document(broken)
    months = {**record, "social": {**record["social"], "received": {"pension": [3, 2]}}}
    with pytest.raises(ProfileFormError, match="inconsistent"):
        profile_document(months)


def test_a_profile_written_before_the_social_section_is_stored_with_the_section_derived() -> None:
    codec = AvroCodec()
    folded = [contribution("L-1"), contribution("L-2", op="revoke"), payment()]
    record = profile("k" * 64, folded, UPDATED)
    ledger = {**record, "contributions": ledger_to_avro(ledger_from(folded))["contributions"]}
    del ledger["social"]
    old = schemas.history("profile")[0]
    body = io.BytesIO()
    schemaless_writer(body, old.parsed, ledger)
    _, written_before = codec.decode(MAGIC + old.fingerprint + body.getvalue())
    document = profile_document(written_before)
    assert "contributions" not in document
    assert document["social"] == profile_document(record)["social"]
