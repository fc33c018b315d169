"""Facts on hand-built profiles: every fact of DEPARTMENTS.md, its window boundaries and its lineage.

The reference date is 2026-11-15 unless a test says otherwise: M = 2026-11, so the last 12 months
are 2025-11 … 2026-10.
"""

from __future__ import annotations

import datetime as dt

import pytest
from canonical import contribution, facts_of, fold, payment, person, title

from exchange.facts import FACT_NAMES, Fact, as_json, compute, spans
from exchange.profile import SOCIAL_KINDS, MonthRange, empty_profile, month_index

D = dt.date(2026, 11, 15)


def value(records: list[dict[str, object]], name: str, on: dt.date = D) -> object:
    """One fact's value for a profile folded from `records`."""
    return facts_of(records, on)[name].value


def sources(fact: Fact) -> list[str]:
    """The source record ids a fact came from."""
    return [ref.source_record_id for ref in fact.lineage]


def test_compute_returns_exactly_the_documented_facts() -> None:
    assert set(compute(empty_profile("s"), D)) == FACT_NAMES
    assert {f"social.{kind}.total_months" for kind in SOCIAL_KINDS} <= FACT_NAMES


def test_an_empty_profile_is_unknown_identity_and_zero_elsewhere() -> None:
    facts = as_json(compute(empty_profile("s"), D))
    assert facts["identity.status"] == "unknown"
    assert facts["identity.district"] is None
    assert facts["identity.age"] is None
    assert facts["tax.total_paid_12"] == "0.00"
    assert facts["property.total_area"] == "0.00"
    assert facts["social.current_employer"] is None
    assert facts["property.owns_residential_in_city"] is False
    assert list(facts) == sorted(facts)


# --- identity ---------------------------------------------------------------------------------------


def test_identity_comes_from_the_highest_version_with_its_lineage() -> None:
    facts = compute(
        fold([person(version=2, district="440117", status="moved_out"), person(district="440111")]), D
    )
    assert facts["identity.status"].value == "moved_out"
    assert facts["identity.district"].value == "440117"
    assert [ref.source_version for ref in facts["identity.status"].lineage] == [2]


def test_a_revoked_identity_is_unknown() -> None:
    assert value([person(), person(version=2, op="revoke")], "identity.status") == "unknown"


@pytest.mark.parametrize(
    ("born", "age"),
    [
        (dt.date(1946, 11, 15), 80),  # the 80th birthday itself completes the year
        (dt.date(1946, 11, 16), 79),
        (dt.date(1946, 12, 1), 79),
        (dt.date(1947, 1, 1), 79),
        (dt.date(2026, 11, 15), 0),
    ],
)
def test_age_is_full_years_on_the_reference_date(born: dt.date, age: int) -> None:
    assert value([person(birth_date=born)], "identity.age") == age


def test_age_of_a_29_february_birth_in_a_common_year() -> None:
    assert value([person(birth_date=dt.date(2004, 2, 29))], "identity.age", dt.date(2026, 2, 28)) == 21
    assert value([person(birth_date=dt.date(2004, 2, 29))], "identity.age", dt.date(2026, 3, 1)) == 22


# --- tax --------------------------------------------------------------------------------------------


def test_tax_window_is_the_twelve_complete_months_before_the_reference_month() -> None:
    records = [
        payment("OUT-BEFORE", "2025-10"),
        payment("FIRST", "2025-11"),
        payment("LAST", "2026-10"),
        payment("CURRENT-MONTH", "2026-11"),
    ]
    facts = facts_of(records, D)
    assert facts["tax.months_paid_12"].value == 2
    assert facts["tax.total_paid_12"].value == "200.00"
    assert sources(facts["tax.months_paid_12"]) == ["FIRST", "LAST"]
    assert sources(facts["tax.total_paid_12"]) == ["FIRST", "LAST"]


