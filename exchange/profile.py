"""The profile aggregate and the ledger it is derived from: one subject's records from every department.

`apply(ledger, event)` is the fold. It is pure, idempotent and order-safe: per dataset and source
record the ledger keeps exactly one `Entry`, the greatest under a total order (higher source version;
at equal version a revoke over an upsert; then the earlier log position). Keeping a maximum is
commutative and idempotent, so any permutation and any duplication of the same events folds to the
same ledger. A revoke keeps its version as a tombstone (`data is None`): the record counts for
nothing, and a late lower version cannot bring it back.

The ledger is what the processor keeps per subject (its table, with a changelog). The profile is the
aggregate everyone else reads (`exchange.profile.v1`, the `profiles` views, the facts), derived from
the ledger by `profile_of`: its tax and social sections keep months as ranges (months paid, net tax
per month as runs, received and owed months per insurance kind), not one entry per monthly record,
so thirty years of payments and contributions are a few ranges. The records themselves, every
version, live in `tax_payment_records` and `social_contribution_records`; a fact over months names
them by a `RecordSpan` that the edges resolve against those tables (`exchange.facts.with_records`),
bounded by the positions the profile was folded up to, so its lineage is exactly the records the
profile counted.

Each entry keeps only what facts and proofs need, plus its lineage (`RecordRef`). Sections are
plain dicts shared between successive ledgers: `apply` copies only the section it changes
(copy-on-write), so every mapping reachable from a `Ledger` must be treated as read-only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar

from exchange.exceptions import ExchangeError

IDENTITY = "identity.person"
TAX = "tax.payment"
SOCIAL = "social.contribution"
PROPERTY = "property.title"
DATASETS: tuple[str, ...] = (IDENTITY, TAX, SOCIAL, PROPERTY)

# The five insurance kinds of the facts; both pension schemes (aae140 110 and 120) are one kind.
SOCIAL_KINDS: tuple[str, ...] = ("pension", "medical", "unemployment", "injury", "maternity")
KIND_OF_INSURANCE: Mapping[str, str] = {
    "enterprise_pension": "pension",
    "institution_pension": "pension",
    "medical": "medical",
    "unemployment": "unemployment",
    "injury": "injury",
    "maternity": "maternity",
}

Record = Mapping[str, Any]
T = TypeVar("T")


class UnknownDatasetError(ExchangeError):
    """Raised when an event of a dataset the profile does not fold reaches `apply`."""


class RecordRef(NamedTuple):
    """Lineage of one source record version: which event, and where in the log it was read."""

    event_id: str
    dataset: str
    source_record_id: str
    source_version: int
    topic: str
    partition: int
    offset: int


class Person(NamedTuple):
    """户籍 record as the identity facts and the 户籍证明 need it."""

    citizen_id: str
    name: str
    sex: str
    ethnicity: str
    birth_date: dt.date
    address: str
    district: str
    status: str


class Payment(NamedTuple):
    """One 电子税票 as the tax facts and the 完税证明 need it."""

    income_item: str
    period_start: dt.date
    period_end: dt.date
    income: Decimal
    tax_paid: Decimal
    withholding_agent: str | None
    credited_on: dt.date


class Contribution(NamedTuple):
    """One 社保缴费 line as the social facts and the 参保缴费证明 need it."""

    insurance_type: str
    month: dt.date
    employer_id: str
    employer_name: str
    status: str
    # When 人社 last changed the line (gxsj): of two lines for one month, the later names the employer.
    occurred_at: dt.datetime


class Title(NamedTuple):
    """One 不动产 title as it concerns this subject, with the subject's share in percent."""

    certificate_no: str
    unit_no: str
    share: Decimal
    location: str
    district: str
    use: str
    area: Decimal
    status: str
    mortgaged: bool
    seized: bool


