"""The fold into the ledger: pure, idempotent, order-free, version-safe; the ledger's Avro form; the
profile derived from it, its social section as month ranges, and the profile's Avro form."""

from __future__ import annotations

import copy
import datetime as dt
import io
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from canonical import contribution, envelope, event, payment, person, title
from canonical import fold_ledger as fold
from fastavro import schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange import schemas
from exchange.profile import (
    CONTRIBUTION_STATUSES,
    DATASETS,
    IDENTITY,
    INCOME_ITEMS,
    INSURANCE_TYPES,
    KIND_OF_INSURANCE,
    PERSON_STATUSES,
    PROPERTY,
    PROPERTY_USES,
    SEXES,
    SOCIAL,
    SOCIAL_KINDS,
    TAX,
    TITLE_STATUSES,
    Contribution,
    Entry,
    Event,
    Ledger,
    MonthRange,
    MonthTotal,
    Payment,
    Person,
    Profile,
    ProfileFormError,
    RecordRef,
    Title,
    UnknownDatasetError,
    apply,
    empty_ledger,
    from_avro,
    ledger_from_avro,
    ledger_to_avro,
    month_index,
    profile_of,
    social_of,
    social_ranges,
    tax_of,
    to_avro,
)
from exchange.profile_avro import _FORMS, _LINEAGE, profile_record, social_to_avro
from exchange.serialization import MAGIC, AvroCodec

AT = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


def sections(profile: Ledger) -> tuple[Any, ...]:
    """What a profile holds, without its change counter (the one arrival-order dependent field)."""
    return (profile.subject_key, profile.persons, profile.payments, profile.contributions, profile.titles)


# --- hypothesis strategies: valid canonical records of every dataset ------------------------------

