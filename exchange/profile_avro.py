"""The Avro forms of the ledger (schemas/ledger.avsc) and the profile (schemas/profile.avsc), exact both ways.

fastavro costs about a microsecond per field and half a microsecond per array item, in Python-level
calls, and a Python callback per logical-typed value: a 3-year profile as records cost milliseconds
per step. So a section of records travels as four Avro values whatever its size: its number of
records, its columns packed little-endian in one `bytes`, the characters of its text columns in one
`string`, and the few distinct values of its coded columns. The columns are converted here, each as a
whole. The profile shares the ledger's identity and property sections (the very packed values); its
tax and social sections are months as ranges (`tax_to_avro`, `social_to_avro`).
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from itertools import accumulate, repeat
from operator import add, gt, le
from typing import Any, NamedTuple, TypeVar

from exchange.exceptions import ExchangeError
from exchange.profile import (
    CONTRIBUTION_STATUSES,
    IDENTITY,
    INCOME_ITEMS,
    INSURANCE_TYPES,
    PERSON_STATUSES,
    PROPERTY,
    PROPERTY_USES,
    SEXES,
    SOCIAL,
    SOCIAL_KINDS,
    TAX,
    TITLE_STATUSES,
    Contribution,
    Employer,
    Entry,
    Ledger,
    MonthRange,
    MonthTotal,
    Payment,
    Person,
    Position,
    Profile,
    RecordRef,
    Social,
    Tax,
    Title,
    social_of,
    tax_of,
)

T = TypeVar("T")


class ProfileFormError(ExchangeError):
    """Raised when a profile holds a value its Avro form cannot keep exactly, or a record is no profile."""


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = _EPOCH.date().toordinal()
_MILLISECOND = dt.timedelta(milliseconds=1)
_HUNDREDTH = Decimal("0.01")
# Amounts convert in a context that refuses to round, whatever the thread's own context says.
_EXACT = Context(prec=28, traps=[Inexact, InvalidOperation, Overflow])
# How a column is packed: a struct code; a text column packs each item's length in characters and a
# coded column each item's position in the section's dictionary (-1 for null), both as int32.
_INT8, _BOOL, _INT32, _INT64 = "b", "?", "i", "q"
_TEXT, _CODED = "text", "coded"
# Joins the items of the text columns, so that splitting them is one call; the lengths keep them exact
# when an item holds the separator itself.
_SEPARATOR = "\x00"

_Items = Sequence[Any]
A = TypeVar("A", bound=Hashable)
B = TypeVar("B")


def _each(convert: Callable[[Sequence[A]], list[B]], values: Sequence[A]) -> list[B]:
    """`convert(values)`, converting each distinct value once when values repeat (months, amounts, the
    instants of lines changed together)."""
    distinct = list(set(values))
    if len(distinct) == len(values):
        return convert(values)
    done = dict(zip(distinct, convert(distinct), strict=True))
    return [done[value] for value in values]


def _days(dates: _Items) -> list[int]:
    return _each(lambda days: [day.toordinal() - _EPOCH_DAY for day in days], dates)


def _dates(days: _Items) -> list[dt.date]:
    return _each(lambda values: [dt.date.fromordinal(value + _EPOCH_DAY) for value in values], days)


def _millis(instants: _Items) -> list[int]:
    return _each(_millis_of, instants)


def _millis_of(instants: _Items) -> list[int]:
    try:
        millis = [(at - _EPOCH) // _MILLISECOND for at in instants]
    except TypeError:
        raise ValueError("an instant has no time zone") from None
    if any(at.microsecond % 1000 for at in instants):
        raise ValueError("an instant has a fraction of a millisecond; the profile keeps milliseconds")
    return millis


def _instants(millis: _Items) -> list[dt.datetime]:
    return _each(lambda values: [_EPOCH + value * _MILLISECOND for value in values], millis)


def _hundredth(amount: Decimal) -> int:
    try:
        scaled = _EXACT.multiply(amount, 100)
        whole = int(scaled)
    except (ArithmeticError, ValueError):
        raise ValueError(f"{amount} is not an amount") from None
    if whole != scaled:
        raise ValueError(f"{amount} has more than two decimal places")
    return whole


def _hundredths(amounts: _Items) -> list[int]:
    return _each(lambda values: list(map(_hundredth, values)), amounts)


def _decimals(hundredths: _Items) -> list[Decimal]:
    # Times 0.01 gives the canonical scale 2 exactly: Decimal("1.00"), not Decimal("1").
    return _each(lambda values: [_EXACT.multiply(value, _HUNDREDTH) for value in values], hundredths)


def _same(values: _Items) -> _Items:
    return values


def _itself(value: Any) -> Any:
    return value


class _Column(NamedTuple):
    """One field of a section's records on the wire: how it is packed, and its converters; `parse` reads
    one value back from the JSON of a profile document (`section_columns`)."""

    name: str
    kind: str  # a struct code, _TEXT or _CODED
    encode: Callable[[_Items], _Items] = _same
    decode: Callable[[_Items], _Items] = _same
    parse: Callable[[Any], Any] = _itself


def _symbol(name: str, symbols: tuple[str, ...]) -> _Column:
    positions = {symbol: position for position, symbol in enumerate(symbols)}

    def encode(values: _Items) -> list[int]:
        try:
            return list(map(positions.__getitem__, values))
        except KeyError as exc:
            raise ValueError(f"{name}: {exc.args[0]!r} is not one of {', '.join(symbols)}") from None

    return _Column(name, _INT8, encode, lambda packed: list(map(symbols.__getitem__, packed)))


def _date(name: str) -> _Column:
    return _Column(name, _INT32, _days, _dates, dt.date.fromisoformat)


def _decimal(name: str) -> _Column:
    return _Column(name, _INT64, _hundredths, _decimals, Decimal)


def _codes(columns: Iterable[_Column]) -> str:
    """The struct codes of `columns`, a character each (text and coded columns pack int32s)."""
    return "".join(column.kind if len(column.kind) == 1 else _INT32 for column in columns)


def _format(codes: str, count: int) -> str:
    """The struct format of columns of `codes` one after the other, `count` items each ("<" apart)."""
    return f"{count}" + str(count).join(codes)


class _Form(NamedTuple):
    """How one section travels: its dataset, its record type, and a column per field of that type."""

    dataset: str
    record: type[Any]
    columns: tuple[_Column, ...]
    codes: str


def _form(dataset: str, record: type[Any], *columns: _Column) -> _Form:
    return _Form(dataset, record, columns, _codes(columns))


# RecordRef's fields but the dataset, which is the section's; then whether each record is live.
_LINEAGE: tuple[_Column, ...] = (
    _Column("event_ids", _TEXT),
    _Column("source_record_ids", _TEXT),
    _Column("source_versions", _INT64),
    _Column("topics", _CODED),
    _Column("partitions", _INT32),
    _Column("offsets", _INT64),
    _Column("live", _BOOL),
)
# Profile field (and Avro field) -> its form; the columns in the record type's field order.
_FORMS: Mapping[str, _Form] = {
    "persons": _form(
        IDENTITY,
        Person,
        _Column("citizen_ids", _TEXT),
        _Column("names", _TEXT),
        _symbol("sexes", SEXES),
        _Column("ethnicities", _TEXT),
        _date("birth_dates"),
        _Column("addresses", _TEXT),
        _Column("districts", _TEXT),
        _symbol("statuses", PERSON_STATUSES),
    ),
    "payments": _form(
        TAX,
        Payment,
        _symbol("income_items", INCOME_ITEMS),
        _date("period_starts"),
        _date("period_ends"),
        _decimal("incomes"),
        _decimal("taxes_paid"),
        _Column("withholding_agents", _CODED),
        _date("credited_on"),
    ),
    "contributions": _form(
        SOCIAL,
        Contribution,
        _symbol("insurance_types", INSURANCE_TYPES),
        _date("months"),
        _Column("employer_ids", _CODED),
        _Column("employer_names", _CODED),
        _symbol("statuses", CONTRIBUTION_STATUSES),
        _Column("occurred_at", _INT64, _millis, _instants, dt.datetime.fromisoformat),
    ),
    "titles": _form(
        PROPERTY,
        Title,
        _Column("certificate_nos", _TEXT),
        _Column("unit_nos", _TEXT),
        _decimal("shares"),
        _Column("locations", _TEXT),
        _Column("districts", _TEXT),
        _symbol("uses", PROPERTY_USES),
        _decimal("areas"),
        _symbol("statuses", TITLE_STATUSES),
        _Column("mortgaged", _BOOL),
        _Column("seized", _BOOL),
    ),
}
_LINEAGE_CODES = _codes(_LINEAGE)
_NO_RECORDS: dict[str, Any] = {"records": 0, "numbers": b"", "text": "", "dictionary": []}


def _transpose(rows: Sequence[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    """The columns of `rows`, `width` of them even when there are no rows."""
    return list(zip(*rows, strict=True)) if rows else [()] * width


def _to_wire(
    columns: tuple[_Column, ...], values: Iterable[_Items]
) -> tuple[list[Any], list[str], list[str]]:
    """The numbers to pack, the strings to join and the dictionary of a section, from its columns."""
    values = [column.encode(items) for column, items in zip(columns, values, strict=True)]
    coded = [items for column, items in zip(columns, values, strict=True) if column.kind == _CODED]
    # Sorted, so that the bytes do not depend on the order the values arrived in.
    dictionary = sorted(set().union(*coded) - {None})
    positions: dict[str | None, int] = {value: position for position, value in enumerate(dictionary)}
    positions[None] = -1
    numbers: list[Any] = []
    strings: list[str] = []
    for column, items in zip(columns, values, strict=True):
        if column.kind == _TEXT:
            strings.extend(items)
            numbers.extend(map(len, items))
        elif column.kind == _CODED:
            numbers.extend(map(positions.__getitem__, items))
        else:
            numbers.extend(items)
    return numbers, strings, dictionary


def _section_to_avro(section: Mapping[str, Entry[Any]], form: _Form) -> dict[str, Any]:
    if not section:
        return _NO_RECORDS
    # Sorted, so one profile always encodes to the same bytes whatever order its events came in.
    refs, data = _transpose([section[record_id] for record_id in sorted(section)], 2)
    event_ids, datasets, *lineage = _transpose(refs, len(RecordRef._fields))
    if set(datasets) != {form.dataset}:
        raise ValueError(f"the {form.dataset} section holds records of {', '.join(sorted(set(datasets)))}")
    live = [item for item in data if item is not None]
    numbers, strings, dictionary = _to_wire(
        (*_LINEAGE, *form.columns),
        (event_ids, *lineage, [item is not None for item in data], *_transpose(live, len(form.columns))),
    )
    try:
        packed = struct.pack(
            "<" + _format(_LINEAGE_CODES, len(refs)) + _format(form.codes, len(live)), *numbers
        )
    except struct.error as exc:
        raise ValueError(f"a {form.dataset} value does not fit its column: {exc}") from None
    text = _SEPARATOR.join(strings)
    return {"records": len(refs), "numbers": packed, "text": text, "dictionary": dictionary}


def ledger_to_avro(ledger: Ledger, since: tuple[Ledger, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The ledger as a record of `schemas/ledger.avsc`: each section in packed columns.

    `since` is an earlier ledger and its record (`ledger_to_avro`'s or as decoded): a section `ledger`
    still shares with it — the very same mapping, as `apply` leaves every section an event does not
    touch — is taken from that record instead of packed again.

    Raises `ProfileFormError` when a value cannot travel exactly: an amount of more than two decimal
    places, an instant without time zone or finer than a millisecond, a symbol the schema does not list.
    """
    sections: dict[str, Any] = {}
    try:
        for field, form in _FORMS.items():
            section = getattr(ledger, field)
            if since is not None and getattr(since[0], field) is section:
                sections[field] = since[1][field]
            else:
                sections[field] = _section_to_avro(section, form)
    except (ValueError, TypeError) as exc:
        raise ProfileFormError(f"ledger {ledger.subject_key} has no exact Avro form: {exc}") from exc
    return {"subject_key": ledger.subject_key, "version": ledger.version, **sections}


