"""A profile stored by the sink as a jsonb document reads back into exactly the profile folded."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from consumers.sink.documents import to_json
from consumers.sink.profiles import profile_document
from exchange.api.storage.documents import profile_from_document
from exchange.facts import compute
from exchange.profile import (
    Contribution,
    Entry,
    Ledger,
    Payment,
    Person,
    Profile,
    ProfileFormError,
    RecordRef,
    Title,
    ledger_to_avro,
    profile_of,
    to_avro,
)
from exchange.profile_avro import LEDGER_SECTIONS, section_columns

AT = dt.datetime(2026, 3, 4, 5, 6, 7, 8000, tzinfo=dt.UTC)


def ref(dataset: str, record_id: str, version: int = 1, offset: int = 0) -> RecordRef:
    return RecordRef(f"e-{record_id}-{version}", dataset, record_id, version, f"{dataset}.v1", 1, offset)


def sample_ledger() -> Ledger:
    person = Person(
        "44010220011028323X", "何䶮", "male", "01", dt.date(2001, 10, 28), "广州市某路1号", "440106", "normal"
    )
    paid = Payment(
        "wages",
        dt.date(2026, 1, 1),
        dt.date(2026, 1, 31),
        Decimal("12345.60"),
        Decimal("-0.01"),
        None,
        dt.date(2026, 2, 15),
    )
    agent = Payment(
        "wages",
        dt.date(2026, 2, 1),
        dt.date(2026, 2, 28),
        Decimal("100.00"),
        Decimal("3.00"),
        "9144011470K239T3E2",
        dt.date(2026, 3, 15),
    )
    line = Contribution(
        "enterprise_pension", dt.date(2026, 1, 1), "9144011470K239T3E2", "广州餐饮有限公司", "paid", AT
    )
    title = Title(
        "粤(2020)广州市不动产权第0012345号",
        "4401060427244871",
        Decimal("50.00"),
        "天河区",
        "440106",
        "residential",
        Decimal("89.07"),
        "current",
        False,
        True,
    )
    return Ledger(
        "k" * 64,
        7,
        {person.citizen_id: Entry(ref("identity.person", person.citizen_id), person)},
        {
            "V-1": Entry(ref("tax.payment", "V-1"), paid),
            "V-2": Entry(ref("tax.payment", "V-2"), agent),
            "V-3": Entry(ref("tax.payment", "V-3", 2), None),
        },
        {"L-1": Entry(ref("social.contribution", "L-1", offset=9), line)},
        {title.certificate_no: Entry(ref("property.title", title.certificate_no, 3), title)},
    )


def sample() -> Profile:
    return profile_of(sample_ledger())


def test_the_sinks_document_reads_back_into_the_same_profile() -> None:
    profile = sample()
    record = {**to_avro(profile), "updated_at": AT, "latest_published_at": AT}
    stored = json.loads(to_json(profile_document(record)))
    assert profile_from_document(stored) == profile
    day = dt.date(2026, 11, 15)
    assert compute(profile_from_document(stored), day) == compute(profile, day)


def test_a_document_that_is_no_profile_is_a_profile_form_error() -> None:
    with pytest.raises(ProfileFormError):
        profile_from_document({"subject_key": "k", "version": 1, "revoked": [], "persons": [{"ref": {}}]})


def _rows_form(profile: Ledger) -> dict[str, Any]:
    """A document as the sink wrote them before form "columns": a dict per live record, then "revoked"."""
    document: dict[str, Any] = {"subject_key": profile.subject_key, "version": profile.version}
    revoked: list[dict[str, Any]] = []
    for name in ("persons", "payments", "contributions", "titles"):
        section = getattr(profile, name)
        document[name] = []
        for record_id in sorted(section):
            ref, data = section[record_id]
            if data is None:
                revoked.append(ref._asdict())
            else:
                document[name].append({"ref": ref._asdict(), "data": data._asdict()})
    document["revoked"] = revoked
    return document


def test_documents_stored_before_the_columns_form_still_read_back() -> None:
    stored = json.loads(to_json(_rows_form(sample_ledger())))
    assert "form" not in stored and stored["payments"][0]["ref"]["source_record_id"] == "V-1"
    assert profile_from_document(stored) == sample()


def test_documents_stored_before_the_social_section_read_back_with_it_derived() -> None:
    # What the sink wrote then: the ledger's four sections of records as columns, no "social".
    ledger = sample_ledger()
    record = ledger_to_avro(ledger)
    document = {
        "form": "columns",
        "subject_key": ledger.subject_key,
        "version": ledger.version,
        **{name: section_columns(name, record[name]) for name in LEDGER_SECTIONS},
    }
    stored = json.loads(to_json(document))
    assert "social" not in stored
    profile = profile_from_document(stored)
    assert profile == sample()
    assert profile.social.employer is not None and profile.social.employer.employer_id == "9144011470K239T3E2"


def test_columns_that_do_not_fit_together_are_a_profile_form_error() -> None:
    record = {**to_avro(sample()), "updated_at": AT, "latest_published_at": AT}
    stored = json.loads(to_json(profile_document(record)))
    stored["titles"]["live"].pop()
    with pytest.raises(ProfileFormError, match="differ in length"):
        profile_from_document(stored)
    stored = json.loads(to_json(profile_document(record)))
    stored["titles"]["data"]["area"] = ["not an area"]
    with pytest.raises(ProfileFormError):
        profile_from_document(stored)
