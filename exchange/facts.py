"""Facts: what approvals ask about a subject, computed from the profile on a reference date.

A fact is a pure function of a profile and a reference date `D` (DEPARTMENTS.md "Facts"). `M` is
the calendar month of `D`; "the last 12 months" are the complete months `M-12 … M-1`. Every fact
carries its lineage: the records it was derived from. Revoked records (tombstones) and arrears
count for nothing.

The profile keeps tax and contribution months as ranges, not the payments and lines, so a fact over
months names its records as a `RecordSpan` (the dataset, which records count, the months counted,
the positions the profile was folded up to). An edge reads the subject's current records up to those
positions from `tax_payment_records` and `social_contribution_records`, and `with_records` turns
every span into the records' references.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from exchange.profile import (
    KIND_OF_INSURANCE,
    SOCIAL,
    SOCIAL_KINDS,
    TAX,
    MonthRange,
    Person,
    Position,
    Profile,
    RecordRef,
    clip,
    count_months,
    live,
    month_index,
    ranges,
)

FactValue = int | bool | str | None
Facts = dict[str, "Fact"]

CENT = Decimal("0.01")
GUANGZHOU = "4401"  # GB/T 2260 prefix of the city's districts

STATUS_UNKNOWN = "unknown"  # identity.status of a subject with no identity record

# Every fact `compute` returns, so policy files can be checked against them when they are loaded.
FACT_NAMES: frozenset[str] = frozenset(
    {
        "identity.status",
        "identity.district",
        "identity.age",
        "tax.months_paid_12",
        "tax.total_paid_12",
        "social.current_employer",
        "property.active_count",
        "property.residential_count",
        "property.owns_residential_in_city",
        "property.total_area",
        "property.encumbered",
        *(
            f"social.{kind}.{name}"
            for kind in SOCIAL_KINDS
            for name in ("continuous_months", "months_paid_12", "total_months")
        ),
    }
)


# RecordSpan.rule of a tax span: payments of tax > 0 whose period covers one of the months, or payments
# whose period ends in one. A social span's rule is the insurance kind whose received lines count.
PAID = "paid"
ENDED = "ended"


class RecordSpan(NamedTuple):
    """Records of one dataset in some months, among those folded up to `read_to`: the lineage of a fact
    over months, until an edge resolves it (`with_records`)."""

    dataset: str  # TAX or SOCIAL
    rule: str
    months: tuple[MonthRange, ...]
    read_to: tuple[Position, ...]


class Line(NamedTuple):
    """A contribution line as `social_contribution_records` holds its current version."""

    ref: RecordRef
    insurance_type: str
    month: dt.date
    status: str


class Voucher(NamedTuple):
    """A tax payment as `tax_payment_records` holds its current version."""

    ref: RecordRef
    period_start: dt.date
    period_end: dt.date
    tax_paid: Decimal


@dataclass(frozen=True, slots=True)
class Fact:
    """A fact's value (amounts as two-decimal strings) and the records it was derived from: `lineage`,
    plus the records `span` names while it is not resolved."""

    value: FactValue
    lineage: tuple[RecordRef, ...] = ()
    span: RecordSpan | None = None


def _lineage(refs: Iterable[RecordRef]) -> tuple[RecordRef, ...]:
    # Deterministic order and no duplicates, so equal inputs give equal facts.
    return tuple(sorted(set(refs), key=lambda ref: (ref.dataset, ref.source_record_id)))


def _money(amount: Decimal) -> str:
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def _age(born: dt.date, on: dt.date) -> int:
    """Full years (周岁) on a date: the birthday itself completes the year."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _person(profile: Profile) -> tuple[RecordRef, Person] | None:
    # A subject has one 户籍 record; should a second ever appear, pick one deterministically.
    return max(
        live(profile.persons),
        key=lambda item: (item[0].source_version, item[0].source_record_id),
        default=None,
    )


def identity_facts(profile: Profile, reference_date: dt.date) -> Facts:
    """identity.status, identity.district and identity.age."""
    found = _person(profile)
    if found is None:
        return {
            "identity.status": Fact(STATUS_UNKNOWN),
            "identity.district": Fact(None),
            "identity.age": Fact(None),
        }
    ref, person = found
    return {
        "identity.status": Fact(person.status, (ref,)),
        "identity.district": Fact(person.district, (ref,)),
        "identity.age": Fact(_age(person.birth_date, reference_date), (ref,)),
    }


def tax_facts(profile: Profile, reference_date: dt.date) -> Facts:
    """tax.months_paid_12 (months covered by a payment > 0) and tax.total_paid_12 (net, by period end)."""
    last = month_index(reference_date) - 1
    first = last - 11
    tax = profile.tax
    paid = clip(tax.paid, first, last)
    ended = [total for total in tax.totals if total.first <= last and total.last >= first]
    total = sum(
        (item.amount * (min(item.last, last) - max(item.first, first) + 1) for item in ended),
        Decimal("0.00"),
    )
    months = ranges(
        month for item in ended for month in range(max(item.first, first), min(item.last, last) + 1)
    )
    return {
        "tax.months_paid_12": Fact(count_months(paid), (), _span(TAX, PAID, paid, tax.read_to)),
        "tax.total_paid_12": Fact(_money(total), (), _span(TAX, ENDED, months, tax.read_to)),
    }