def _cut(text: str, layout: list[tuple[_Column, int]], numbers: _Items) -> list[str]:
    """The items joined in `text`, cut by the lengths its text columns pack: for when an item holds the
    separator itself."""
    sizes: list[int] = []
    position = 0
    for column, count in layout:
        if column.kind == _TEXT:
            sizes.extend(numbers[position : position + count])
        position += count
    if sum(sizes) + len(sizes) - 1 != len(text):
        raise ValueError(f"text columns of {sum(sizes)} characters in a text of {len(text)}")
    starts = accumulate((size + 1 for size in sizes), initial=0)
    return [text[start : start + size] for start, size in zip(starts, sizes, strict=False)]


def _from_wire(
    layout: list[tuple[_Column, int]], numbers: _Items, section: Mapping[str, Any]
) -> list[_Items]:
    """The values of each column of `layout` (a column and its number of items) from the wire."""
    texts = sum(count for column, count in layout if column.kind == _TEXT)
    strings = section["text"].split(_SEPARATOR) if texts else []
    if len(strings) != texts:
        strings = _cut(section["text"], layout, numbers)
    dictionary = [*section["dictionary"], None]  # so that position -1 is null
    values: list[_Items] = []
    position = start = 0
    for column, count in layout:
        items: _Items = numbers[position : position + count]
        position += count
        if column.kind == _TEXT:
            items = strings[start : start + count]
            start += count
        elif column.kind == _CODED:
            items = list(map(dictionary.__getitem__, items))
        values.append(column.decode(items))
    return values


