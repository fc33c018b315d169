"""Facts: what approvals ask about a subject, computed from the profile on a reference date.

A fact is a pure function of a profile and a reference date `D` (DEPARTMENTS.md "Facts"). `M` is
the calendar month of `D`; "the last 12 months" are the complete months `M-12 … M-1`. Every fact
carries its lineage: the records it was derived from. Revoked records (tombstones) and arrears
count for nothing.

The profile keeps contribution months as ranges, not the lines, so a fact over months names its
lines as a `LineSpan` (an insurance kind, the months counted, the positions the profile was folded
up to). An edge reads the subject's current lines up to those positions from
`social_contribution_records` and `with_lines` turns every span into the lines' references.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from exchange.profile import (
    KIND_OF_INSURANCE,
    SOCIAL_KINDS,
    MonthRange,
    Person,
    Position,
    Profile,
    RecordRef,
    clip,
    count_months,
    live,
    month_index,
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


class LineSpan(NamedTuple):
    """The received contribution lines of one insurance kind in some months, among the lines folded up
    to `read_to`: the lineage of a fact over months, until an edge resolves it (`with_lines`)."""

    kind: str
    months: tuple[MonthRange, ...]
    read_to: tuple[Position, ...]


class Line(NamedTuple):
    """A contribution line as `social_contribution_records` holds its current version."""

    ref: RecordRef
    insurance_type: str
    month: dt.date
    status: str


@dataclass(frozen=True, slots=True)
class Fact:
    """A fact's value (amounts as two-decimal strings) and the records it was derived from: `lineage`,
    plus the lines `lines` names while it is not resolved."""

    value: FactValue
    lineage: tuple[RecordRef, ...] = ()
    lines: LineSpan | None = None


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
    months: set[int] = set()
    month_refs: list[RecordRef] = []
    total = Decimal("0.00")
    total_refs: list[RecordRef] = []
    for ref, payment in live(profile.payments):
        start, end = month_index(payment.period_start), month_index(payment.period_end)
        if payment.tax_paid > 0 and start <= last and end >= first:
            # A payment covers every month of its period; count only those inside the window.
            months.update(range(max(start, first), min(end, last) + 1))
            month_refs.append(ref)
        if first <= end <= last:
            total += payment.tax_paid
            total_refs.append(ref)
    return {
        "tax.months_paid_12": Fact(len(months), _lineage(month_refs)),
        "tax.total_paid_12": Fact(_money(total), _lineage(total_refs)),
    }


def _continuous(months: Iterable[MonthRange], last: int) -> tuple[MonthRange, ...]:
    """The run of months ending at `last`; none when `last` itself is missing."""
    return tuple(MonthRange(span.first, last) for span in months if span.first <= last == span.last)


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
            span = LineSpan(kind, counted, social.read_to) if counted else None
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


def with_lines(facts: Mapping[str, Fact], lines: Iterable[Line]) -> Facts:
    """`facts` with every `LineSpan` resolved: `lines` are the subject's current contribution lines up
    to the spans' positions; each span's lineage is those of its kind, received, in its months."""
    paid: dict[str, list[tuple[int, RecordRef]]] = {kind: [] for kind in SOCIAL_KINDS}
    for line in lines:
        if line.status == "paid":
            paid[KIND_OF_INSURANCE[line.insurance_type]].append((month_index(line.month), line.ref))
    resolved: Facts = {}
    for name, fact in facts.items():
        span = fact.lines
        if span is None:
            resolved[name] = fact
            continue
        refs = (ref for month, ref in paid[span.kind] for s in span.months if s.first <= month <= s.last)
        resolved[name] = replace(fact, lineage=_lineage((*fact.lineage, *refs)), lines=None)
    return resolved


def spans(facts: Mapping[str, Fact]) -> tuple[Position, ...]:
    """The positions the facts' unresolved spans read up to; empty when every lineage is resolved."""
    return next((fact.lines.read_to for fact in facts.values() if fact.lines is not None), ())


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
