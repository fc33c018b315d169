"""Proof content from current record rows, and when a proof is superseded: pure functions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from exchange.audit import plain_json
from exchange.proofs import (
    ProofUnavailableError,
    added_since,
    default_period,
    household_content,
    lineage,
    offsets,
    property_content,
    social_content,
    superseded_by,
    tax_content,
)

PERIOD = (dt.date(2025, 11, 1), dt.date(2026, 10, 31))


def row(record_id: str, version: int = 1, offset: int = 0, **data: Any) -> dict[str, Any]:
    return {
        "source_record_id": record_id,
        "source_version": version,
        "event_id": f"e-{record_id}-{version}",
        "topic": "t",
        "kafka_partition": 0,
        "kafka_offset": offset,
        **data,
    }


def payment(record_id: str, month: int, year: int, tax: str, offset: int = 0) -> dict[str, Any]:
    start = dt.date(year, month, 1)
    end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    return row(
        record_id,
        offset=offset,
        income_item="wages",
        period_start=start,
        period_end=end,
        income=Decimal("1000.00"),
        tax_paid=Decimal(tax),
        withholding_agent=None,
        credited_on=end,
        tax_office="14401060000",
    )


def test_tax_content_lists_the_payments_in_the_period_with_net_totals() -> None:
    rows = [
        payment("A", 10, 2025, "9.00"),
        payment("B", 11, 2025, "10.50"),
        payment("C", 10, 2026, "-0.50", 7),
    ]
    content, used = tax_content(rows, PERIOD)
    assert [p["voucher"] for p in content["payments"]] == ["B", "C"]
    assert content["totals"] == {"payments": 2, "income": "2000.00", "tax_paid": "10.00"}
    assert offsets(lineage("tax.payment", used)) == [{"topic": "t", "partition": 0, "offset": 7}]


def test_social_content_groups_received_months_and_employers_per_insurance_type() -> None:
    def line(record_id: str, kind: str, month: dt.date, status: str = "paid") -> dict[str, Any]:
        return row(
            record_id, insurance_type=kind, month=month, employer_id="E1", employer_name="甲", status=status
        )

    rows = [
        line("1", "medical", dt.date(2026, 1, 1)),
        line("2", "medical", dt.date(2026, 2, 1), "arrears"),
        line("3", "enterprise_pension", dt.date(2026, 1, 1)),
        line("4", "medical", dt.date(2024, 1, 1)),
    ]
    content, used = social_content(rows, PERIOD)
    assert [(i["insurance_type"], i["months"]) for i in content["insurance"]] == [
        ("enterprise_pension", ["2026-01"]),
        ("medical", ["2026-01"]),
    ]
    assert {r["source_record_id"] for r in used} == {"1", "3"}
    # A period cut mid-month takes the months it overlaps, first and last alike, as a tax period does.
    rows = [line("5", "medical", dt.date(2025, 11, 1)), line("6", "medical", dt.date(2026, 11, 1))]
    content, _ = social_content(rows, (dt.date(2025, 11, 15), dt.date(2026, 10, 15)))
    assert content["insurance"][0]["months"] == ["2025-11"]


def test_property_content_states_no_property_in_the_city_when_there_is_none() -> None:
    def title(record_id: str, district: str, status: str = "current") -> dict[str, Any]:
        return row(
            record_id,
            certificate_no=record_id,
            unit_no="u",
            share=Decimal("50.00"),
            location="l",
            district=district,
            use="residential",
            area=Decimal("80.00"),
            status=status,
            mortgaged=False,
            seized=False,
        )

    none, _ = property_content([title("A", "440106", "historic")])
    assert none["titles"] == [] and "statement" in none
    elsewhere, _ = property_content([title("B", "440305")])
    assert elsewhere["titles_in_city"] == 0 and "statement" in elsewhere
    owned, _ = property_content([title("C", "440106")])
    assert owned["titles_in_city"] == 1 and "statement" not in owned


def test_household_needs_an_identity_record() -> None:
    with pytest.raises(ProofUnavailableError):
        household_content([])


def test_a_higher_version_or_a_revocation_supersedes_a_proof() -> None:
    used = [{"source_record_id": "A", "source_version": 1}, {"source_record_id": "B", "source_version": 2}]
    same = {
        "A": {"source_version": 1, "op": "upsert", "event_id": "a1"},
        "B": {"source_version": 2, "op": "upsert", "event_id": "b2"},
    }
    assert superseded_by(used, same) == []
    corrected = {**same, "A": {"source_version": 2, "op": "upsert", "event_id": "a2"}}
    assert superseded_by(used, corrected) == ["a2"]
    revoked = {**same, "B": {"source_version": 2, "op": "revoke", "event_id": "b2r"}}
    assert superseded_by(used, revoked) == ["b2r"]


def test_record_versions_a_proof_issued_now_would_use_and_it_did_not_superseded_it() -> None:
    used = lineage("social.contribution", [row("1"), row("2")])
    assert added_since(used, used) == []
    now = lineage("social.contribution", [row("1"), row("2"), row("3", 2)])
    assert added_since(used, now) == ["e-3-2"]
    # The same record id of another dataset is another record.
    assert added_since(used, lineage("tax.payment", [row("1")])) == ["e-1-1"]


def test_the_default_period_is_the_last_twelve_complete_months() -> None:
    assert default_period(dt.date(2026, 11, 15)) == PERIOD
    assert default_period(dt.date(2026, 1, 1)) == (dt.date(2025, 1, 1), dt.date(2025, 12, 31))


def test_audit_json_keeps_only_what_postgresql_can_store() -> None:
    assert plain_json({"a": "x\x00y", "b": ["\ud800"], "c": (1, 2)}) == {
        "a": "x\ufffdy",
        "b": ["?"],
        "c": [1, 2],
    }