def _rows(record: type[T], columns: Iterable[Iterable[Any]]) -> list[T]:
    """NamedTuples of type `record` from their columns.

    `tuple.__new__` builds them in C, as the generated `record.__new__` would after its Python call.
    """
    return list(map(tuple.__new__, repeat(record), zip(*columns, strict=True)))  # type: ignore[arg-type]


def _section_from_avro(section: Mapping[str, Any], form: _Form) -> dict[str, Entry[Any]]:
    records, packed = section["records"], section["numbers"]
    if not records:
        return {}
    lineage_format = "<" + _format(_LINEAGE_CODES, records)
    lineage = struct.unpack_from(lineage_format, packed)
    live = lineage[-records:]
    alive = sum(live)
    data_format = "<" + _format(form.codes, alive)
    if struct.calcsize(lineage_format) + struct.calcsize(data_format) != len(packed):
        raise ValueError(f"{len(packed)} bytes of numbers for {records} records, {alive} of them live")
    numbers = lineage + struct.unpack_from(data_format, packed, struct.calcsize(lineage_format))
    layout = [(column, records) for column in _LINEAGE] + [(column, alive) for column in form.columns]
    event_ids, record_ids, versions, topics, partitions, offsets, _, *columns = _from_wire(
        layout, numbers, section
    )
    refs = _rows(
        RecordRef, (event_ids, [form.dataset] * records, record_ids, versions, topics, partitions, offsets)
    )
    data: list[Any] = _rows(form.record, columns)
    if len(data) != records:  # tombstones: no data, and no item in the data columns
        found = iter(data)
        data = [next(found) if is_live else None for is_live in live]
    return dict(zip(record_ids, _rows(Entry, (refs, data)), strict=True))


