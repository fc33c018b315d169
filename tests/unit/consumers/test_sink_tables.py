"""The record tables' pure row mapping: every column, exact decimals, dates, instants, co-owners."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from sink_records import (
    CITIZEN,
    CO_OWNER,
    EMPLOYER,
    OCCURRED,
    PUBLISHED,
    contribution,
    payment,
    person,
    title,
)

from consumers.sink import tables
from consumers.sink.tables import ENVELOPE_COLUMNS, LINEAGE_COLUMNS, PUBLISHED_AT, RECORD_TABLES, RecordTable
from exchange import schemas
from exchange.serialization import AvroCodec

LINEAGE = ("a" * 64, "identity.person.v1", 3, 1234)


def as_columns(table: RecordTable, record: dict[str, Any]) -> dict[str, Any]:
    row = table.row(record, LINEAGE)
    assert len(row) == len(table.columns)
    return dict(zip(table.columns, row, strict=True))


def envelope_columns(record: dict[str, Any]) -> dict[str, Any]:
    envelope = record["envelope"]
    return {
        "subject_key": "a" * 64,
        "topic": "identity.person.v1",
        "kafka_partition": 3,
        "kafka_offset": 1234,
        "event_id": envelope["event_id"],
        "department": envelope["department"],
        "source_record_id": envelope["source_record_id"],
        "source_version": envelope["source_version"],
        "op": envelope["op"],
        "occurred_at": OCCURRED,
        "published_at": PUBLISHED,
        "trace_id": "trace-1",
    }


def test_a_person_maps_to_every_column() -> None:
    record = person(version=3)
    assert as_columns(tables.IDENTITY_PERSON, record) == {
        **envelope_columns(record),
        "source_version": 3,
        "citizen_id": CITIZEN,
        "name": "刘秀英",
        "sex": "female",
        "ethnicity": "01",
        "birth_date": dt.date(1956, 7, 9),
        "address": '广州市江南大道145号之一,"东"座',
        "district": "440104",
        "household_type": "family",
        "status": "normal",
    }


def test_a_payment_keeps_exact_decimals_and_a_null_agent() -> None:
    columns = as_columns(tables.TAX_PAYMENT, payment(agent=None))
    assert columns["income"] == Decimal("12345.67") and str(columns["income"]) == "12345.67"
    assert str(columns["tax_paid"]) == "-0.01"
    assert columns["withholding_agent"] is None
    assert (columns["period_start"], columns["period_end"], columns["credited_on"]) == (
        dt.date(2026, 1, 1),
        dt.date(2026, 1, 31),
        dt.date(2026, 2, 15),
    )
    assert columns["tax_office"] == "14401060000"
    assert as_columns(tables.TAX_PAYMENT, payment())["withholding_agent"] == EMPLOYER


def test_a_contribution_maps_to_every_column() -> None:
    record = contribution(op="revoke")
    assert as_columns(tables.SOCIAL_CONTRIBUTION, record) == {
        **envelope_columns(record),
        "op": "revoke",
        "citizen_id": CITIZEN,
        "name": "刘秀英",
        "insurance_type": "enterprise_pension",
        "month": dt.date(2026, 1, 1),
        "employer_id": EMPLOYER,
        "employer_name": "广州餐饮有限公司",
        "base": Decimal("8000.00"),
        "employer_amount": Decimal("1120.00"),
        "personal_amount": Decimal("640.50"),
        "status": "paid",
    }


def test_a_title_maps_co_owners_to_json_with_shares_as_strings() -> None:
    record = title()
    columns = as_columns(tables.PROPERTY_TITLE, record)
    assert columns == {
        **envelope_columns(record),
        "certificate_no": "粤(2020)广州市不动产权第0012345号",
        "unit_no": "440106042724487172GB06681913",
        "owner_id": CITIZEN,
        "share": Decimal("62.50"),
        "co_owners": f'[{{"owner_id":"{CO_OWNER}","share":"37.50"}}]',
        "location": "广州市天河区某路157号102房",
        "district": "440106",
        "use": "residential",
        "area": Decimal("89.07"),
        "registered_at": dt.datetime(2020, 5, 6, 1, 2, 3, tzinfo=dt.UTC),
        "status": "current",
        "mortgaged": True,
        "seized": False,
    }
    assert json.loads(columns["co_owners"]) == [{"owner_id": CO_OWNER, "share": "37.50"}]
    assert as_columns(tables.PROPERTY_TITLE, {**record, "co_owners": []})["co_owners"] == "[]"


@pytest.mark.parametrize("table", RECORD_TABLES, ids=lambda table: table.name)
def test_every_schema_field_has_a_column(table: RecordTable) -> None:
    fields = [field["name"] for field in schemas.current(table.dataset).json["fields"]]
    assert sorted(table.columns) == sorted([*LINEAGE_COLUMNS, *ENVELOPE_COLUMNS, *fields[1:]])
    assert fields[0] == "envelope"


@pytest.mark.parametrize(
    ("table", "record"),
    [
        (tables.IDENTITY_PERSON, person()),
        (tables.TAX_PAYMENT, payment()),
        (tables.SOCIAL_CONTRIBUTION, contribution()),
        (tables.PROPERTY_TITLE, title()),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_decoded_records_map_to_the_same_row(table: RecordTable, record: dict[str, Any]) -> None:
    codec = AvroCodec()
    name, decoded = codec.decode(codec.encode(table.dataset, record))
    assert name == table.dataset
    row = table.row(decoded, LINEAGE)
    assert row == table.row(record, LINEAGE)
    instants = [value for value in row if isinstance(value, dt.datetime)]
    assert instants and all(value.utcoffset() == dt.timedelta(0) for value in instants)
    assert row[PUBLISHED_AT] == PUBLISHED
    assert all(value.as_tuple().exponent == -2 for value in row if isinstance(value, Decimal))
