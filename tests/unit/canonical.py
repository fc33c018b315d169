"""Test-side builders of canonical records (dicts shaped as fastavro decodes schemas/*.avsc) and events.

Months are written "YYYY-MM"; money, shares and areas as strings, turned into Decimal here.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from exchange.facts import Facts, Line, Voucher, compute, with_records
from exchange.profile import (
    IDENTITY,
    PROPERTY,
    SOCIAL,
    TAX,
    Event,
    Ledger,
    Profile,
    apply,
    empty_ledger,
    live,
    profile_of,
)

Record = dict[str, Any]

AT = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
EMPLOYER = "9144011470K239T3E2"
_NAMESPACE = uuid.UUID("5b1d3f0e-8a3c-4d6e-9f51-2b7c0d4e6a10")
_positions = itertools.count()


def first_day(month: str) -> dt.date:
    """The first day of a "YYYY-MM" month."""
    year, number = month.split("-")
    return dt.date(int(year), int(number), 1)


def last_day(month: str) -> dt.date:
    """The last day of a "YYYY-MM" month."""
    start = first_day(month)
    return start.replace(day=calendar.monthrange(start.year, start.month)[1])


def envelope(
    dataset: str, source_record_id: str, version: int = 1, op: str = "upsert", at: dt.datetime = AT
) -> Record:
    """An envelope as a connector writes it; the event id is deterministic, as in the design."""
    department = dataset.split(".")[0]
    return {
        "event_id": str(uuid.uuid5(_NAMESPACE, f"{department}/{source_record_id}/{version}")),
        "department": department,
        "dataset": dataset,
        "source_record_id": source_record_id,
        "source_version": version,
        "op": op,
        "occurred_at": at,
        "published_at": at,
        "trace_id": "trace",
    }


def person(
    citizen_id: str = "440102195607099506",
    *,
    version: int = 1,
    op: str = "upsert",
    birth_date: dt.date = dt.date(1956, 7, 9),
    district: str = "440104",
    status: str = "normal",
) -> Record:
    """A 户籍 record."""
    return {
        "envelope": envelope(IDENTITY, citizen_id, version, op),
        "citizen_id": citizen_id,
        "name": "刘秀英",
        "sex": "female",
        "ethnicity": "01",
        "birth_date": birth_date,
        "address": "广州市江南大道145号",
        "district": district,
        "household_type": "family",
        "status": status,
    }


def payment(
    voucher: str,
    start: str,
    end: str | None = None,
    tax: str = "100.00",
    *,
    version: int = 1,
    op: str = "upsert",
    item: str = "wages",
) -> Record:
    """A tax payment covering the months `start` … `end` (one month when `end` is None)."""
    return {
        "envelope": envelope(TAX, voucher, version, op),
        "citizen_id": "440102195607099506",
        "name": "刘秀英",
        "income_item": item,
        "period_start": first_day(start),
        "period_end": last_day(end or start),
        "income": Decimal("10000.00"),
        "tax_paid": Decimal(tax),
        "withholding_agent": EMPLOYER,
        "credited_on": last_day(end or start) + dt.timedelta(days=15),
        "tax_office": "14401060000",
    }


def contribution(
    line: str,
    month: str,
    insurance: str = "enterprise_pension",
    *,
    status: str = "paid",
    employer: str = EMPLOYER,
    version: int = 1,
    op: str = "upsert",
    at: dt.datetime = AT,
) -> Record:
    """A 社保缴费 line for one month, changed at `at`."""
    return {
        "envelope": envelope(SOCIAL, line, version, op, at),
        "citizen_id": "440102195607099506",
        "name": "刘秀英",
        "insurance_type": insurance,
        "month": first_day(month),
        "employer_id": employer,
        "employer_name": "广州餐饮有限公司",
        "base": Decimal("8000.00"),
        "employer_amount": Decimal("1120.00"),
        "personal_amount": Decimal("640.00"),
        "status": status,
    }


def title(
    certificate: str,
    *,
    share: str = "100.00",
    area: str = "100.00",
    use: str = "residential",
    district: str = "440106",
    status: str = "current",
    mortgaged: bool = False,
    seized: bool = False,
    version: int = 1,
    op: str = "upsert",
) -> Record:
    """A title as it concerns one owner, with that owner's share in percent."""
    return {
        "envelope": envelope(PROPERTY, certificate, version, op),
        "certificate_no": certificate,
        "unit_no": "440106042724487172GB06681913",
        "owner_id": "440102195607099506",
        "share": Decimal(share),
        "co_owners": [],
        "location": "广州市某路157号102房",
        "district": district,
        "use": use,
        "area": Decimal(area),
        "registered_at": AT,
        "status": status,
        "mortgaged": mortgaged,
        "seized": seized,
    }


def event(record: Record, offset: int | None = None, partition: int = 0) -> Event:
    """The record as read from its dataset's topic, by default at a fresh position."""
    dataset = record["envelope"]["dataset"]
    position = next(_positions) if offset is None else offset
    return Event(dataset, record, f"{dataset}.v1", partition, position)


def fold_ledger(records: Iterable[Record], subject_key: str = "subject") -> Ledger:
    """A ledger from records applied in the given order, each at a fresh position."""
    ledger = empty_ledger(subject_key)
    for record in records:
        ledger = apply(ledger, event(record))
    return ledger


def fold(records: Iterable[Record], subject_key: str = "subject") -> Profile:
    """The profile of records applied in the given order, each at a fresh position."""
    return profile_of(fold_ledger(records, subject_key))


def lines_of(ledger: Ledger) -> list[Line]:
    """The received current lines of a ledger, as `social_contribution_records` gives them to the edges."""
    return [
        Line(ref, line.insurance_type, line.month, line.status)
        for ref, line in live(ledger.contributions)
        if line.status == "paid"
    ]


def vouchers_of(ledger: Ledger) -> list[Voucher]:
    """The current payments of a ledger, as `tax_payment_records` gives them to the edges."""
    return [
        Voucher(ref, payment.period_start, payment.period_end, payment.tax_paid)
        for ref, payment in live(ledger.payments)
    ]


def facts_of(records: Iterable[Record], on: dt.date) -> Facts:
    """The facts on `on` of a profile folded from `records`, every lineage resolved from its records."""
    ledger = fold_ledger(records)
    return with_records(compute(profile_of(ledger), on), lines_of(ledger), vouchers_of(ledger))