def ledger_from_avro(record: Mapping[str, Any]) -> Ledger:
    """The ledger a `ledger_to_avro` record was made from (or a profile record written before the
    social section, which had the same fields); `ProfileFormError` if its columns disagree."""
    try:
        persons, payments, contributions, titles = (
            _section_from_avro(record[field], form) for field, form in _FORMS.items()
        )
    except (ValueError, IndexError, struct.error) as exc:
        raise ProfileFormError(f"ledger record {record['subject_key']} is inconsistent: {exc}") from exc
    return Ledger(record["subject_key"], record["version"], persons, payments, contributions, titles)


# The sections of records the profile keeps as packed columns, in schema order; the ledger has these,
# the payments and the contribution lines.
SECTIONS: tuple[str, ...] = ("persons", "titles")
LEDGER_SECTIONS: tuple[str, ...] = tuple(_FORMS)


def _flat(months: Iterable[MonthRange]) -> list[int]:
    return [month for span in months for month in span]


def social_to_avro(social: Social) -> dict[str, Any]:
    """The social section as the `social` field of `schemas/profile.avsc` (kinds with no months left out)."""
    employer = social.employer
    return {
        "received": {kind: _flat(months) for kind, months in social.received.items() if months},
        "arrears": {kind: _flat(months) for kind, months in social.arrears.items() if months},
        "employer": None
        if employer is None
        else {
            "month": employer.month,
            "employer_id": employer.employer_id,
            **{field: value for field, value in employer.ref._asdict().items() if field != "dataset"},
        },
        "read_to": _positions(social.read_to),
    }