def _span(
    dataset: str, rule: str, months: tuple[MonthRange, ...], read_to: tuple[Position, ...]
) -> RecordSpan | None:
    """The span of records behind `months`; none when no month counted, so nothing is read."""
    return RecordSpan(dataset, rule, months, read_to) if months else None


def _continuous(months: Iterable[MonthRange], last: int) -> tuple[MonthRange, ...]:
    """The run of months ending at `last` (the range holding `last`, cut there: months after it are not
    counted); none when `last` itself is missing."""
    return tuple(MonthRange(span.first, last) for span in months if span.first <= last <= span.last)


def social_facts(profile: Profile, reference_date: dt.date) -> Facts:
    """Per insurance kind: continuous_months, months_paid_12, total_months; and current_employer."""
    last = month_index(reference_date) - 1
    social = profile.social
    facts: Facts = {}
    for kind in SOCIAL_KINDS:
        months = social.received[kind]  # total_months: all received months, ever
        run = _continuous(months, last)
        window = clip(months, last - 11, last)
        for name, counted in (
            ("continuous_months", run),
            ("months_paid_12", window),
            ("total_months", months),
        ):
            span = _span(SOCIAL, kind, counted, social.read_to)
            facts[f"social.{kind}.{name}"] = Fact(count_months(counted), (), span)
    facts["social.current_employer"] = _current_employer(profile)
    return facts


def _current_employer(profile: Profile) -> Fact:
    """The employer of the latest received pension month, whichever pension scheme paid it.

    Of several lines for that month (two jobs, or both schemes), the one changed last names it.
    """
    employer = profile.social.employer
    if employer is None:
        return Fact(None)
    return Fact(employer.employer_id, (employer.ref,))


def _within(month: int, months: Iterable[MonthRange]) -> bool:
    return any(span.first <= month <= span.last for span in months)


def _selected(span: RecordSpan, lines: Iterable[Line], vouchers: Iterable[Voucher]) -> Iterator[RecordRef]:
    """The references of the records a span names, among the subject's current ones."""
    if span.dataset == SOCIAL:
        for line in lines:
            kind = KIND_OF_INSURANCE[line.insurance_type]
            if line.status == "paid" and kind == span.rule and _within(month_index(line.month), span.months):
                yield line.ref
    elif span.rule == PAID:
        for voucher in vouchers:
            start, end = month_index(voucher.period_start), month_index(voucher.period_end)
            if voucher.tax_paid > 0 and any(s.first <= end and s.last >= start for s in span.months):
                yield voucher.ref
    else:
        for voucher in vouchers:
            if _within(month_index(voucher.period_end), span.months):
                yield voucher.ref


def with_records(
    facts: Mapping[str, Fact], lines: Iterable[Line] = (), vouchers: Iterable[Voucher] = ()
) -> Facts:
    """`facts` with every `RecordSpan` resolved: `lines` and `vouchers` are the subject's current
    contribution lines and payments up to the spans' positions (`spans`)."""
    lines, vouchers = list(lines), list(vouchers)
    resolved: Facts = {}
    for name, fact in facts.items():
        span = fact.span
        if span is None:
            resolved[name] = fact
            continue
        refs = _selected(span, lines, vouchers)
        resolved[name] = replace(fact, lineage=_lineage((*fact.lineage, *refs)), span=None)
    return resolved


def spans(facts: Mapping[str, Fact]) -> dict[str, tuple[Position, ...]]:
    """Per dataset, the positions the facts' unresolved spans read up to; empty when every lineage is
    resolved."""
    return {fact.span.dataset: fact.span.read_to for fact in facts.values() if fact.span is not None}


def property_facts(profile: Profile) -> Facts:
    """Counts, area and encumbrance over the current titles the subject owns a share of."""
    current = [(ref, title) for ref, title in live(profile.titles) if title.status == "current"]
    residential = [(ref, title) for ref, title in current if title.use == "residential"]
    in_city = [ref for ref, title in residential if title.district.startswith(GUANGZHOU)]
    encumbered = [ref for ref, title in current if title.mortgaged or title.seized]
    # Exact sum of area × share first, one rounding at the end: no per-title rounding drift.
    area = sum((title.area * title.share.scaleb(-2) for _, title in current), Decimal(0))
    every = _lineage(ref for ref, _ in current)
    return {
        "property.active_count": Fact(len(current), every),
        "property.residential_count": Fact(len(residential), _lineage(ref for ref, _ in residential)),
        "property.owns_residential_in_city": _any(in_city, every),
        "property.total_area": Fact(_money(area), every),
        "property.encumbered": _any(encumbered, every),
    }


def _any(matching: list[RecordRef], examined: tuple[RecordRef, ...]) -> Fact:
    """True with the titles that make it so; false with every title that had to be examined."""
    return Fact(True, _lineage(matching)) if matching else Fact(False, examined)


def compute(profile: Profile, reference_date: dt.date) -> Facts:
    """Every fact of DEPARTMENTS.md for a profile on a reference date."""
    return {
        **identity_facts(profile, reference_date),
        **tax_facts(profile, reference_date),
        **social_facts(profile, reference_date),
        **property_facts(profile),
    }


def as_json(facts: Mapping[str, Fact]) -> dict[str, FactValue]:
    """Fact name → value, sorted by name: the per-subject shape of samples/expected.json."""
    return {name: facts[name].value for name in sorted(facts)}
