"""The profile aggregate: one subject's records from every department, folded event by event.

`apply(profile, event)` is the fold. It is pure, idempotent and order-safe: per dataset and source
record the profile keeps exactly one `Entry`, the greatest under a total order (higher source
version; at equal version a revoke over an upsert; then the earlier log position). Keeping a maximum
is commutative and idempotent, so any permutation and any duplication of the same events folds to
the same profile. A revoke keeps its version as a tombstone (`data is None`): the record counts for
nothing, and a late lower version cannot bring it back.

Each entry keeps only what facts and proofs need, plus its lineage (`RecordRef`). Sections are
plain dicts shared between successive profiles: `apply` copies only the section it changes
(copy-on-write), so every mapping reachable from a `Profile` must be treated as read-only.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from itertools import accumulate, pairwise, repeat
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
class Profile:
    """One subject's aggregate; sections map source record id to its winning `Entry`.

    `version` counts the changes `apply` made; it is the only field that depends on arrival order.
    """

    subject_key: str
    version: int
    persons: Mapping[str, Entry[Person]]
    payments: Mapping[str, Entry[Payment]]
    contributions: Mapping[str, Entry[Contribution]]
    titles: Mapping[str, Entry[Title]]


def empty_profile(subject_key: str) -> Profile:
    """The profile of a subject the exchange has no record of yet."""
    return Profile(subject_key, 0, {}, {}, {}, {})


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


def apply(profile: Profile, event: Event) -> Profile:
    """Fold one event into a profile; return the same object when the event changes nothing."""
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
    section: Mapping[str, Entry[Any]] = getattr(profile, field)
    held = section.get(ref.source_record_id)
    if held is not None and not _supersedes(ref, revoke, held):
        return profile
    # Copy-on-write: only the touched section is copied; the others are shared with `profile`.
    changed = dict(section)
    changed[ref.source_record_id] = Entry(ref, None if revoke else convert(event.record))
    return _with_section(profile, field, changed)


def _with_section(profile: Profile, field: str, section: dict[str, Entry[Any]]) -> Profile:
    """The next version of `profile` with one section replaced (cheaper than `dataclasses.replace`)."""
    return Profile(
        profile.subject_key,
        profile.version + 1,
        section if field == "persons" else profile.persons,
        section if field == "payments" else profile.payments,
        section if field == "contributions" else profile.contributions,
        section if field == "titles" else profile.titles,
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


def received_months(profile: Profile) -> dict[str, dict[int, list[RecordRef]]]:
    """Per insurance kind, each received month (arrears excluded) and the records that paid it."""
    months: dict[str, dict[int, list[RecordRef]]] = {kind: {} for kind in SOCIAL_KINDS}
    for ref, line in live(profile.contributions):
        if line.status == "paid":
            kind = months[KIND_OF_INSURANCE[line.insurance_type]]
            kind.setdefault(month_index(line.month), []).append(ref)
    return months


def _ranges(months: Iterable[int]) -> list[list[str]]:
    ranges: list[list[int]] = []
    for month in sorted(months):
        if ranges and ranges[-1][1] == month - 1:
            ranges[-1][1] = month
        else:
            ranges.append([month, month])
    return [[month_label(first), month_label(last)] for first, last in ranges]


def social_ranges(profile: Profile) -> dict[str, list[list[str]]]:
    """Per insurance kind, the received months as inclusive ranges, e.g. [["2024-01", "2026-10"]]."""
    return {kind: _ranges(months) for kind, months in received_months(profile).items()}


# --- the Avro form: packed columns (schemas/profile.avsc) ------------------------------------------
#
# fastavro reads every array item with Python-level calls (about half a microsecond each), and every
# logical-typed value through a Python callback, so a 3-year profile as records cost milliseconds per
# step. Here each field of a section is one column: numbers packed as little-endian integers in one
# `bytes`, strings concatenated in one `string` beside their lengths. A section is then a few dozen Avro
# values whatever its size, and the conversions run here, a column at a time.


class ProfileFormError(ExchangeError):
    """Raised when a profile holds a value its Avro form cannot keep exactly, or a record is no profile."""


# What a symbol column's int8 means, by position: the canonical schemas' enum symbols. Append only, so a
# stored profile keeps its meaning; schemas/profile.avsc lists them in each column's doc.
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

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = _EPOCH.date().toordinal()
_MILLISECOND = dt.timedelta(milliseconds=1)
_HUNDREDTH = Decimal("0.01")
# struct codes of the packed integers: int8, bool, int32, int64.
_INT8, _BOOL, _INT32, _INT64 = "b", "?", "i", "q"
_SIZES = {_INT8: 1, _BOOL: 1, _INT32: 4, _INT64: 8}

Column = Sequence[Any]
A = TypeVar("A", bound=Hashable)
B = TypeVar("B")


def _pack(code: str, values: Column) -> bytes:
    try:
        return struct.pack(f"<{len(values)}{code}", *values)
    except struct.error as exc:
        raise ValueError(f"{exc}: {values!r}") from None


def _unpack(code: str, packed: bytes) -> tuple[Any, ...]:
    return struct.unpack(f"<{len(packed) // _SIZES[code]}{code}", packed)


def _each(convert: Callable[[A], B], values: Iterable[A]) -> list[B]:
    """`convert` of each value, computed once per distinct value (months and amounts repeat)."""
    values = list(values)
    done = {value: convert(value) for value in set(values)}
    return [done[value] for value in values]


def _join(values: Column) -> dict[str, Any]:
    return {"text": "".join(values), "lengths": _pack(_INT32, [len(value) for value in values])}


def _split(strings: Mapping[str, Any]) -> list[str]:
    text = strings["text"]
    bounds = list(accumulate(_unpack(_INT32, strings["lengths"]), initial=0))
    if bounds[-1] != len(text):
        raise ProfileFormError(f"string lengths add up to {bounds[-1]}, the text has {len(text)}")
    return [text[start:end] for start, end in pairwise(bounds)]


def _code(values: Column) -> dict[str, Any]:
    # Sorted, so that the bytes do not depend on the order the values arrived in.
    distinct = sorted({value for value in values if value is not None})
    positions: dict[str | None, int] = {value: position for position, value in enumerate(distinct)}
    positions[None] = -1
    return {"values": _join(distinct), "positions": _pack(_INT32, [positions[value] for value in values])}


def _decode(coded: Mapping[str, Any]) -> list[str | None]:
    values: list[str | None] = [*_split(coded["values"]), None]  # so that position -1 is None
    return [values[position] for position in _unpack(_INT32, coded["positions"])]


def _millis(instants: Column) -> bytes:
    try:
        millis = [(at - _EPOCH) // _MILLISECOND for at in instants]
    except TypeError:
        raise ValueError("an instant has no time zone") from None
    if any(at.microsecond % 1000 for at in instants):
        raise ValueError("an instant has a fraction of a millisecond; the profile keeps milliseconds")
    return _pack(_INT64, millis)


def _instants(packed: bytes) -> list[dt.datetime]:
    return _each(lambda millis: _EPOCH + millis * _MILLISECOND, _unpack(_INT64, packed))


def _days(dates: Column) -> bytes:
    return _pack(_INT32, [day.toordinal() - _EPOCH_DAY for day in dates])


def _dates(packed: bytes) -> list[dt.date]:
    return _each(lambda days: dt.date.fromordinal(days + _EPOCH_DAY), _unpack(_INT32, packed))


def _hundredth(amount: Decimal) -> int:
    scaled = amount * 100
    whole = int(scaled)
    if whole != scaled:
        raise ValueError(f"{amount} has more than two decimal places")
    return whole


def _hundredths(amounts: Column) -> bytes:
    return _pack(_INT64, _each(_hundredth, amounts))


def _decimals(packed: bytes) -> list[Decimal]:
    # Times 0.01 gives the canonical scale 2 exactly: Decimal("1.00"), not Decimal("1").
    return _each(lambda hundredths: Decimal(hundredths) * _HUNDREDTH, _unpack(_INT64, packed))


class _Column(NamedTuple):
    """One field of a section's records in Avro: its name in the schema and its converters."""

    name: str
    encode: Callable[[Column], Any]
    decode: Callable[[Any], Column]