def _ranges_of(
    kinds: Mapping[str, Sequence[int]], known: Sequence[str] = SOCIAL_KINDS
) -> dict[str, tuple[MonthRange, ...]]:
    unknown = set(kinds) - set(known)
    if unknown:
        raise ValueError(f"no insurance kind {', '.join(sorted(unknown))}")
    found: dict[str, tuple[MonthRange, ...]] = {}
    for kind in known:
        flat = kinds.get(kind, ())
        if len(flat) % 2:
            raise ValueError(f"the {kind} months are not (first, last) pairs: {len(flat)} numbers")
        numbers = [*map(int, flat)]
        firsts, lasts = numbers[::2], numbers[1::2]
        # Each range in order (first <= last) and apart from the one before (a gap of a month at least).
        if any(map(gt, firsts, lasts)) or any(map(le, firsts[1:], map(add, lasts, repeat(1)))):
            raise ValueError(f"the {kind} months are not ordered, separate ranges: {list(flat)}")
        found[kind] = tuple(map(MonthRange, firsts, lasts))
    return found


def social_from_avro(social: Mapping[str, Any]) -> Social:
    """The social section of a `social_to_avro` value (or of its JSON in a profile document).

    Raises ValueError, KeyError or TypeError when it is not one.
    """
    employer = social["employer"]
    return Social(
        _ranges_of(social["received"]),
        _ranges_of(social["arrears"]),
        None
        if employer is None
        else Employer(
            int(employer["month"]),
            employer["employer_id"],
            RecordRef(
                employer["event_id"],
                SOCIAL,
                employer["source_record_id"],
                int(employer["source_version"]),
                employer["topic"],
                int(employer["partition"]),
                int(employer["offset"]),
            ),
        ),
        _positions_of(social["read_to"]),
    )


def _positions(read_to: Iterable[Position]) -> list[dict[str, Any]]:
    return [position._asdict() for position in read_to]


def _positions_of(items: Iterable[Mapping[str, Any]]) -> tuple[Position, ...]:
    return tuple(Position(item["topic"], int(item["partition"]), int(item["offset"])) for item in items)


def tax_to_avro(tax: Tax) -> dict[str, Any]:
    """The tax section as the `tax` field of `schemas/profile.avsc`."""
    return {
        "paid": _flat(tax.paid),
        "totals": [
            number for total in tax.totals for number in (total.first, total.last, _hundredth(total.amount))
        ],
        "read_to": _positions(tax.read_to),
    }


def tax_from_avro(tax: Mapping[str, Any]) -> Tax:
    """The tax section of a `tax_to_avro` value (or of its JSON in a profile document).

    Raises ValueError, KeyError or TypeError when it is not one.
    """
    paid = _ranges_of({"tax": tax["paid"]}, ("tax",))["tax"]
    flat = tax["totals"]
    if len(flat) % 3:
        raise ValueError(f"the tax totals are not (first, last, hundredths) triples: {len(flat)} numbers")
    numbers = [*map(int, flat)]
    firsts, lasts = numbers[::3], numbers[1::3]
    amounts = map(_EXACT.multiply, numbers[2::3], repeat(_HUNDREDTH))
    totals = tuple(map(MonthTotal, firsts, lasts, amounts))
    # Each run in order (first <= last) and after the one before.
    if any(map(gt, firsts, lasts)) or any(map(le, firsts[1:], lasts)):
        raise ValueError(f"the tax totals are not ordered, separate runs: {tax['totals']}")
    return Tax(paid, totals, _positions_of(tax["read_to"]))


def tax_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The `tax` field of a profile record; for one written before the tax section, derived from the
    payments it carried instead."""
    payments = record.get("payments")
    if payments and payments["records"]:
        return tax_to_avro(tax_of(_section_from_avro(payments, _FORMS["payments"])))
    return dict(record["tax"])


def social_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The `social` field of a profile record; for one written before the social section, derived from
    the contribution lines it carried instead."""
    lines = record.get("contributions")
    if lines and lines["records"]:
        return social_to_avro(social_of(_section_from_avro(lines, _FORMS["contributions"])))
    return dict(record["social"])


def profile_record(ledger_record: Mapping[str, Any], tax: Tax, social: Social) -> dict[str, Any]:
    """The profile record of a ledger record (`ledger_to_avro`'s): its packed identity and property
    sections as they are, and the tax and social sections of its payments and lines."""
    return {
        "subject_key": ledger_record["subject_key"],
        "version": ledger_record["version"],
        **{name: ledger_record[name] for name in SECTIONS},
        "tax": tax_to_avro(tax),
        "social": social_to_avro(social),
        "payments": _NO_RECORDS,
        "contributions": _NO_RECORDS,
    }