def test_a_payment_covers_every_month_of_its_period_but_counts_by_its_end() -> None:
    # 2025-09…2025-12 covers two window months and ends inside; 2026-09…2026-12 covers two, ends outside.
    records = [
        payment("Q-IN", "2025-09", "2025-12", "300.00"),
        payment("Q-OUT", "2026-09", "2026-12", "400.00"),
    ]
    facts = facts_of(records, D)
    assert facts["tax.months_paid_12"].value == 4
    assert facts["tax.total_paid_12"].value == "300.00"
    assert sources(facts["tax.months_paid_12"]) == ["Q-IN", "Q-OUT"]
    assert sources(facts["tax.total_paid_12"]) == ["Q-IN"]


def test_a_period_longer_than_the_window_covers_all_twelve_months() -> None:
    assert value([payment("YEARS", "2020-01", "2030-12")], "tax.months_paid_12") == 12


def test_overlapping_payments_count_a_month_once() -> None:
    records = [payment("W", "2026-05"), payment("B", "2026-05", "2026-07", item="business")]
    assert value(records, "tax.months_paid_12") == 3


def test_refunds_are_subtracted_and_cover_no_month() -> None:
    records = [payment("PAID", "2026-07", tax="757.35"), payment("REFUND", "2026-07", tax="-120.50")]
    facts = facts_of(records, D)
    assert facts["tax.total_paid_12"].value == "636.85"
    assert facts["tax.months_paid_12"].value == 1
    assert value([payment("REFUND", "2026-07", tax="-120.50")], "tax.total_paid_12") == "-120.50"
    assert value([payment("REFUND", "2026-07", tax="-120.50")], "tax.months_paid_12") == 0


def test_a_zero_payment_covers_no_month() -> None:
    assert value([payment("ZERO", "2026-07", tax="0.00")], "tax.months_paid_12") == 0


def test_voided_vouchers_count_for_nothing() -> None:
    records = [payment("V", "2026-07"), payment("V", "2026-07", version=2, op="revoke")]
    assert value(records, "tax.months_paid_12") == 0
    assert value(records, "tax.total_paid_12") == "0.00"


def test_a_corrected_voucher_counts_at_its_highest_version() -> None:
    records = [payment("V", "2026-06", tax="378.68", version=2), payment("V", "2026-06", tax="757.35")]
    assert value(records, "tax.total_paid_12") == "378.68"


def test_the_window_crosses_a_year_on_the_first_of_january() -> None:
    records = [payment("DEC-2024", "2024-12"), payment("JAN", "2025-01"), payment("DEC", "2025-12")]
    facts = facts_of(records, dt.date(2026, 1, 1))
    assert facts["tax.months_paid_12"].value == 2
    assert sources(facts["tax.months_paid_12"]) == ["DEC", "JAN"]


# --- social -----------------------------------------------------------------------------------------


def _months(first: str, last: str) -> list[str]:
    year, month = map(int, first.split("-"))
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def test_social_counts_per_kind() -> None:
    records = [contribution(f"M{month}", month, "medical") for month in _months("2024-01", "2026-10")]
    facts = as_json(facts_of(records, D))
    assert facts["social.medical.continuous_months"] == 34
    assert facts["social.medical.months_paid_12"] == 12
    assert facts["social.medical.total_months"] == 34
    assert facts["social.pension.total_months"] == 0


def test_continuity_ends_at_the_month_before_the_reference_month() -> None:
    records = [contribution(f"P{month}", month) for month in _months("2026-01", "2026-09")]
    assert value(records, "social.pension.continuous_months") == 0  # 2026-10 missing
    assert value(records, "social.pension.months_paid_12") == 9
    with_current = [*records, contribution("P-NOV", "2026-11")]  # month M is not complete: ignored
    assert value(with_current, "social.pension.continuous_months", dt.date(2026, 10, 1)) == 9
    assert value(with_current, "social.pension.months_paid_12") == 9


def test_continuity_counts_back_from_the_month_before_the_reference_month_whatever_follows_it() -> None:
    # Received without a gap through month M (2026-11): the run still ends at M-1 and counts 10, not 0.
    records = [contribution(f"P{month}", month) for month in _months("2026-01", "2026-11")]
    assert value(records, "social.pension.continuous_months") == 10
    # A past reference date, for someone still paying in: the 17 months up to its M-1 (2026-05).
    longer = [contribution(f"Q{month}", month) for month in _months("2025-01", "2026-10")]
    assert value(longer, "social.pension.continuous_months", dt.date(2026, 6, 1)) == 17
    span = compute(fold(records), D)["social.pension.continuous_months"].span  # the months behind it
    assert span is not None
    assert span.months == (MonthRange(month_index(dt.date(2026, 1, 1)), month_index(dt.date(2026, 10, 1))),)


