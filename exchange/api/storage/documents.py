"""The profile as the sink stores it in jsonb, read back into the exact `Profile`.

The sink writes each profile version as a document (consumers/sink/profiles.py `profile_document`)
of form "columns": per section of records a list per lineage field and "live" flags over its records,
and its live records' fields as lists under "data" (`exchange.profile_avro.section_columns`); the
tax and social sections as months (`tax_from_avro`, `social_from_avro`). Documents written before
those sections hold the payments and contribution lines as sections of records, and the sections are
derived from them (`tax_of`, `social_of`).
Documents older still hold per section its live records as `{"ref": RecordRef fields, "data":
record fields}`, then every revoked record's `ref` under "revoked"; all are read. Amounts are decimal
strings, dates and instants ISO 8601. Every value survives the round trip exactly (two-decimal
strings keep their scale), so this adapter rebuilds the very profile the processor folded, for
`exchange.facts.compute`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from exchange.profile import (
    IDENTITY,
    PROPERTY,
    SOCIAL,
    TAX,
    Contribution,
    Entry,
    Payment,
    Person,
    Profile,
    ProfileFormError,
    RecordRef,
    Title,
    from_avro,
    social_of,
    tax_of,
)
from exchange.profile_avro import (
    DOCUMENT_FORM,
    section_from_columns,
    social_from_avro,
    tax_from_avro,
)

Convert = Callable[[Any], Any]
# Profile field -> (its dataset, its record type, converters of the fields JSON does not keep as is).
_SECTIONS: Mapping[str, tuple[str, type[Any], Mapping[str, Convert]]] = {
    "persons": (IDENTITY, Person, {"birth_date": dt.date.fromisoformat}),
    "payments": (
        TAX,
        Payment,
        {
            "period_start": dt.date.fromisoformat,
            "period_end": dt.date.fromisoformat,
            "income": Decimal,
            "tax_paid": Decimal,
            "credited_on": dt.date.fromisoformat,
        },
    ),
    "contributions": (
        SOCIAL,
        Contribution,
        {"month": dt.date.fromisoformat, "occurred_at": dt.datetime.fromisoformat},
    ),
    "titles": (PROPERTY, Title, {"share": Decimal, "area": Decimal}),
}


def _data(kind: type[Any], converters: Mapping[str, Convert], data: Mapping[str, Any]) -> Any:
    return kind(*(converters.get(name, _same)(data[name]) for name in kind._fields))


def _same(value: Any) -> Any:
    return value


def profile_from_document(document: Mapping[str, Any]) -> Profile:
    """The `Profile` of a stored profile document; `ProfileFormError` when it is not one.

    A document of neither form is taken to be the profile's Avro record itself (`from_avro`).
    """
    if document.get("form") == DOCUMENT_FORM:
        return _from_columns(document)
    if "revoked" not in document:
        return from_avro(document)
    try:
        sections: dict[str, dict[str, Entry[Any]]] = {}
        field_of = {dataset: field for field, (dataset, _, _) in _SECTIONS.items()}
        for field, (_, kind, converters) in _SECTIONS.items():
            section: dict[str, Entry[Any]] = {}
            for item in document[field]:
                ref = RecordRef(**item["ref"])
                section[ref.source_record_id] = Entry(ref, _data(kind, converters, item["data"]))
            sections[field] = section
        for raw in document["revoked"]:
            ref = RecordRef(**raw)
            sections[field_of[ref.dataset]][ref.source_record_id] = Entry(ref, None)
        return Profile(
            document["subject_key"],
            int(document["version"]),
            sections["persons"],
            tax_of(sections["payments"]),
            social_of(sections["contributions"]),
            sections["titles"],
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ProfileFormError(f"a stored profile document does not fit the profile: {exc!r}") from exc


def _from_columns(document: Mapping[str, Any]) -> Profile:
    try:
        if "tax" in document:
            tax = tax_from_avro(document["tax"])
        else:  # written before the tax section: the payments themselves
            tax = tax_of(section_from_columns("payments", document["payments"]))
        if "social" in document:
            social = social_from_avro(document["social"])
        else:  # written before the social section: the contribution lines themselves
            social = social_of(section_from_columns("contributions", document["contributions"]))
        return Profile(
            document["subject_key"],
            int(document["version"]),
            section_from_columns("persons", document["persons"]),
            tax,
            social,
            section_from_columns("titles", document["titles"]),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ProfileFormError(f"a stored profile document does not fit the profile: {exc!r}") from exc