def to_avro(profile: Profile) -> dict[str, Any]:
    """The profile as a record of `schemas/profile.avsc` (without the processor's `updated_at` and
    `latest_published_at`, which take their defaults unless added)."""
    try:
        sections = {name: _section_to_avro(getattr(profile, name), _FORMS[name]) for name in SECTIONS}
        tax = tax_to_avro(profile.tax)
    except (ValueError, TypeError) as exc:
        raise ProfileFormError(f"profile {profile.subject_key} has no exact Avro form: {exc}") from exc
    return {
        "subject_key": profile.subject_key,
        "version": profile.version,
        **sections,
        "tax": tax,
        "social": social_to_avro(profile.social),
        "payments": _NO_RECORDS,
        "contributions": _NO_RECORDS,
    }


def from_avro(record: Mapping[str, Any]) -> Profile:
    """The profile of a profile record; `ProfileFormError` if it is inconsistent."""
    try:
        persons, titles = (_section_from_avro(record[name], _FORMS[name]) for name in SECTIONS)
        tax = tax_from_avro(tax_record(record))
        social = social_from_avro(social_record(record))
    except (ValueError, IndexError, KeyError, TypeError, struct.error, ArithmeticError) as exc:
        raise ProfileFormError(f"profile record {record['subject_key']} is inconsistent: {exc}") from exc
    return Profile(record["subject_key"], record["version"], persons, tax, social, titles)


# The shape of the profile documents `section_columns` makes, named in each document's "form".
DOCUMENT_FORM = "columns"
# A section's lineage columns in a document: RecordRef's fields but the dataset, which is the section's.
REF_COLUMNS: tuple[str, ...] = tuple(field for field in RecordRef._fields if field != "dataset")


def section_columns(name: str, section: Mapping[str, Any]) -> dict[str, Any]:
    """Section `name` of a profile record as the columns of a profile document, straight from its packed
    columns: a list per lineage field (`REF_COLUMNS`) and "live" over every record, and under "data" a
    list per field of the record type over the live records. Values are as `from_avro` gives them.
    For the sink's jsonb, where a dict per record cost most of the time; `section_from_columns` reads it.

    Raises ValueError, IndexError or struct.error when the columns do not fit together.
    """
    form = _FORMS[name]
    records, packed = section["records"], section["numbers"]
    lineage_format = "<" + _format(_LINEAGE_CODES, records)
    lineage_size = struct.calcsize(lineage_format)
    lineage = struct.unpack_from(lineage_format, packed)
    alive = sum(lineage[-records:])
    data_format = "<" + _format(form.codes, alive)
    if lineage_size + struct.calcsize(data_format) != len(packed):
        raise ValueError(f"{len(packed)} bytes of numbers for {records} records, {alive} of them live")
    numbers = lineage + struct.unpack_from(data_format, packed, lineage_size)
    layout = [(column, records) for column in _LINEAGE] + [(column, alive) for column in form.columns]
    values = _from_wire(layout, numbers, section)
    refs = len(REF_COLUMNS)
    return {
        **dict(zip(REF_COLUMNS, values[:refs], strict=True)),
        "live": values[refs],
        "data": dict(zip(form.record._fields, values[refs + 1 :], strict=True)),
    }


def section_from_columns(name: str, columns: Mapping[str, Any]) -> dict[str, Entry[Any]]:
    """The section `name` of a profile from its document columns (`section_columns`, through JSON).

    Raises KeyError, TypeError, ValueError or ArithmeticError when the columns do not fit together.
    """
    form = _FORMS[name]
    live = columns["live"]
    record_ids = columns["source_record_id"]
    count = len(record_ids)
    lineage = [columns[field] for field in REF_COLUMNS]
    if any(len(items) != count for items in (*lineage, live)):
        raise ValueError(f"the lineage columns of {name} differ in length")
    refs = _rows(RecordRef, (lineage[0], [form.dataset] * count, *lineage[1:]))
    fields = columns["data"]
    data: list[Any] = _rows(
        form.record,
        (
            fields[field] if column.parse is _itself else [*map(column.parse, fields[field])]
            for column, field in zip(form.columns, form.record._fields, strict=True)
        ),
    )
    if len(data) != sum(map(bool, live)):
        raise ValueError(f"{len(data)} live records of {name} for {sum(map(bool, live))} live flags")
    if len(data) != count:  # tombstones: no data, and no item in the data columns
        found = iter(data)
        data = [next(found) if is_live else None for is_live in live]
    return dict(zip(record_ids, _rows(Entry, (refs, data)), strict=True))