def test_arrears_break_continuity_and_are_not_received() -> None:
    records = [contribution(f"P{month}", month) for month in _months("2026-01", "2026-10")]
    records.append(contribution("P2026-07", "2026-07", status="arrears", version=2))
    facts = facts_of(records, D)
    assert facts["social.pension.continuous_months"].value == 3
    assert facts["social.pension.months_paid_12"].value == 9
    assert facts["social.pension.total_months"].value == 9
    assert sources(facts["social.pension.continuous_months"]) == ["P2026-08", "P2026-09", "P2026-10"]


def test_arrears_paid_later_are_received() -> None:
    records = [
        contribution("JF", "2026-10", "injury", status="arrears"),
        contribution("JF", "2026-10", "injury", version=2),
    ]
    assert value(records, "social.injury.continuous_months") == 1


def test_revoked_lines_count_for_nothing() -> None:
    records = [contribution("P", "2026-10"), contribution("P", "2026-10", version=2, op="revoke")]
    assert value(records, "social.pension.continuous_months") == 0
    assert value(records, "social.pension.total_months") == 0
    assert value(records, "social.current_employer") is None


def test_enterprise_and_institution_pension_are_one_kind() -> None:
    records = [
        contribution(f"E{month}", month, "enterprise_pension") for month in _months("2025-06", "2026-03")
    ]
    records += [
        contribution(f"I{month}", month, "institution_pension") for month in _months("2026-03", "2026-10")
    ]
    facts = facts_of(records, D)
    assert facts["social.pension.continuous_months"].value == 17  # 2026-03 paid under both, counted once
    assert facts["social.pension.total_months"].value == 17
    assert facts["social.pension.months_paid_12"].value == 12
    assert "E2026-03" in sources(facts["social.pension.continuous_months"])
    assert "I2026-03" in sources(facts["social.pension.continuous_months"])


def test_total_months_counts_every_received_month_ever() -> None:
    records = [contribution(f"U{month}", month, "unemployment") for month in _months("1996-01", "1996-12")]
    records.append(contribution("U-LAST", "2026-10", "unemployment"))
    assert value(records, "social.unemployment.total_months") == 13
    assert value(records, "social.unemployment.months_paid_12") == 1


def test_current_employer_is_that_of_the_latest_received_pension_month() -> None:
    records = [
        contribution("OLD", "2025-03", employer="91440104AGYGLUY3WM"),
        contribution("NEW", "2025-04", "institution_pension", employer="91440117HDRJHTPQQ3"),
        contribution("ARREARS", "2025-05", employer="9144011470K239T3E2", status="arrears"),
        contribution("MEDICAL", "2025-06", "medical", employer="9144011470K239T3E2"),
    ]
    facts = facts_of(records, D)
    assert facts["social.current_employer"].value == "91440117HDRJHTPQQ3"
    assert sources(facts["social.current_employer"]) == ["NEW"]
    assert facts["social.pension.continuous_months"].value == 0  # the employer does not need continuity


def test_of_two_lines_for_the_latest_month_the_one_changed_last_names_the_employer() -> None:
    early, late = dt.datetime(2026, 10, 20, tzinfo=dt.UTC), dt.datetime(2026, 10, 25, tzinfo=dt.UTC)
    records = [
        contribution("B", "2026-10", employer="91440104AGYGLUY3WM", at=early),
        contribution("A", "2026-10", "institution_pension", employer="91440117HDRJHTPQQ3", at=late),
    ]
    facts = facts_of(records, D)
    assert facts["social.current_employer"].value == "91440117HDRJHTPQQ3"
    assert sources(facts["social.current_employer"]) == ["A"]


# --- property ---------------------------------------------------------------------------------------


