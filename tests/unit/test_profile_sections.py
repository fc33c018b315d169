"""The tax and social sections read back from their flat Avro (and document) form: exactly the sections
the plain reading below gives, and refused (ValueError) exactly where it refuses.

The readers in exchange.profile_avro check and build a section's months with C-level passes (`map`
over operators) because the sink reads a profile's sections for every profile it stores and the API
for every profile it decodes; this plain reading, one range at a time, is what they must agree with.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.profile import SOCIAL_KINDS, MonthRange, MonthTotal
from exchange.profile_avro import social_from_avro, tax_from_avro


def _plain_ranges(flat: Sequence[int]) -> tuple[MonthRange, ...]:
    if len(flat) % 2:
        raise ValueError("not pairs")
    spans = [MonthRange(flat[n], flat[n + 1]) for n in range(0, len(flat), 2)]
    for number, span in enumerate(spans):
        if span.first > span.last:
            raise ValueError("a range ends before it begins")
        if number and span.first <= spans[number - 1].last + 1:
            raise ValueError("a range touches or overlaps the one before")
    return tuple(spans)


def _plain_totals(flat: Sequence[int]) -> tuple[MonthTotal, ...]:
    if len(flat) % 3:
        raise ValueError("not triples")
    totals = [MonthTotal(flat[n], flat[n + 1], Decimal(flat[n + 2]) / 100) for n in range(0, len(flat), 3)]
    for number, total in enumerate(totals):
        if total.first > total.last:
            raise ValueError("a run ends before it begins")
        if number and total.first <= totals[number - 1].last:
            raise ValueError("a run overlaps the one before")
    return tuple(totals)


def _outcome(read: Any, *args: Any) -> Any:
    try:
        return read(*args)
    except ValueError:
        return ValueError


@st.composite
def _months(draw: st.DrawFn, numbers: int = 2) -> list[int]:
    """Flat ranges (or, with numbers=3, runs with an amount) one after another: each begins a few months
    from where the one before ended (overlapping, touching, adjacent or apart) and lasts a few months
    (or ends before it begins); sometimes cut short of a whole range."""
    flat: list[int] = []
    last = 24_000
    for gap, length in draw(st.lists(st.tuples(st.integers(-2, 3), st.integers(-1, 3)), max_size=5)):
        first = last + gap
        last = first + length
        flat.extend((first, last))
        if numbers == 3:
            flat.append(draw(st.integers(-(10**12), 10**12)))
    cut = draw(st.integers(min_value=0, max_value=numbers - 1))
    return flat[: len(flat) - cut]


_MONTHS = _months()
_RUNS = _months(numbers=3)
_READ_TO = [{"topic": "exchange.tax.payment.v1", "partition": 3, "offset": 41}]


@given(paid=_MONTHS)
def test_the_months_paid_read_as_the_plain_reading(paid: list[int]) -> None:
    expected = _outcome(_plain_ranges, paid)
    read = _outcome(tax_from_avro, {"paid": paid, "totals": [], "read_to": _READ_TO})
    assert read is ValueError if expected is ValueError else read.paid == expected


@given(totals=_RUNS)
def test_the_tax_totals_read_as_the_plain_reading(totals: list[int]) -> None:
    expected = _outcome(_plain_totals, totals)
    read = _outcome(tax_from_avro, {"paid": [], "totals": totals, "read_to": _READ_TO})
    if expected is ValueError:
        assert read is ValueError
    else:
        assert read.totals == expected
        assert [position._asdict() for position in read.read_to] == _READ_TO


@given(kind=st.sampled_from(SOCIAL_KINDS), months=_MONTHS, arrears=st.booleans())
def test_the_social_months_read_as_the_plain_reading(kind: str, months: list[int], arrears: bool) -> None:
    ranges = {kind: months}
    section = {
        "received": {} if arrears else ranges,
        "arrears": ranges if arrears else {},
        "employer": None,
        "read_to": _READ_TO,
    }
    expected = _outcome(_plain_ranges, months)
    read = _outcome(social_from_avro, section)
    if expected is ValueError:
        assert read is ValueError
    else:
        assert (read.arrears if arrears else read.received) == {
            name: expected if name == kind else () for name in SOCIAL_KINDS
        }


@pytest.mark.parametrize(
    ("paid", "totals", "reason"),
    [
        ([24_001], [], "not \\(first, last\\) pairs"),
        ([24_003, 24_002], [], "not ordered, separate ranges"),
        ([24_001, 24_002, 24_003, 24_004], [], "not ordered, separate ranges"),  # touching: one range
        ([], [24_001, 24_001], "not \\(first, last, hundredths\\) triples"),
        ([], [24_001, 24_001, 5, 24_001, 24_002, 7], "not ordered, separate runs"),
    ],
)
def test_a_malformed_tax_section_is_refused_with_what_is_wrong(
    paid: list[int], totals: list[int], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        tax_from_avro({"paid": paid, "totals": totals, "read_to": []})


def test_an_unknown_insurance_kind_is_refused() -> None:
    section: dict[str, Any] = {
        "received": {"lottery": [24_001, 24_001]},
        "arrears": {},
        "employer": None,
        "read_to": [],
    }
    with pytest.raises(ValueError, match="no insurance kind lottery"):
        social_from_avro(section)