def _text(name: str) -> _Column:
    return _Column(name, _join, _split)


def _coded(name: str) -> _Column:
    """A string column with few distinct values (or None), dictionary-coded."""
    return _Column(name, _code, _decode)


def _symbol(name: str, symbols: tuple[str, ...]) -> _Column:
    positions = {symbol: position for position, symbol in enumerate(symbols)}

    def encode(values: Column) -> bytes:
        try:
            return _pack(_INT8, [positions[value] for value in values])
        except KeyError as exc:
            raise ValueError(f"{name}: {exc.args[0]!r} is not one of {', '.join(symbols)}") from None

    def decode(packed: bytes) -> list[str]:
        return [symbols[position] for position in _unpack(_INT8, packed)]

    return _Column(name, encode, decode)


def _flag(name: str) -> _Column:
    return _Column(name, partial(_pack, _BOOL), partial(_unpack, _BOOL))


def _integer(name: str, code: str) -> _Column:
    return _Column(name, partial(_pack, code), partial(_unpack, code))


def _date(name: str) -> _Column:
    return _Column(name, _days, _dates)


def _instant(name: str) -> _Column:
    return _Column(name, _millis, _instants)


def _decimal(name: str) -> _Column:
    return _Column(name, _hundredths, _decimals)


class _Form(NamedTuple):
    """How one section travels: its dataset, its record type, and a column per field of that type."""

    dataset: str
    record: type[Any]
    columns: tuple[_Column, ...]