def test_property_counts_current_titles_only() -> None:
    records = [
        title("HOME", district="440106"),
        title("SOLD", status="historic", mortgaged=True),
        title("GONE", status="cancelled"),
        title("SHOP", use="commercial", district="440103"),
    ]
    facts = facts_of(records, D)
    assert facts["property.active_count"].value == 2
    assert facts["property.residential_count"].value == 1
    assert facts["property.owns_residential_in_city"].value is True
    assert sources(facts["property.owns_residential_in_city"]) == ["HOME"]
    assert facts["property.encumbered"].value is False
    assert sources(facts["property.active_count"]) == ["HOME", "SHOP"]


def test_a_residential_title_outside_guangzhou_is_not_in_the_city() -> None:
    facts = compute(fold([title("FOSHAN", district="440604"), title("OFFICE", use="office")]), D)
    assert facts["property.residential_count"].value == 1
    assert facts["property.owns_residential_in_city"].value is False
    # A "no" names the titles examined, so a later change to them supersedes the answer.
    assert sources(facts["property.owns_residential_in_city"]) == ["FOSHAN", "OFFICE"]


@pytest.mark.parametrize(("mortgaged", "seized"), [(True, False), (False, True), (True, True)])
def test_a_mortgage_or_a_seizure_encumbers(mortgaged: bool, seized: bool) -> None:
    facts = compute(fold([title("FREE"), title("HELD", mortgaged=mortgaged, seized=seized)]), D)
    assert facts["property.encumbered"].value is True
    assert sources(facts["property.encumbered"]) == ["HELD"]


def test_a_released_mortgage_no_longer_encumbers() -> None:
    assert value([title("T", mortgaged=True), title("T", version=2)], "property.encumbered") is False


def test_an_owner_dropped_from_a_title_no_longer_owns_it() -> None:
    records = [title("T", share="50.00"), title("T", share="50.00", version=2, op="revoke")]
    facts = as_json(facts_of(records, D))
    assert facts["property.active_count"] == 0
    assert facts["property.total_area"] == "0.00"


@pytest.mark.parametrize(
    ("titles", "area"),
    [
        ([("121.90", "50.00")], "60.95"),
        ([("50.10", "70.00"), ("50.10", "30.00")], "50.10"),
        ([("100.01", "33.33")], "33.33"),  # 33.333333 rounds down
        ([("0.01", "50.00")], "0.01"),  # 0.005: half rounds up (四舍五入)
        ([("0.01", "50.00"), ("0.01", "50.00")], "0.01"),  # summed exactly, rounded once
        ([("134.70", "100.00")], "134.70"),
    ],
)
def test_total_area_is_area_times_share_summed_then_rounded(titles: list[tuple[str, str]], area: str) -> None:
    records = [title(f"T{index}", area=mj, share=share) for index, (mj, share) in enumerate(titles)]
    assert value(records, "property.total_area") == area


def test_total_area_ignores_titles_that_are_not_current() -> None:
    records = [title("NOW", area="80.00"), title("THEN", area="99.00", status="historic")]
    assert value(records, "property.total_area") == "80.00"


# --- serialisable answers --------------------------------------------------------------------------


def test_as_json_gives_values_only() -> None:
    facts = {"b": Fact(1), "a": Fact("x", ())}
    assert as_json(facts) == {"a": "x", "b": 1}
    assert list(as_json(facts)) == ["a", "b"]


def test_a_fact_over_months_names_its_lines_until_an_edge_resolves_them() -> None:
    records = [contribution(f"P{month}", month) for month in _months("2026-07", "2026-10")]
    facts = compute(fold(records), D)
    fact = facts["social.pension.continuous_months"]
    # The profile keeps months, not lines: the fact names the months and the positions to read up to.
    assert fact.value == 4 and fact.lineage == () and fact.span is not None
    assert (fact.span.dataset, fact.span.rule) == ("social.contribution", "pension")
    assert fact.span.months == (
        MonthRange(month_index(dt.date(2026, 7, 1)), month_index(dt.date(2026, 10, 1))),
    )
    assert spans(facts) == {"social.contribution": fact.span.read_to} and fact.span.read_to != ()
    assert facts["social.medical.total_months"].span is None  # nothing counted: nothing to read
    resolved = facts_of(records, D)
    assert spans(resolved) == {}
    assert sources(resolved["social.pension.continuous_months"]) == [
        f"P{m}" for m in _months("2026-07", "2026-10")
    ]
