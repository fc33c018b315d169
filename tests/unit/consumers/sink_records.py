"""Canonical and profile records shaped as fastavro decodes them, for the sink's tests."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from exchange.profile import Event, Ledger, apply, empty_ledger, profile_of, to_avro

Record = dict[str, Any]

OCCURRED = dt.datetime(2026, 3, 4, 5, 6, 7, 8000, tzinfo=dt.UTC)
PUBLISHED = dt.datetime(2026, 3, 4, 6, 0, 0, 123000, tzinfo=dt.UTC)
CITIZEN = "440102195607099506"
CO_OWNER = "44010220011028323X"
EMPLOYER = "9144011470K239T3E2"
_NAMESPACE = uuid.UUID("3f0c1c9e-64a4-4c8e-9d41-7e0d2a9f1b55")


def envelope(dataset: str, source_record_id: str, version: int = 1, op: str = "upsert") -> Record:
    """An envelope with a deterministic event id, as a connector writes it."""
    department = dataset.split(".")[0]
    return {
        "event_id": str(uuid.uuid5(_NAMESPACE, f"{department}|{source_record_id}|{version}")),
        "department": department,
        "dataset": dataset,
        "source_record_id": source_record_id,
        "source_version": version,
        "op": op,
        "occurred_at": OCCURRED,
        "published_at": PUBLISHED,
        "trace_id": "trace-1",
    }


def person(version: int = 1, op: str = "upsert", name: str = "刘秀英") -> Record:
    """A 户籍 record."""
    return {
        "envelope": envelope("identity.person", CITIZEN, version, op),
        "citizen_id": CITIZEN,
        "name": name,
        "sex": "female",
        "ethnicity": "01",
        "birth_date": dt.date(1956, 7, 9),
        "address": '广州市江南大道145号之一,"东"座',
        "district": "440104",
        "household_type": "family",
        "status": "normal",
    }


def payment(
    voucher: str = "V-1", version: int = 1, op: str = "upsert", agent: str | None = EMPLOYER
) -> Record:
    """A 电子税票."""
    return {
        "envelope": envelope("tax.payment", voucher, version, op),
        "citizen_id": CITIZEN,
        "name": "刘秀英",
        "income_item": "wages",
        "period_start": dt.date(2026, 1, 1),
        "period_end": dt.date(2026, 1, 31),
        "income": Decimal("12345.67"),
        "tax_paid": Decimal("-0.01"),
        "withholding_agent": agent,
        "credited_on": dt.date(2026, 2, 15),
        "tax_office": "14401060000",
    }


def contribution(line: str = "L-1", version: int = 1, op: str = "upsert", base: str = "8000.00") -> Record:
    """A 社保缴费 line."""
    return {
        "envelope": envelope("social.contribution", line, version, op),
        "citizen_id": CITIZEN,
        "name": "刘秀英",
        "insurance_type": "enterprise_pension",
        "month": dt.date(2026, 1, 1),
        "employer_id": EMPLOYER,
        "employer_name": "广州餐饮有限公司",
        "base": Decimal(base),
        "employer_amount": Decimal("1120.00"),
        "personal_amount": Decimal("640.50"),
        "status": "paid",
    }


def title(
    certificate: str = "粤(2020)广州市不动产权第0012345号", version: int = 1, op: str = "upsert"
) -> Record:
    """A title as it concerns CITIZEN, who shares it with CO_OWNER."""
    return {
        "envelope": envelope("property.title", certificate, version, op),
        "certificate_no": certificate,
        "unit_no": "440106042724487172GB06681913",
        "owner_id": CITIZEN,
        "share": Decimal("62.50"),
        "co_owners": [{"owner_id": CO_OWNER, "share": Decimal("37.50")}],
        "location": "广州市天河区某路157号102房",
        "district": "440106",
        "use": "residential",
        "area": Decimal("89.07"),
        "registered_at": dt.datetime(2020, 5, 6, 1, 2, 3, tzinfo=dt.UTC),
        "status": "current",
        "mortgaged": True,
        "seized": False,
    }


def ledger_from(records: list[Record], subject_key: str = "k" * 64) -> Ledger:
    """The ledger of `records` read in order from partition 0 of their topics, from offset 0."""
    folded = empty_ledger(subject_key)
    for offset, record in enumerate(records):
        dataset = record["envelope"]["dataset"]
        folded = apply(folded, Event(dataset, record, f"{dataset}.v1", 0, offset))
    return folded


def profile(subject_key: str, records: list[Record], updated_at: dt.datetime) -> Record:
    """The profile record the processor emits after folding `records`, stamped `updated_at`."""
    folded = ledger_from(records, subject_key)
    latest = max((record["envelope"]["published_at"] for record in records), default=updated_at)
    return {**to_avro(profile_of(folded)), "updated_at": updated_at, "latest_published_at": latest}