_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31))
_money = st.decimals(min_value=-(10**6), max_value=10**6, places=2)
_text = st.text(min_size=0, max_size=6)
# Avro timestamp-millis: what a decoded record holds is UTC with whole milliseconds.
_instants = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 12, 31), timezones=st.just(dt.UTC)
).map(lambda at: at.replace(microsecond=at.microsecond // 1000 * 1000))


def _envelope(dataset: str) -> st.SearchStrategy[dict[str, Any]]:
    # A small id and version space, so that versions of one record collide and supersede each other.
    return st.builds(
        envelope,
        st.just(dataset),
        st.sampled_from(["r1", "r2", "r3"]),
        st.integers(min_value=1, max_value=4),
        st.sampled_from(["upsert", "upsert", "revoke"]),
        _instants,
    )


_identity_records = st.fixed_dictionaries(
    {
        "envelope": _envelope(IDENTITY),
        "citizen_id": st.just("440102195607099506"),
        "name": _text,
        "sex": st.sampled_from(["male", "female", "unknown", "unstated"]),
        "ethnicity": st.sampled_from(["01", "56"]),
        "birth_date": _dates,
        "address": _text,
        "district": st.sampled_from(["440103", "440604"]),
        "household_type": st.sampled_from(["family", "collective"]),
        "status": st.sampled_from(["normal", "deceased", "moved_out"]),
    }
)
_tax_records = st.fixed_dictionaries(
    {
        "envelope": _envelope(TAX),
        "citizen_id": st.just("440102195607099506"),
        "name": _text,
        "income_item": st.sampled_from(["wages", "business", "incidental"]),
        "period_start": _dates,
        "period_end": _dates,
        "income": st.decimals(min_value=0, max_value=10**6, places=2),
        "tax_paid": _money,
        "withholding_agent": st.none() | st.just("9144011470K239T3E2"),
        "credited_on": _dates,
        "tax_office": st.just("14401060000"),
    }
)
_social_records = st.fixed_dictionaries(
    {
        "envelope": _envelope(SOCIAL),
        "citizen_id": st.just("440102195607099506"),
        "name": _text,
        "insurance_type": st.sampled_from(
            ["enterprise_pension", "institution_pension", "unemployment", "medical", "injury", "maternity"]
        ),
        "month": _dates.map(lambda day: day.replace(day=1)),
        "employer_id": st.sampled_from(["9144011470K239T3E2", "91440117HDRJHTPQQ3"]),
        "employer_name": _text,
        "base": st.decimals(min_value=0, max_value=10**5, places=2),
        "employer_amount": st.decimals(min_value=0, max_value=10**4, places=2),
        "personal_amount": st.decimals(min_value=0, max_value=10**4, places=2),
        "status": st.sampled_from(["paid", "arrears"]),
    }
)
_property_records = st.fixed_dictionaries(
    {
        "envelope": _envelope(PROPERTY),
        "certificate_no": _text,
        "unit_no": _text,
        "owner_id": st.just("440102195607099506"),
        "share": st.decimals(min_value=Decimal("0.01"), max_value=100, places=2),
        "co_owners": st.just([]),
        "location": _text,
        "district": st.sampled_from(["440106", "440604"]),
        "use": st.sampled_from(["residential", "commercial", "office", "industrial", "other"]),
        "area": st.decimals(min_value=Decimal("0.01"), max_value=10**6, places=2),
        "registered_at": st.just(dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
        "status": st.sampled_from(["current", "historic", "cancelled"]),
        "mortgaged": st.booleans(),
        "seized": st.booleans(),
    }
)
_records = st.one_of(_identity_records, _tax_records, _social_records, _property_records)


@st.composite
def _histories(draw: st.DrawFn) -> list[Event]:
    """A subject's events, each at its own log position (as Kafka would deliver them)."""
    records = draw(st.lists(_records, min_size=1, max_size=25))
    return [event(record, offset=offset) for offset, record in enumerate(records)]


def _fold_events(events: list[Event]) -> Ledger:
    profile = empty_ledger("subject")
    for item in events:
        profile = apply(profile, item)
    return profile


# --- the fold --------------------------------------------------------------------------------------


@settings(max_examples=200)
@given(history=_histories(), data=st.data())
def test_any_permutation_and_duplication_folds_to_the_same_profile(
    history: list[Event], data: st.DataObject
) -> None:
    duplicated = history + data.draw(st.lists(st.sampled_from(history), max_size=10))
    shuffled = data.draw(st.permutations(duplicated))
    assert sections(_fold_events(shuffled)) == sections(_fold_events(history))


@settings(max_examples=200)
@given(history=_histories())
def test_the_highest_version_wins_and_revokes_leave_tombstones(history: list[Event]) -> None:
    profile = _fold_events(history)
    by_section = {
        IDENTITY: profile.persons,
        TAX: profile.payments,
        SOCIAL: profile.contributions,
        PROPERTY: profile.titles,
    }
    for dataset in DATASETS:
        versions: dict[str, list[tuple[int, bool]]] = {}
        for item in history:
            if item.dataset == dataset:
                env = item.record["envelope"]
                versions.setdefault(env["source_record_id"], []).append(
                    (env["source_version"], env["op"] == "revoke")
                )
        held = by_section[dataset]
        assert set(held) == set(versions)
        for record_id, candidates in versions.items():
            version, revoked = max(candidates)
            assert held[record_id].ref.source_version == version
            assert (held[record_id].data is None) == revoked


@settings(max_examples=100)
@given(history=_histories())
def test_reapplying_any_event_changes_nothing(history: list[Event]) -> None:
    profile = _fold_events(history)
    for item in history:
        again = apply(profile, item)
        assert again is profile
        assert again == profile


@settings(max_examples=100)
@given(history=_histories())
def test_apply_never_mutates_its_input(history: list[Event]) -> None:
    profile = _fold_events(history[:-1])
    before = copy.deepcopy(profile)
    apply(profile, history[-1])
    assert profile == before


def test_version_counts_changes_only() -> None:
    first = event(payment("V1", "2026-01", version=2))
    profile = apply(empty_ledger("subject"), first)
    assert profile.version == 1
    assert apply(profile, first).version == 1
    assert apply(profile, event(payment("V1", "2026-01", version=1))).version == 1
    assert apply(profile, event(payment("V1", "2026-01", version=3))).version == 2


def test_a_lower_version_never_overwrites_a_higher_one() -> None:
    profile = fold([person(version=2, district="440117"), person(version=1, district="440111")])
    (entry,) = profile.persons.values()
    assert entry.ref.source_version == 2
    assert entry.data is not None
    assert entry.data.district == "440117"


def test_a_revoke_removes_the_record_and_keeps_its_version() -> None:
    profile = fold([contribution("JF1", "2026-01"), contribution("JF1", "2026-01", version=2, op="revoke")])
    assert profile.contributions["JF1"].data is None
    assert profile.contributions["JF1"].ref.source_version == 2
    assert social_ranges(profile_of(profile))["pension"] == []


def test_a_tombstone_blocks_a_late_lower_version() -> None:
    revoked = fold([payment("V1", "2026-01", version=3, op="revoke")])
    assert apply(revoked, event(payment("V1", "2026-01", version=2))) is revoked
    assert revoked.payments["V1"].data is None


def test_a_higher_version_after_a_revoke_brings_the_record_back() -> None:
    profile = fold([title("T1", version=2, op="revoke"), title("T1", version=3)])
    assert profile.titles["T1"].data is not None


def test_at_equal_version_a_revoke_beats_an_upsert_in_either_order() -> None:
    upsert, revoke = payment("V1", "2026-01"), payment("V1", "2026-01", op="revoke")
    assert fold([upsert, revoke]).payments["V1"].data is None
    assert fold([revoke, upsert]).payments["V1"].data is None


def test_a_resent_equal_version_keeps_the_first_position() -> None:
    record = payment("V1", "2026-01")
    profile = apply(empty_ledger("subject"), event(record, offset=5))
    assert apply(profile, event(record, offset=9)) is profile
    assert apply(profile, event(record, offset=2)).payments["V1"].ref.offset == 2


def test_only_the_touched_section_is_copied() -> None:
    profile = fold([person(), title("T1")])
    changed = apply(profile, event(payment("V1", "2026-01")))
    assert changed.persons is profile.persons
    assert changed.titles is profile.titles
    assert changed.contributions is profile.contributions
    assert changed.payments is not profile.payments


def test_lineage_keeps_the_event_and_its_position() -> None:
    record = payment("V1", "2026-01", version=4)
    profile = apply(empty_ledger("subject"), Event(TAX, record, "tax.payment.v1", 3, 42))
    ref = profile.payments["V1"].ref
    assert ref == (record["envelope"]["event_id"], TAX, "V1", 4, "tax.payment.v1", 3, 42)


def test_an_unknown_dataset_is_refused() -> None:
    with pytest.raises(UnknownDatasetError, match=r"consent\.given"):
        apply(empty_ledger("subject"), Event("consent.given", person(), "exchange.consent.v1", 0, 1))


# --- the social view -------------------------------------------------------------------------------


def test_social_ranges_merge_both_pension_schemes_and_skip_arrears_and_revokes() -> None:
    profile = fold(
        [
            contribution("A", "2024-01", "enterprise_pension"),
            contribution("B", "2024-02", "institution_pension"),
            contribution("C", "2024-02", "enterprise_pension"),
            contribution("D", "2024-03", "institution_pension"),
            contribution("E", "2024-05", "enterprise_pension"),
            contribution("F", "2024-06", "enterprise_pension", status="arrears"),
            contribution("G", "2024-12", "medical"),
            contribution("H", "2025-01", "medical"),
            contribution("I", "2025-02", "medical", version=2, op="revoke"),
        ]
    )
    assert social_ranges(profile_of(profile)) == {
        "pension": [["2024-01", "2024-03"], ["2024-05", "2024-05"]],
        "medical": [["2024-12", "2025-01"]],
        "unemployment": [],
        "injury": [],
        "maternity": [],
    }


# --- the Avro form ---------------------------------------------------------------------------------


@settings(max_examples=100)
@given(history=_histories())
def test_avro_round_trip_is_exact(history: list[Event]) -> None:
    profile = _fold_events(history)
    codec = AvroCodec()
    name, decoded = codec.decode(codec.encode("ledger", ledger_to_avro(profile)))
    assert name == "ledger"
    assert ledger_from_avro(decoded) == profile
    assert ledger_from_avro(ledger_to_avro(profile)) == profile


def test_the_avro_bytes_do_not_depend_on_arrival_order() -> None:
    records = [payment("V2", "2026-02"), payment("V1", "2026-01"), person(), title("T1")]
    events = [event(record, offset=offset) for offset, record in enumerate(records)]
    codec = AvroCodec()
    forward = codec.encode("ledger", ledger_to_avro(_fold_events(events)))
    backward = codec.encode("ledger", ledger_to_avro(_fold_events(events[::-1])))
    assert forward == backward


# --- the Avro form of any profile, built directly --------------------------------------------------

# Any text but lone surrogates (which UTF-8 cannot carry), U+0000 included: it is the column separator.
_any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_some_text = st.sampled_from(["", "a", "a\x00b", "\x00", "广州市"]) | _any_text
_any_dates = st.dates()
# Whole milliseconds, in UTC and elsewhere: the form keeps the instant, in UTC.
_any_instants = st.datetimes(
    min_value=dt.datetime(1900, 1, 1),
    max_value=dt.datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [dt.UTC, dt.timezone(dt.timedelta(hours=8)), dt.timezone(-dt.timedelta(hours=5))]
    ),
).map(lambda at: at.replace(microsecond=at.microsecond // 1000 * 1000))
_amounts = st.decimals(min_value=-(10**15), max_value=10**15, places=2)
_employers = st.sampled_from(
    [("9144011470K239T3E2", "广州餐饮有限公司"), ("91440117HDRJHTPQQ3", "物流"), ("X", "")]
)

_DATA: dict[str, st.SearchStrategy[Any]] = {
    IDENTITY: st.builds(
        Person,
        _some_text,
        _some_text,
        st.sampled_from(SEXES),
        _some_text,
        _any_dates,
        _some_text,
        _some_text,
        st.sampled_from(PERSON_STATUSES),
    ),
    TAX: st.builds(
        Payment,
        st.sampled_from(INCOME_ITEMS),
        _any_dates,
        _any_dates,
        _amounts,
        _amounts,  # negative: a refund
        st.none() | st.sampled_from(["9144011470K239T3E2", "91440117HDRJHTPQQ3"]) | _some_text,
        _any_dates,
    ),
    SOCIAL: st.builds(
        lambda kind, month, employer, status, at: Contribution(kind, month, *employer, status, at),
        st.sampled_from(INSURANCE_TYPES),
        _any_dates,
        _employers | st.tuples(_some_text, _some_text),
        st.sampled_from(CONTRIBUTION_STATUSES),
        _any_instants,
    ),
    PROPERTY: st.builds(
        Title,
        _some_text,
        _some_text,
        st.decimals(min_value=0, max_value=100, places=2),
        _some_text,
        _some_text,
        st.sampled_from(PROPERTY_USES),
        st.decimals(min_value=0, max_value=10**9, places=2),
        st.sampled_from(TITLE_STATUSES),
        st.booleans(),
        st.booleans(),
    ),
}


def _entries(dataset: str) -> st.SearchStrategy[dict[str, Entry[Any]]]:
    ref = st.builds(
        RecordRef,
        _some_text,
        st.just(dataset),
        _some_text,
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.sampled_from([f"{dataset}.v1", f"dev.{dataset}.v1"]) | _some_text,
        st.integers(min_value=0, max_value=2**31 - 1),
        st.integers(min_value=0, max_value=2**63 - 1),
    )
    # About one record in four revoked: a tombstone keeps its lineage and has no data.
    entry = st.builds(Entry, ref, st.one_of(st.none(), _DATA[dataset], _DATA[dataset], _DATA[dataset]))
    entries = st.lists(entry, max_size=12, unique_by=lambda item: item.ref.source_record_id)
    return entries.map(lambda items: {item.ref.source_record_id: item for item in items})


_profiles = st.builds(
    Ledger,
    _any_text,
    st.integers(min_value=0, max_value=2**63 - 1),
    _entries(IDENTITY),
    _entries(TAX),
    _entries(SOCIAL),
    _entries(PROPERTY),
)


def _round_trip(profile: Ledger) -> Ledger:
    codec = AvroCodec()
    name, record = codec.decode(codec.encode("ledger", ledger_to_avro(profile)))
    assert name == "ledger"
    return ledger_from_avro(record)


def _amounts_of(profile: Ledger) -> list[str]:
    """Every Decimal of a profile as text, so that a changed scale shows ("1.00" is not "1")."""
    payments = [(data.income, data.tax_paid) for data in _live_data(profile.payments)]
    titles = [(data.share, data.area) for data in _live_data(profile.titles)]
    return [str(amount) for pair in payments + titles for amount in pair]


def _live_data(section: Any) -> list[Any]:
    return [section[key].data for key in sorted(section) if section[key].data is not None]


@settings(max_examples=300)
@given(profile=_profiles)
def test_any_profile_survives_its_avro_form_exactly(profile: Ledger) -> None:
    back = _round_trip(profile)
    assert back == profile
    assert _amounts_of(back) == _amounts_of(profile)
    assert ledger_from_avro(ledger_to_avro(profile)) == profile


@settings(max_examples=100)
@given(profile=_profiles)
def test_the_avro_bytes_do_not_depend_on_the_order_of_the_sections(profile: Ledger) -> None:
    reversed_profile = Ledger(
        profile.subject_key,
        profile.version,
        *(dict(reversed(section.items())) for section in _sections_of(profile)),
    )
    codec = AvroCodec()
    assert codec.encode("ledger", ledger_to_avro(reversed_profile)) == codec.encode(
        "ledger", ledger_to_avro(profile)
    )


def _sections_of(profile: Ledger) -> tuple[Any, ...]:
    return (profile.persons, profile.payments, profile.contributions, profile.titles)


def test_instants_come_back_in_utc_as_the_same_instant() -> None:
    at = dt.datetime(2024, 5, 1, 9, 30, 0, 123_000, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    profile = fold([contribution("JF1", "2024-05", at=at)])
    (entry,) = _round_trip(profile).contributions.values()
    assert entry.data is not None
    assert entry.data.occurred_at == at
    assert entry.data.occurred_at.tzinfo is dt.UTC


def test_text_holding_the_column_separator_comes_back_whole() -> None:
    record = person()
    profile = fold([{**record, "name": "刘\x00秀英", "address": "\x00"}])
    (entry,) = _round_trip(profile).persons.values()
    assert entry.data is not None
    assert (entry.data.name, entry.data.address) == ("刘\x00秀英", "\x00")


def test_a_section_of_tombstones_only_keeps_its_versions() -> None:
    profile = fold(
        [payment("V1", "2026-01", version=3, op="revoke"), payment("V2", "2026-02", version=2, op="revoke")]
    )
    back = _round_trip(profile)
    assert back == profile
    assert {key: entry.ref.source_version for key, entry in back.payments.items()} == {"V1": 3, "V2": 2}


def _with_contribution(**changes: Any) -> Ledger:
    profile = fold([contribution("JF1", "2024-05")])
    (entry,) = profile.contributions.values()
    assert entry.data is not None
    changed = Entry(entry.ref, entry.data._replace(**changes))
    return Ledger(profile.subject_key, 1, {}, {}, {"JF1": changed}, {})


def _with_payment(**changes: Any) -> Ledger:
    profile = fold([payment("V1", "2026-01")])
    entry = profile.payments["V1"]
    assert entry.data is not None
    return Ledger(
        profile.subject_key, 1, {}, {"V1": Entry(entry.ref, entry.data._replace(**changes))}, {}, {}
    )


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        (_with_payment(tax_paid=Decimal("1.005")), "more than two decimal places"),
        (_with_payment(income=Decimal("NaN")), "is not an amount"),
        (_with_payment(income=Decimal(2**70)), "does not fit"),
        (_with_contribution(occurred_at=dt.datetime(2024, 5, 1)), "no time zone"),
        (
            _with_contribution(occurred_at=dt.datetime(2024, 5, 1, 0, 0, 0, 1, dt.UTC)),
            "fraction of a millisecond",
        ),
        (_with_contribution(status="unpaid"), "'unpaid' is not one of paid, arrears"),
    ],
)
def test_a_value_the_form_cannot_keep_exactly_is_refused(profile: Ledger, reason: str) -> None:
    with pytest.raises(ProfileFormError, match=reason):
        ledger_to_avro(profile)


def test_a_record_filed_under_another_dataset_is_refused() -> None:
    profile = fold([payment("V1", "2026-01")])
    misfiled = Ledger(profile.subject_key, 1, {}, {}, dict(profile.payments), {})
    with pytest.raises(ProfileFormError, match=r"social\.contribution section holds records of tax\.payment"):
        ledger_to_avro(misfiled)


def test_a_record_whose_columns_disagree_is_refused() -> None:
    record = ledger_to_avro(fold([contribution("JF1", "2024-05"), contribution("JF2", "2024-06")]))
    record["contributions"]["records"] = 3
    with pytest.raises(ProfileFormError, match="bytes of numbers for 3 records"):
        ledger_from_avro(record)


def _enum_symbols(schema: Any) -> dict[str, list[str]]:
    """Every enum of a canonical schema, by name."""
    if isinstance(schema, dict):
        found = {schema["name"]: schema["symbols"]} if schema.get("type") == "enum" else {}
        for value in schema.values():
            found |= _enum_symbols(value)
        return found
    if isinstance(schema, list):
        return {name: symbols for item in schema for name, symbols in _enum_symbols(item).items()}
    return {}


@pytest.mark.parametrize(
    ("dataset", "enum", "symbols"),
    [
        (IDENTITY, "Sex", SEXES),
        (IDENTITY, "PersonStatus", PERSON_STATUSES),
        (TAX, "IncomeItem", INCOME_ITEMS),
        (SOCIAL, "InsuranceType", INSURANCE_TYPES),
        (SOCIAL, "ContributionStatus", CONTRIBUTION_STATUSES),
        (PROPERTY, "PropertyUse", PROPERTY_USES),
        (PROPERTY, "TitleStatus", TITLE_STATUSES),
    ],
)
def test_symbol_columns_hold_the_canonical_enums_and_the_schema_lists_them(
    dataset: str, enum: str, symbols: tuple[str, ...]
) -> None:
    # A symbol a department adds must be appended here too, or profiles with it could not be stored.
    assert tuple(_enum_symbols(schemas.load(dataset))[enum]) == symbols
    docs = {field["name"]: field.get("doc", "") for field in schemas.load("ledger")["fields"]}
    assert f"({', '.join(symbols)})" in " ".join(docs.values())


def test_the_schema_lists_each_section_s_columns_in_their_order() -> None:
    docs = {field["name"]: field["doc"] for field in schemas.load("ledger")["fields"] if "doc" in field}
    for field, form in _FORMS.items():
        names = [column.name for column in (*_LINEAGE, *form.columns)]
        positions = [docs[field].find(f" {name} ") for name in names]
        assert -1 not in positions, f"{field}: {names} not all in its doc"
        assert positions == sorted(positions), f"{field}: the doc lists the columns out of order"


# --- the profile: the social section as month ranges, and the profile's Avro form ------------------


def _brute_social(ledger: Ledger) -> tuple[dict[str, set[int]], dict[str, set[int]], Any]:
    """Per kind the received and the owed-only months, one month at a time, and the current employer."""
    paid: dict[str, set[int]] = {kind: set() for kind in SOCIAL_KINDS}
    owed: dict[str, set[int]] = {kind: set() for kind in SOCIAL_KINDS}
    pension = []
    for entry in ledger.contributions.values():
        line = entry.data
        if line is None:
            continue
        kind = KIND_OF_INSURANCE[line.insurance_type]
        (paid if line.status == "paid" else owed)[kind].add(month_index(line.month))
        if line.status == "paid" and kind == "pension":
            pension.append(
                (month_index(line.month), line.occurred_at, entry.ref.source_record_id, line.employer_id)
            )
    return paid, {kind: owed[kind] - paid[kind] for kind in SOCIAL_KINDS}, max(pension, default=None)


def _months(spans: tuple[MonthRange, ...]) -> set[int]:
    return {month for span in spans for month in range(span.first, span.last + 1)}


@given(history=_histories())
def test_the_social_section_holds_exactly_the_months_of_the_live_lines_as_ranges(
    history: list[Event],
) -> None:
    ledger = _fold_events(history)
    social = profile_of(ledger).social
    paid, owed, latest = _brute_social(ledger)
    for kind in SOCIAL_KINDS:
        assert _months(social.received[kind]) == paid[kind]
        assert _months(social.arrears[kind]) == owed[kind]
        # The fewest ranges: ordered, and no two touch.
        spans = social.received[kind]
        assert all(before.last + 1 < after.first for before, after in pairwise(spans))
    if latest is None:
        assert social.employer is None
    else:
        assert social.employer is not None
        assert (social.employer.month, social.employer.employer_id) == (latest[0], latest[3])
    read = {(e.ref.topic, e.ref.partition): e.ref.offset for e in ledger.contributions.values()}
    for position in social.read_to:
        assert position.offset == max(
            e.ref.offset
            for e in ledger.contributions.values()
            if (e.ref.topic, e.ref.partition) == (position.topic, position.partition)
        )
    assert {(p.topic, p.partition) for p in social.read_to} == set(read)


@given(history=_histories())
def test_the_tax_section_holds_exactly_the_months_of_the_live_payments(history: list[Event]) -> None:
    ledger = _fold_events(history)
    tax = profile_of(ledger).tax
    paid: set[int] = set()
    net: dict[int, Decimal] = {}
    for entry in ledger.payments.values():
        payment = entry.data
        if payment is None:
            continue
        start, end = month_index(payment.period_start), month_index(payment.period_end)
        if payment.tax_paid > 0:
            paid.update(range(start, end + 1))
        net[end] = net.get(end, Decimal(0)) + payment.tax_paid
    assert _months(tax.paid) == paid
    assert all(before.last + 1 < after.first for before, after in pairwise(tax.paid))
    # One amount per month a payment ends in, runs of equal neighbours merged and no two runs mergeable.
    assert {m: t.amount for t in tax.totals for m in range(t.first, t.last + 1)} == net
    assert all(
        before.last < after.first and (before.last + 1, before.amount) != (after.first, after.amount)
        for before, after in pairwise(tax.totals)
    )
    assert {(p.topic, p.partition) for p in tax.read_to} == {
        (e.ref.topic, e.ref.partition) for e in ledger.payments.values()
    }


@given(history=_histories(), data=st.data())
def test_any_permutation_of_the_events_gives_the_same_profile_but_its_version(
    history: list[Event], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(history))
    first, second = profile_of(_fold_events(history)), profile_of(_fold_events(shuffled))
    assert (first.persons, first.tax, first.social, first.titles) == (
        second.persons,
        second.tax,
        second.social,
        second.titles,
    )


def _profile_round_trip(profile: Profile) -> Profile:
    codec = AvroCodec()
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=dt.UTC)
    encoded = codec.encode("profile", {**to_avro(profile), "updated_at": at, "latest_published_at": at})
    name, record = codec.decode(encoded)
    assert name == "profile"
    assert (record["updated_at"], record["latest_published_at"]) == (at, at)
    return from_avro(record)


@given(history=_histories())
def test_any_folded_profile_survives_the_profile_s_avro_form_exactly(history: list[Event]) -> None:
    profile = profile_of(_fold_events(history))
    assert _profile_round_trip(profile) == profile


def test_the_profile_record_of_a_ledger_record_is_the_profile_s_own() -> None:
    ledger = fold([contribution("A", "2024-01"), payment("V", "2026-01"), person(), title("T")])
    tax, social = tax_of(ledger.payments), social_of(ledger.contributions)
    assert profile_record(ledger_to_avro(ledger), tax, social) == to_avro(profile_of(ledger))


def test_thirty_years_of_payments_and_contributions_are_a_few_ranges() -> None:
    months = [f"{year}-{month:02d}" for year in range(1996, 2026) for month in range(1, 13)]
    lines = [contribution(f"P{m}", m) for m in months] + [contribution(f"M{m}", m, "medical") for m in months]
    payments = [payment(f"V{m}", m, tax="120.50") for m in months]
    ledger = fold([*lines, *payments])
    profile = profile_of(ledger)
    working_life = MonthRange(month_index(dt.date(1996, 1, 1)), month_index(dt.date(2025, 12, 1)))
    assert profile.social.received["pension"] == profile.social.received["medical"] == (working_life,)
    assert profile.tax.paid == (working_life,)
    assert profile.tax.totals == (MonthTotal(*working_life, Decimal("120.50")),)
    codec = AvroCodec()
    profile_bytes = codec.encode("profile", to_avro(profile))
    ledger_bytes = codec.encode("ledger", ledger_to_avro(ledger))
    # The records stay in the ledger; the profile carries a few ranges and one employer line.
    assert len(profile_bytes) * 100 < len(ledger_bytes)
    assert len(ledger.payments) + len(ledger.contributions) == 3 * len(months)


@pytest.mark.parametrize("version", [0, 1], ids=["v1, before the social section", "v2, before tax"])
def test_a_profile_written_before_the_sections_of_months_reads_with_them_derived(version: int) -> None:
    ledger = fold(
        [
            contribution("A", "2024-01"),
            contribution("B", "2024-02", status="arrears"),
            payment("V1", "2024-01"),
            payment("V2", "2024-02", tax="-3.00", version=2),
            person(),
            title("T"),
        ]
    )
    old = schemas.history("profile")[version]
    record = {**ledger_to_avro(ledger), "updated_at": AT, "latest_published_at": AT}
    if version == 1:  # v2 carried the social section already, and the payments still
        record = {**record, "social": social_to_avro(social_of(ledger.contributions))}
        record["contributions"] = {"records": 0, "numbers": b"", "text": "", "dictionary": []}
    body = io.BytesIO()
    schemaless_writer(body, old.parsed, record)
    name, decoded = AvroCodec().decode(MAGIC + old.fingerprint + body.getvalue())
    assert name == "profile"
    assert from_avro(decoded) == profile_of(ledger)
    february = month_index(dt.date(2024, 2, 1))
    assert from_avro(decoded).social.arrears["pension"] == (MonthRange(february, february),)
    assert from_avro(decoded).tax.totals[-1] == MonthTotal(february, february, Decimal("-3.00"))


@pytest.mark.parametrize(
    "received",
    [{"pension": [24300, 24299]}, {"pension": [1, 2, 3, 4]}, {"pension": [1, 2, 2, 3]}, {"pension": [1]}],
)
def test_months_that_are_not_ordered_separate_ranges_are_refused(received: dict[str, list[int]]) -> None:
    record = to_avro(profile_of(fold([contribution("A", "2024-01")])))
    record["social"] = {**record["social"], "received": received}
    with pytest.raises(ProfileFormError):
        from_avro(record)