# Profile field (and Avro field) -> its form; the columns in the record type's field order.
_FORMS: Mapping[str, _Form] = {
    "persons": _Form(
        IDENTITY,
        Person,
        (
            _text("citizen_ids"),
            _text("names"),
            _symbol("sexes", SEXES),
            _text("ethnicities"),
            _date("birth_dates"),
            _text("addresses"),
            _text("districts"),
            _symbol("statuses", PERSON_STATUSES),
        ),
    ),
    "payments": _Form(
        TAX,
        Payment,
        (
            _symbol("income_items", INCOME_ITEMS),
            _date("period_starts"),
            _date("period_ends"),
            _decimal("incomes"),
            _decimal("taxes_paid"),
            _coded("withholding_agents"),
            _date("credited_on"),
        ),
    ),
    "contributions": _Form(
        SOCIAL,
        Contribution,
        (
            _symbol("insurance_types", INSURANCE_TYPES),
            _date("months"),
            _coded("employer_ids"),
            _coded("employer_names"),
            _symbol("statuses", CONTRIBUTION_STATUSES),
            _instant("occurred_at"),
        ),
    ),
    "titles": _Form(
        PROPERTY,
        Title,
        (
            _text("certificate_nos"),
            _text("unit_nos"),
            _decimal("shares"),
            _text("locations"),
            _text("districts"),
            _symbol("uses", PROPERTY_USES),
            _decimal("areas"),
            _symbol("statuses", TITLE_STATUSES),
            _flag("mortgaged"),
            _flag("seized"),
        ),
    ),
}
# RecordRef's columns but the dataset, which is the section's; then whether each record is live.
_LINEAGE: tuple[_Column, ...] = (
    _text("event_ids"),
    _text("source_record_ids"),
    _integer("source_versions", _INT64),
    _coded("topics"),
    _integer("partitions", _INT32),
    _integer("offsets", _INT64),
)


def _columns_to_avro(columns: tuple[_Column, ...], rows: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    values = zip(*rows, strict=True) if rows else [()] * len(columns)
    return {column.name: column.encode(value) for column, value in zip(columns, values, strict=True)}


def _section_to_avro(section: Mapping[str, Entry[Any]], form: _Form) -> dict[str, Any]:
    # Sorted, so one profile always encodes to the same bytes whatever order its events came in.
    entries = [section[record_id] for record_id in sorted(section)]
    refs = [entry.ref for entry in entries]
    strays = {ref.dataset for ref in refs} - {form.dataset}
    if strays:
        raise ValueError(f"the {form.dataset} section holds records of {', '.join(sorted(strays))}")
    lineage = _columns_to_avro(_LINEAGE, [(ref[0], *ref[2:]) for ref in refs])
    lineage["live"] = _pack(_BOOL, [entry.data is not None for entry in entries])
    data = [entry.data for entry in entries if entry.data is not None]
    return {"lineage": lineage, **_columns_to_avro(form.columns, data)}


def to_avro(profile: Profile) -> dict[str, Any]:
    """The profile as a record of `schemas/profile.avsc`: each section in packed columns."""
    try:
        sections = {field: _section_to_avro(getattr(profile, field), form) for field, form in _FORMS.items()}
    except ValueError as exc:
        raise ProfileFormError(f"profile {profile.subject_key} has no exact Avro form: {exc}") from exc
    return {"subject_key": profile.subject_key, "version": profile.version, **sections}


def _rows(record: type[T], columns: Iterable[Iterable[Any]]) -> list[T]:
    """NamedTuples of type `record` from their columns.

    `tuple.__new__` builds them in C, as the generated `record.__new__` would after its Python call.
    """
    return list(map(tuple.__new__, repeat(record), zip(*columns, strict=True)))


def _section_from_avro(columns: Mapping[str, Any], form: _Form) -> dict[str, Entry[Any]]:
    lineage = columns["lineage"]
    event_ids, record_ids, versions, topics, partitions, offsets = (
        column.decode(lineage[column.name]) for column in _LINEAGE
    )
    refs = _rows(
        RecordRef,
        (event_ids, [form.dataset] * len(event_ids), record_ids, versions, topics, partitions, offsets),
    )
    live = _unpack(_BOOL, lineage["live"])
    data: list[Any] = _rows(form.record, (column.decode(columns[column.name]) for column in form.columns))
    if len(data) != sum(live):
        raise ProfileFormError(
            f"the {form.dataset} section has {sum(live)} live records, data for {len(data)}"
        )
    if len(data) != len(refs):
        rows = iter(data)
        data = [next(rows) if is_live else None for is_live in live]
    return dict(zip(record_ids, _rows(Entry, (refs, data)), strict=True))


def from_avro(record: Mapping[str, Any]) -> Profile:
    """The profile a `to_avro` record was made from."""
    try:
        persons, payments, contributions, titles = (
            _section_from_avro(record[field], form) for field, form in _FORMS.items()
        )
    except (ValueError, IndexError, struct.error) as exc:
        raise ProfileFormError(f"profile record {record['subject_key']} is inconsistent: {exc}") from exc
    return Profile(record["subject_key"], record["version"], persons, payments, contributions, titles)
