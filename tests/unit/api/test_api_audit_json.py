"""`audit.plain_json` copies JSON's own types directly: the copy must be exactly what the JSON round
trip (and the scrub) it replaces returns, for every kind of value, and the round trip still takes the rest."""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from typing import Any

import pytest

from exchange.audit import _scrub, plain_json


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
