"""The lineage of a fact over months, read from the record tables on the real PostgreSQL:
exactly the lines the fold counted up to the profile's positions, whatever came after; and a wait,
then a 503-class error, while the sink has not loaded the lines a profile counted."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from consumers.sink.tables import SOCIAL_CONTRIBUTION, TAX_PAYMENT, RecordTable
from exchange import database
from exchange.api.exceptions import StorageUnavailableError
from exchange.api.storage.lineage import current_lines, current_vouchers, resolve
from exchange.facts import Line, Voucher, compute, with_records
from exchange.profile import (
    SOCIAL,
    TAX,
    Event,
    Ledger,
    Position,
    apply,
    empty_ledger,
    live,
    profile_of,
)
from exchange.settings import ExchangeSettings

KEY = "k" * 64
TOPIC = "social.contribution.v1"
AT = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 15)


def _line(
    line: str,
    month: str,
    version: int = 1,
    op: str = "upsert",
    status: str = "paid",
    kind: str = "enterprise_pension",
) -> dict[str, Any]:
    return {
        "envelope": {
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{line}/{version}/{op}")),
            "department": "social",
            "dataset": SOCIAL,
            "source_record_id": line,
            "source_version": version,
            "op": op,
            "occurred_at": AT,
            "published_at": AT,
            "trace_id": "trace",
        },
        "citizen_id": "440102195607099506",
        "name": "刘秀英",
        "insurance_type": kind,
        "month": dt.date.fromisoformat(f"{month}-01"),
        "employer_id": "9144011470K239T3E2",
        "employer_name": "广州餐饮有限公司",
        "base": Decimal("8000.00"),
        "employer_amount": Decimal("1120.00"),
        "personal_amount": Decimal("640.00"),
        "status": status,
    }


# offset -> record, on partition 0: corrections, voids, arrears, re-sends, and events after the bound.
HISTORY: dict[int, dict[str, Any]] = {
    0: _line("A", "2026-08"),
    1: _line("B", "2026-09"),
    2: _line("C", "2026-10"),
    3: _line("A", "2026-08", version=2, op="revoke"),  # voided: A counts for nothing
    4: _line("B", "2026-09", version=2, status="arrears"),  # corrected to arrears
    5: _line("D", "2026-09", version=3),
    6: _line("D", "2026-09", version=2),  # a late lower version: changes nothing
    7: _line("C", "2026-10"),  # a re-send of C v1: its first position stands
    8: _line("G", "2026-07"),
    9: _line("G", "2026-07", op="revoke"),  # the same version revoked: the revoke wins
    10: _line("E", "2026-10", kind="medical"),
    # After the profile's position: a re-send changes nothing, so the position stays at 10; then what
    # came after the profile, which must not show in its lineage.
    11: _line("C", "2026-10"),
    12: _line("C", "2026-10", version=2, op="revoke"),
    13: _line("F", "2026-10"),
}
BOUND = 10  # the last position that changed the ledger


def _store(settings: ExchangeSettings, offsets: range) -> None:
    _copy(settings, SOCIAL_CONTRIBUTION, TOPIC, {offset: HISTORY[offset] for offset in offsets})


def _copy(
    settings: ExchangeSettings, table: RecordTable, topic: str, records: dict[int, dict[str, Any]]
) -> None:
    """Load `records` (offset -> record, on partition 0 of `topic`) as the sink would."""
    rows = [table.row(record, (KEY, topic, 0, offset)) for offset, record in records.items()]
    with (
        psycopg.connect(settings.postgres.conninfo()) as conn,
        conn.cursor() as cursor,
        cursor.copy(table.copy) as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _ledger(up_to: int) -> Ledger:
    ledger = empty_ledger(KEY)
    for offset in range(up_to + 1):
        ledger = apply(ledger, Event(SOCIAL, HISTORY[offset], TOPIC, 0, offset))
    return ledger


async def test_the_lines_read_are_exactly_the_current_ones_up_to_the_profile_s_position(
    settings: ExchangeSettings,
) -> None:
    database.migrate(settings.postgres)
    _store(settings, range(len(HISTORY)))
    ledger = _ledger(BOUND + 1)  # the re-send folded too
    assert ledger == _ledger(BOUND)
    profile = profile_of(ledger)
    assert profile.social.read_to == (Position(TOPIC, 0, BOUND),)
    async with await psycopg.AsyncConnection.connect(settings.postgres.conninfo(), autocommit=True) as conn:
        lines = await current_lines(conn, KEY, profile.social.read_to)
        resolved = await resolve(conn, KEY, compute(profile, DAY))
    wanted = [
        Line(ref, line.insurance_type, line.month, line.status)
        for ref, line in live(ledger.contributions)
        if line.status == "paid"
    ]
    assert sorted(lines) == sorted(wanted)
    # C at its first position (not a re-send), D at version 3, E; not A, B, G, F, nor C's later void.
    assert sorted((line.ref.source_record_id, line.ref.offset) for line in lines) == [
        ("C", 2),
        ("D", 5),
        ("E", 10),
    ]
    assert resolved == with_records(compute(profile, DAY), wanted)
    pension = resolved["social.pension.continuous_months"]
    assert pension.value == 2 and [ref.source_record_id for ref in pension.lineage] == ["C", "D"]
    assert all(fact.span is None for fact in resolved.values())


async def test_lines_the_sink_has_not_loaded_yet_are_waited_for_then_refused(
    settings: ExchangeSettings,
) -> None:
    database.migrate(settings.postgres)
    _store(settings, range(BOUND))  # everything before the profile's position, not the line at it
    read_to = profile_of(_ledger(BOUND)).social.read_to
    async with await psycopg.AsyncConnection.connect(settings.postgres.conninfo(), autocommit=True) as conn:
        with pytest.raises(StorageUnavailableError, match="not loaded yet"):
            await current_lines(conn, KEY, read_to, wait=0.1)
        _store(settings, range(BOUND, BOUND + 1))
        assert len(await current_lines(conn, KEY, read_to, wait=0.1)) == 3


def _voucher(
    voucher: str, start: str, end: str, tax: str, version: int = 1, op: str = "upsert"
) -> dict[str, Any]:
    first = dt.date.fromisoformat(f"{start}-01")
    last = dt.date.fromisoformat(f"{end}-28")
    return {
        "envelope": {
            **_line(voucher, start, version, op)["envelope"],
            "department": "tax",
            "dataset": TAX,
        },
        "citizen_id": "440102195607099506",
        "name": "刘秀英",
        "income_item": "wages",
        "period_start": first,
        "period_end": last,
        "income": Decimal("12000.00"),
        "tax_paid": Decimal(tax),
        "withholding_agent": None,
        "credited_on": last,
        "tax_office": "14401060000",
    }


TAX_TOPIC = "tax.payment.v1"
PAYMENTS: dict[int, dict[str, Any]] = {
    0: _voucher("V1", "2026-01", "2026-03", "300.00"),  # a quarter: three months paid, credited to March
    1: _voucher("V2", "2026-04", "2026-04", "100.00"),
    2: _voucher("V3", "2026-05", "2026-05", "-20.00"),  # a refund: no month paid, a total of its own
    3: _voucher("V2", "2026-04", "2026-04", "100.00", version=2, op="revoke"),
    4: _voucher("V4", "2025-10", "2025-10", "50.00"),  # outside the last 12 months of DAY
    5: _voucher("V5", "2026-06", "2026-06", "80.00"),  # after the profile's position
}


async def test_the_payments_read_are_exactly_those_behind_the_tax_facts(settings: ExchangeSettings) -> None:
    database.migrate(settings.postgres)
    _copy(settings, TAX_PAYMENT, TAX_TOPIC, PAYMENTS)
    ledger = empty_ledger(KEY)
    for offset in range(5):
        ledger = apply(ledger, Event(TAX, PAYMENTS[offset], TAX_TOPIC, 0, offset))
    profile = profile_of(ledger)
    assert profile.tax.read_to == (Position(TAX_TOPIC, 0, 4),)
    async with await psycopg.AsyncConnection.connect(settings.postgres.conninfo(), autocommit=True) as conn:
        vouchers = await current_vouchers(conn, KEY, profile.tax.read_to)
        resolved = await resolve(conn, KEY, compute(profile, DAY))
    wanted = [
        Voucher(ref, payment.period_start, payment.period_end, payment.tax_paid)
        for ref, payment in live(ledger.payments)
    ]
    assert sorted(vouchers) == sorted(wanted)
    assert sorted(v.ref.source_record_id for v in vouchers) == ["V1", "V3", "V4"]
    assert resolved == with_records(compute(profile, DAY), (), wanted)
    months, total = resolved["tax.months_paid_12"], resolved["tax.total_paid_12"]
    assert (months.value, [ref.source_record_id for ref in months.lineage]) == (3, ["V1"])
    assert (total.value, [ref.source_record_id for ref in total.lineage]) == ("280.00", ["V1", "V3"])