class Entry(NamedTuple, Generic[T]):
    """The winning version of one source record: its lineage, and its data (None once revoked)."""

    ref: RecordRef
    data: T | None


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded canonical record and where it was read from."""

    dataset: str
    record: Record
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Ledger:
    """What the processor keeps per subject: sections map source record id to its winning `Entry`.

    `version` counts the changes `apply` made; it is the only field that depends on arrival order.
    """

    subject_key: str
    version: int
    persons: Mapping[str, Entry[Person]]
    payments: Mapping[str, Entry[Payment]]
    contributions: Mapping[str, Entry[Contribution]]
    titles: Mapping[str, Entry[Title]]


def empty_ledger(subject_key: str) -> Ledger:
    """The ledger of a subject the exchange has no record of yet."""
    return Ledger(subject_key, 0, {}, {}, {}, {})


class MonthRange(NamedTuple):
    """Consecutive calendar months, both ends included, as `month_index` values."""

    first: int
    last: int


class Position(NamedTuple):
    """A partition of a topic and an offset in it."""

    topic: str
    partition: int
    offset: int


class Employer(NamedTuple):
    """social.current_employer: the latest received pension month, its employer, the line naming it."""

    month: int
    employer_id: str
    ref: RecordRef


class MonthTotal(NamedTuple):
    """Consecutive months (`month_index`, both ends included) each with the same net tax credited."""

    first: int
    last: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Tax:
    """The tax section of the profile: months, never one entry per 电子税票.

    `paid`: the months covered by a live payment of tax > 0 (a payment covers every month of its period).
    `totals`: per month some live payment's period ends in, the net tax of those payments (refunds are
    negative, so a month can net to zero), as runs of consecutive months with the same amount.
    `read_to`: per partition of the payment topic, the last offset that changed the payments; the
    payments behind these months are the subject's current ones in `tax_payment_records` up to there.
    """

    paid: tuple[MonthRange, ...]
    totals: tuple[MonthTotal, ...]
    read_to: tuple[Position, ...]


NO_TAX = Tax((), (), ())
_NONE_PAID = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class Social:
    """The social section of the profile: months as ranges, never one entry per monthly line.

    `received`: per insurance kind (`SOCIAL_KINDS`), the months at least one live line paid.
    `arrears`: per kind, the months a live line is owed and no line paid.
    `read_to`: per partition of the contribution topic, the last offset that changed the lines (a
    re-send or a late lower version changes nothing); the lines behind these months are exactly the
    subject's current lines in `social_contribution_records` up to there, in the fold's order.
    """

    received: Mapping[str, tuple[MonthRange, ...]]
    arrears: Mapping[str, tuple[MonthRange, ...]]
    employer: Employer | None
    read_to: tuple[Position, ...]


NO_SOCIAL = Social({kind: () for kind in SOCIAL_KINDS}, {kind: () for kind in SOCIAL_KINDS}, None, ())


@dataclass(frozen=True, slots=True)
class Profile:
    """One subject's aggregate, as every reader sees it: identity and property records by source
    record id with their winning `Entry` (a person has one 户籍 record and a few titles), and the tax and
    social sections as months (`Tax`, `Social`)."""

    subject_key: str
    version: int
    persons: Mapping[str, Entry[Person]]
    tax: Tax
    social: Social
    titles: Mapping[str, Entry[Title]]


def empty_profile(subject_key: str) -> Profile:
    """The profile of a subject the exchange has no record of yet."""
    return Profile(subject_key, 0, {}, NO_TAX, NO_SOCIAL, {})


def _person(record: Record) -> Person:
    return Person(
        record["citizen_id"],
        record["name"],
        record["sex"],
        record["ethnicity"],
        record["birth_date"],
        record["address"],
        record["district"],
        record["status"],
    )


def _payment(record: Record) -> Payment:
    return Payment(
        record["income_item"],
        record["period_start"],
        record["period_end"],
        record["income"],
        record["tax_paid"],
        record["withholding_agent"],
        record["credited_on"],
    )


def _contribution(record: Record) -> Contribution:
    return Contribution(
        record["insurance_type"],
        record["month"],
        record["employer_id"],
        record["employer_name"],
        record["status"],
        record["envelope"]["occurred_at"],
    )


def _title(record: Record) -> Title:
    return Title(
        record["certificate_no"],
        record["unit_no"],
        record["share"],
        record["location"],
        record["district"],
        record["use"],
        record["area"],
        record["status"],
        record["mortgaged"],
        record["seized"],
    )


# dataset -> (Profile field holding its section, converter from the canonical record)
_SECTIONS: Mapping[str, tuple[str, Callable[[Record], Any]]] = {
    IDENTITY: ("persons", _person),
    TAX: ("payments", _payment),
    SOCIAL: ("contributions", _contribution),
    PROPERTY: ("titles", _title),
}


def _supersedes(ref: RecordRef, revoke: bool, held: Entry[Any]) -> bool:
    """Whether a new version beats the held one: the total order that makes the fold order-free."""
    old = held.ref
    if ref.source_version != old.source_version:
        return ref.source_version > old.source_version
    if revoke != (held.data is None):
        # One version both upserted and revoked: the revoke wins, so only a newer version undoes a void.
        return revoke
    # A re-send of the same version: the earliest position wins, so a live re-send is a no-op.
    return (ref.topic, ref.partition, ref.offset) < (old.topic, old.partition, old.offset)


def apply(ledger: Ledger, event: Event) -> Ledger:
    """Fold one event into a ledger; return the same object when the event changes nothing."""
    try:
        field, convert = _SECTIONS[event.dataset]
    except KeyError:
        raise UnknownDatasetError(
            f"no profile section for dataset {event.dataset!r} ({event.topic}:{event.partition}:"
            f"{event.offset}); expected one of {', '.join(DATASETS)}"
        ) from None
    envelope = event.record["envelope"]
    ref = RecordRef(
        envelope["event_id"],
        event.dataset,
        envelope["source_record_id"],
        envelope["source_version"],
        event.topic,
        event.partition,
        event.offset,
    )
    revoke = envelope["op"] == "revoke"
    section: Mapping[str, Entry[Any]] = getattr(ledger, field)
    held = section.get(ref.source_record_id)
    if held is not None and not _supersedes(ref, revoke, held):
        return ledger
    # Copy-on-write: only the touched section is copied; the others are shared with `ledger`.
    changed = dict(section)
    changed[ref.source_record_id] = Entry(ref, None if revoke else convert(event.record))
    return _with_section(ledger, field, changed)


def _with_section(ledger: Ledger, field: str, section: dict[str, Entry[Any]]) -> Ledger:
    """The next version of `ledger` with one section replaced (cheaper than `dataclasses.replace`)."""
    return Ledger(
        ledger.subject_key,
        ledger.version + 1,
        section if field == "persons" else ledger.persons,
        section if field == "payments" else ledger.payments,
        section if field == "contributions" else ledger.contributions,
        section if field == "titles" else ledger.titles,
    )


def live(section: Mapping[str, Entry[T]]) -> Iterable[tuple[RecordRef, T]]:
    """The records of a section that count: every entry but the tombstones."""
    return ((entry.ref, entry.data) for entry in section.values() if entry.data is not None)


def month_index(day: dt.date) -> int:
    """A calendar month as a consecutive integer, so months can be counted and compared."""
    return day.year * 12 + day.month - 1


def month_label(index: int) -> str:
    """`YYYY-MM` of a `month_index`."""
    year, month = divmod(index, 12)
    return f"{year:04d}-{month + 1:02d}"


def ranges(months: Iterable[int]) -> tuple[MonthRange, ...]:
    """Months as the fewest ranges, in order."""
    found: list[MonthRange] = []
    ordered = sorted(set(months))
    if not ordered:
        return ()
    first = previous = ordered[0]
    for month in ordered:
        if month > previous + 1:
            found.append(MonthRange(first, previous))
            first = month
        previous = month
    found.append(MonthRange(first, previous))
    return tuple(found)


def count_months(months: Iterable[MonthRange]) -> int:
    """How many months the ranges cover (they do not overlap)."""
    return sum(span.last - span.first + 1 for span in months)


def clip(months: Iterable[MonthRange], first: int, last: int) -> tuple[MonthRange, ...]:
    """The parts of the ranges inside `first … last`."""
    return tuple(
        MonthRange(max(span.first, first), min(span.last, last))
        for span in months
        if span.first <= last and span.last >= first
    )


def _read_to(section: Mapping[str, Entry[Any]]) -> tuple[Position, ...]:
    """Per partition, the last offset that changed the section (its tombstones' too)."""
    read_to: dict[tuple[str, int], int] = {}
    for entry in section.values():
        ref = entry.ref
        where = (ref.topic, ref.partition)
        if read_to.get(where, -1) < ref.offset:
            read_to[where] = ref.offset
    return tuple(Position(topic, partition, offset) for (topic, partition), offset in sorted(read_to.items()))


def tax_of(payments: Mapping[str, Entry[Payment]]) -> Tax:
    """The tax section of the live payments: the months paid as ranges, the net tax per period-end
    month as runs, and the positions the payments were read up to."""
    if not payments:
        return NO_TAX
    paid: set[int] = set()
    net: dict[int, Decimal] = {}
    none_paid = _NONE_PAID
    for entry in payments.values():
        payment = entry.data
        if payment is None:
            continue
        # month_index, inlined: this loop runs over every payment of a subject each time they change.
        start, end, amount = payment.period_start, payment.period_end, payment.tax_paid
        last = end.year * 12 + end.month - 1
        if amount > none_paid:
            paid.update(range(start.year * 12 + start.month - 1, last + 1))
        net[last] = net.get(last, none_paid) + amount
    return Tax(ranges(paid), _runs(net), _read_to(payments))


def _runs(amounts: Mapping[int, Decimal]) -> tuple[MonthTotal, ...]:
    """Month -> amount as runs of consecutive months with the same amount, in order."""
    items = sorted(amounts.items())
    if not items:
        return ()
    runs: list[MonthTotal] = []
    first, amount = items[0]
    previous = first
    for month, value in items[1:]:
        if month != previous + 1 or value != amount:
            runs.append(MonthTotal(first, previous, amount))
            first, amount = month, value
        previous = month
    runs.append(MonthTotal(first, previous, amount))
    return tuple(runs)


def social_of(contributions: Mapping[str, Entry[Contribution]]) -> Social:
    """The social section of the live contribution lines: received and owed months per kind as ranges,
    the current employer, and the positions the lines were read up to."""
    if not contributions:
        return NO_SOCIAL
    paid: dict[str, set[int]] = {kind: set() for kind in SOCIAL_KINDS}
    owed: dict[str, set[int]] = {kind: set() for kind in SOCIAL_KINDS}
    indices: dict[dt.date, int] = {}  # the lines of a month share its date: convert each once
    latest: tuple[int, dt.datetime, str] | None = None
    named: tuple[RecordRef, str] | None = None
    for entry in contributions.values():
        ref, line = entry.ref, entry.data
        if line is None:
            continue
        kind = KIND_OF_INSURANCE[line.insurance_type]
        month = indices.get(line.month)
        if month is None:
            month = indices[line.month] = month_index(line.month)
        if line.status != "paid":
            owed[kind].add(month)
        else:
            paid[kind].add(month)
            if kind == "pension":
                # Of several lines for the latest month (two jobs, or both schemes), the one changed
                # last names the employer; the record id only breaks an exact tie, deterministically.
                candidate = (month, line.occurred_at, ref.source_record_id)
                if latest is None or candidate > latest:
                    latest, named = candidate, (ref, line.employer_id)
    return Social(
        {kind: ranges(months) for kind, months in paid.items()},
        {kind: ranges(owed[kind] - paid[kind]) for kind in SOCIAL_KINDS},
        None if latest is None or named is None else Employer(latest[0], named[1], named[0]),
        _read_to(contributions),
    )


def profile_of(ledger: Ledger) -> Profile:
    """The profile a ledger stands for."""
    return Profile(
        ledger.subject_key,
        ledger.version,
        ledger.persons,
        tax_of(ledger.payments),
        social_of(ledger.contributions),
        ledger.titles,
    )


def social_ranges(profile: Profile) -> dict[str, list[list[str]]]:
    """Per insurance kind, the received months as inclusive ranges, e.g. [["2024-01", "2026-10"]]."""
    return {
        kind: [[month_label(span.first), month_label(span.last)] for span in months]
        for kind, months in profile.social.received.items()
    }


# The canonical schemas' enum symbols; the Avro form stores a symbol as its position here. Append only, so a
# stored profile keeps its meaning; schemas/profile.avsc lists them with the columns.
SEXES: tuple[str, ...] = ("male", "female", "unknown", "unstated")
PERSON_STATUSES: tuple[str, ...] = ("normal", "deceased", "moved_out")
INCOME_ITEMS: tuple[str, ...] = (
    "wages",
    "service_remuneration",
    "author_remuneration",
    "royalties",
    "business",
    "interest_dividends",
    "property_lease",
    "property_transfer",
    "incidental",
)
INSURANCE_TYPES: tuple[str, ...] = (
    "enterprise_pension",
    "institution_pension",
    "unemployment",
    "medical",
    "injury",
    "maternity",
)
CONTRIBUTION_STATUSES: tuple[str, ...] = ("paid", "arrears")
PROPERTY_USES: tuple[str, ...] = ("residential", "commercial", "office", "industrial", "other")
TITLE_STATUSES: tuple[str, ...] = ("current", "historic", "cancelled")


# The Avro form lives in its own module; it is re-exported here because every consumer of profiles
# (processor, sink, API) reads `exchange.profile.to_avro` / `from_avro`. Imported last: it needs the
# types above.
from exchange.profile_avro import (  # noqa: E402
    ProfileFormError,
    from_avro,
    ledger_from_avro,
    ledger_to_avro,
    to_avro,
)

__all__ = [
    "CONTRIBUTION_STATUSES",
    "DATASETS",
    "IDENTITY",
    "INCOME_ITEMS",
    "INSURANCE_TYPES",
    "NO_SOCIAL",
    "NO_TAX",
    "PERSON_STATUSES",
    "PROPERTY",
    "PROPERTY_USES",
    "SEXES",
    "SOCIAL",
    "TAX",
    "TITLE_STATUSES",
    "Contribution",
    "Employer",
    "Entry",
    "Event",
    "Ledger",
    "MonthRange",
    "MonthTotal",
    "Payment",
    "Person",
    "Position",
    "Profile",
    "ProfileFormError",
    "RecordRef",
    "Social",
    "Tax",
    "Title",
    "apply",
    "clip",
    "count_months",
    "empty_ledger",
    "empty_profile",
    "from_avro",
    "ledger_from_avro",
    "ledger_to_avro",
    "live",
    "month_index",
    "month_label",
    "profile_of",
    "ranges",
    "social_of",
    "social_ranges",
    "tax_of",
    "to_avro",
]
