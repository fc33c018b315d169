"""`audit.plain_json` copies JSON's own types directly: the copy must be exactly what the JSON round
trip (and the scrub) it replaces returns, for every kind of value, and the round trip still takes the rest.
Likewise the canonical text a chained row is hashed over (orjson where it writes what json does) and
the event ids written without `uuid.UUID`."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange import audit
from exchange.api.models.verifications import Claim
from exchange.audit import (
    AuditEntry,
    _scrub,
    canonical,
    chained_canonical,
    chained_text,
    new_event_id,
    plain_json,
    row_hash,
    sorted_json,
)


def _round_trip(value: Any) -> Any:
    return _scrub(json.loads(json.dumps(value, ensure_ascii=False, default=str)))


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Tag(str):
    pass


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"down": [value]}
    return value


VALUES: list[Any] = [
    {},
    [],
    {"claims": [{"fact": "identity.status", "operator": "eq"}], "reference_date": None, "as_of": None},
    {"a": "x\x00y", "b": ["\ud800"], "c": (1, 2)},
    {"名": "数据跑腿", "emoji": "😀", "mixed": "a\x00b😀\udfff"},
    {"\x00key": 1, "\ud800": 2, "n": -0.0, "big": 10**40, "f": 1.5e300, "t": True, "f2": False},
    {"nan": float("nan"), "inf": float("inf")},
    {"nested": ({"x": (1, [2, (3,)])},)},
    {"date": dt.date(2026, 11, 15), "at": dt.datetime(2026, 11, 15, 8, 30, 1, 5, tzinfo=dt.UTC)},
    {
        "naive": dt.datetime(2026, 11, 15, 8, 30),
        "dates": [dt.date.min, dt.datetime.max],
        "at": (dt.date.max,),
    },
    {"id": uuid.UUID(int=7), "colour": Colour.RED, "level": Level.HIGH, "tag": Tag("t")},
    {1: "int key", None: "none key", False: "bool key", 2.5: "float key"},
    {"set": frozenset()},
    _deep(10),
    _deep(200),
    "bare text",
    7,
    None,
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_plain_json_is_exactly_the_json_round_trip(value: Any) -> None:
    copied, expected = plain_json(value), _round_trip(value)
    # Compared as JSON text (NaN equals itself there; key order and -0.0 count).
    assert json.dumps(copied, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)
    assert _types(copied) == _types(expected)


def test_a_verification_s_request_is_copied_without_the_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_round_trip(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("plain_json took the JSON round trip")

    monkeypatch.setattr("exchange.audit.json.dumps", no_round_trip)
    asked = {
        "claims": [{"fact": "identity.status", "operator": "eq"}],
        "reference_date": dt.date(2026, 11, 15),
        "as_of": dt.datetime(2026, 11, 15, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    }
    assert plain_json(asked) == {
        "claims": [{"fact": "identity.status", "operator": "eq"}],
        "reference_date": "2026-11-15",
        "as_of": "2026-11-15 08:30:00+08:00",
    }


def test_plain_json_copies_rather_than_shares() -> None:
    value = {"claims": [{"fact": "a"}]}
    copied = plain_json(value)
    value["claims"][0]["fact"] = "changed"
    assert copied == {"claims": [{"fact": "a"}]}


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value).__name__


# Any JSON document as a caller's request could carry it: every kind of text (lone surrogates and NUL
# included), integers of any size, floats of every notation (NaN and the infinities too), nesting.
_TEXT = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF))
_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**70)
    | st.floats()
    | _TEXT
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


@given(request=_JSON, response=_JSON, purpose=_TEXT)
@settings(max_examples=400)
def test_a_chained_row_s_text_is_exactly_its_canonical_json(
    request: Any, response: Any, purpose: str
) -> None:
    # The appender stores and hashes the text `chained_canonical` writes (orjson where it writes what
    # json does); the verifier recomputes `canonical` (json) from the stored row: they must be the same.
    entry = AuditEntry(
        caller="housing-bureau",
        action="verification",
        outcome="allowed",
        policy_version="v1",
        purpose=purpose,
        request={"value": request},
        response={"value": response},
    )
    row, text = chained_canonical(entry, 7, "0" * 64)
    assert text == canonical(row)
    assert row["hash"] == row_hash(row) == hashlib.sha256(text).hexdigest()


def test_a_verification_s_entry_is_written_without_json(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_json(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the canonical text was written by json")

    entry = AuditEntry(
        caller="housing-bureau",
        action="verification",
        outcome="allowed",
        policy_version="v1",
        purpose="public-rental-housing",
        request={"claims": [{"fact": "identity.status", "operator": "eq"}], "reference_date": None},
        response={"results": [{"fact": "identity.status", "holds": True}], "profile_version": 3},
    )
    expected = chained_canonical(entry, 1, "0" * 64)[1]
    monkeypatch.setattr("exchange.audit.json.dumps", no_json)
    assert chained_canonical(entry, 1, "0" * 64)[1] == expected


@given(st.integers(min_value=0, max_value=2**31))
def test_an_event_id_is_a_random_version_4_uuid_as_uuid_writes_it(seed: int) -> None:
    event_id = new_event_id()
    parsed = uuid.UUID(event_id)
    assert str(parsed) == event_id
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert new_event_id() != event_id


def test_a_verification_audits_each_claim_as_the_claim_without_its_value() -> None:
    # verifications.answer writes the claim's fields out by name: a field added to Claim must be added
    # there too (or left out on purpose, as the value is).
    assert set(Claim.model_fields) - {"value"} == {"fact", "operator"}


@given(_JSON)
@settings(max_examples=400)
def test_plain_json_is_exactly_the_json_round_trip_for_any_document(value: Any) -> None:
    copied, expected = plain_json({"value": value}), _round_trip({"value": value})
    assert json.dumps(copied, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)
    assert _types(copied) == _types(expected)


@given(_JSON, st.sampled_from([(", ", ": "), (",", ":")]))
@settings(max_examples=400)
def test_sorted_json_writes_a_column_s_text_exactly_as_json_does(value: Any, separators: Any) -> None:
    # The relay writes each JSON column's text (jsonb's, with its spaces) as the chain's canonical JSON.
    text = json.dumps({"value": value, "also": [value]}, separators=separators, ensure_ascii=False)
    expected = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert sorted_json(text) == expected


def test_sorted_json_leaves_floats_and_big_integers_to_json() -> None:
    cases = [
        ('{"b": 1.0, "a": 1e16}', '{"a":1e+16,"b":1.0}'),
        ('{"n": 12345678901234567890123}', '{"n":12345678901234567890123}'),
        (
            '{"n": -9223372036854775809, "m": 9007199254740993}',
            '{"m":9007199254740993,"n":-9223372036854775809}',
        ),
        (
            '{"fact": "social.pension", "b": [true, null, -0, "x\\u0000"]}',
            '{"b":[true,null,0,"x\\u0000"],"fact":"social.pension"}',
        ),
    ]
    for text, expected in cases:
        assert sorted_json(text) == expected


# What an entry holds: JSON's own types, exact dates and datetimes; every kind of text, integers of any
# size and floats (1e16, NaN: orjson writes some as `json` does not), which `chained_text` must either
# write as `chained_canonical` does or hand over to it.
_JSON_TYPES = st.recursive(
    _JSON_LEAVES
    | st.sampled_from([1e16, -1e-7, 1.5e300])
    | st.dates()
    | st.datetimes(timezones=st.none() | st.timezones()),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_TEXT, inner, max_size=4)
    ),
    max_leaves=20,
)


def _json_types_entry(request: Any, response: Any, purpose: str, at: dt.datetime) -> AuditEntry:
    return AuditEntry(
        caller="housing-bureau",
        action="verification",
        outcome="allowed",
        policy_version="v1",
        purpose=purpose,
        subject_key="ab" * 32,
        request={"value": request},
        response={"value": response},
        at=at,
    )


@given(
    request=_JSON_TYPES,
    response=_JSON_TYPES,
    purpose=_TEXT,
    # An entry's instant is when it was made: years near 1 or 9999 in a zone overflow on conversion to UTC.
    at=st.datetimes(
        dt.datetime(1970, 1, 2), dt.datetime(9998, 12, 31), timezones=st.just(dt.UTC) | st.timezones()
    ),
)
@settings(max_examples=400)
def test_an_entry_of_json_types_is_written_directly_as_chained_canonical_writes_it(
    request: Any, response: Any, purpose: str, at: dt.datetime
) -> None:
    entry = _json_types_entry(request, response, purpose, at)
    row, text = chained_canonical(entry, 7, "0" * 64)
    assert chained_text(entry, 7, "0" * 64) == (row["hash"], text)


@pytest.mark.parametrize(
    "request_",
    [
        {"claims": [{"fact": "identity.status", "operator": "eq"}], "reference_date": None, "as_of": None},
        {"reference_date": dt.date(2026, 11, 15), "as_of": dt.datetime(2026, 11, 15, 8, 30, tzinfo=dt.UTC)},
        {"as_of": dt.datetime(2026, 11, 15, 8, 30, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))},
    ],
    ids=range(3),
)
@pytest.mark.parametrize(
    "at", [dt.datetime(2026, 11, 15, 8, 30, 1, 5, tzinfo=dt.UTC), dt.datetime(2026, 11, 15, tzinfo=dt.UTC)]
)
def test_a_verification_s_entry_is_written_without_the_plain_copy(
    monkeypatch: pytest.MonkeyPatch, request_: dict[str, Any], at: dt.datetime
) -> None:
    entry = _json_types_entry(request_, {"results": [{"fact": "identity.status", "holds": True}]}, "p", at)
    row, text = chained_canonical(entry, 3, "1" * 64)

    def no_copy(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the entry was copied to plain JSON")

    monkeypatch.setattr("exchange.audit._plain_json", no_copy)
    assert chained_text(entry, 3, "1" * 64) == (row["hash"], text)


@pytest.mark.parametrize(
    "value",
    [
        {"nul": "a\x00b"},
        {"surrogate": "\ud800"},
        {"big": 10**30},
        {"tag": Tag("t")},
        {1: "int key"},
        {"float": 1e16},
        {"nan": float("nan")},
        {"colour": Colour.RED},
    ],
    ids=["nul", "surrogate", "big", "subclass", "int key", "float", "nan", "enum"],
)
def test_what_orjson_writes_otherwise_is_left_to_chained_canonical(value: dict[Any, Any]) -> None:
    entry = _json_types_entry(value, {}, "p", dt.datetime(2026, 11, 15, 8, 30, 1, 5, tzinfo=dt.UTC))
    row, text = chained_canonical(entry, 3, "1" * 64)
    assert chained_text(entry, 3, "1" * 64) == (row["hash"], text)


def test_a_request_too_large_to_keep_is_kept_as_its_size_and_hash() -> None:
    # A body that does not validate, with a field name of 2 MB: its 422 is audited with the error's
    # location, so the row would be larger than Kafka takes and the relay would retry it forever.
    request = {"method": "POST", "errors": [{"loc": ["body", "k" * 2_000_000], "type": "extra_forbidden"}]}
    entry = AuditEntry("unauthenticated", "verification", "refused", "v1", request=request)
    original = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    row, text = chained_canonical(entry, 1, "0" * 64)

    assert chained_text(entry, 1, "0" * 64) == (row["hash"], text)
    assert len(text) < audit.MAX_ROW_BYTES
    assert row["request"] == {
        "omitted": "too large to keep",
        "bytes": len(original),
        "sha256": hashlib.sha256(original).hexdigest(),
    }
    assert audit.verify([row], (1, row["hash"])) is None
    small = AuditEntry("unauthenticated", "verification", "refused", "v1", request={"method": "POST"})
    assert chained_canonical(small, 1, "0" * 64)[0]["request"] == {"method": "POST"}
