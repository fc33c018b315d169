"""人社 social mapping: every rule of DEPARTMENTS.md, with its reason code and the native field named."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest

from connectors.exceptions import RecordRejected
from connectors.mappings import MAPPINGS, Converted

Convert = Callable[..., list[Converted]]
Reject = Callable[..., RecordRejected]

SOCIAL = MAPPINGS["social"]
ROW = {
    "jfmxid": "JF000000001",
    "aac002": "445102198409268960",
    "aac003": "罗艳",
    "aae140": "110",
    "aae002": "202610",
    "aab998": "9144011470K239T3E2",
    "aab004": "广州餐饮有限公司",
    "aae180": 1817500,
    "dwjfje": 254450,
    "grjfje": 145400,
    "aae078": "1",
    "yxbz": "1",
    "bbh": 1,
    "gxsj": "2026-10-20 09:00:00",
}
AMOUNTS = ["aae180", "dwjfje", "grjfje"]


def with_(**changes: object) -> dict[str, object]:
    return {**ROW, **changes}


def test_a_contribution_converts_to_the_canonical_record(convert: Convert) -> None:
    (converted,) = convert(SOCIAL, ROW)
    record = converted.record
    assert converted.subject_id == "445102198409268960"
    assert record["envelope"]["source_record_id"] == "JF000000001"
    assert record["envelope"]["occurred_at"] == dt.datetime(2026, 10, 20, 1, 0, tzinfo=dt.UTC)
    assert {key: value for key, value in record.items() if key != "envelope"} == {
        "citizen_id": "445102198409268960",
        "name": "罗艳",
        "insurance_type": "enterprise_pension",
        "month": dt.date(2026, 10, 1),
        "employer_id": "9144011470K239T3E2",
        "employer_name": "广州餐饮有限公司",
        "base": Decimal("18175.00"),
        "employer_amount": Decimal("2544.50"),
        "personal_amount": Decimal("1454.00"),
        "status": "paid",
    }


@pytest.mark.parametrize(
    ("code", "symbol"),
    [
        ("110", "enterprise_pension"),
        ("120", "institution_pension"),
        ("210", "unemployment"),
        ("310", "medical"),
        ("410", "injury"),
        ("510", "maternity"),
    ],
)
def test_insurance_types(convert: Convert, code: str, symbol: str) -> None:
    assert convert(SOCIAL, with_(aae140=code))[0].record["insurance_type"] == symbol


def test_arrears_are_kept_and_revoked_lines_revoke(convert: Convert) -> None:
    assert convert(SOCIAL, with_(aae078="0"))[0].record["status"] == "arrears"
    assert convert(SOCIAL, with_(yxbz="0"))[0].record["envelope"]["op"] == "revoke"


def test_zero_amounts_are_allowed(convert: Convert) -> None:
    record = convert(SOCIAL, with_(aae180=0, dwjfje=0, grjfje=0))[0].record
    assert record["base"] == Decimal("0.00")


@pytest.mark.parametrize("field", list(ROW))
def test_every_key_is_required(reject: Reject, field: str) -> None:
    row = with_()
    del row[field]
    assert reject(SOCIAL, row, "missing_field", field).message.endswith("is missing")
    reject(SOCIAL, with_(**{field: None}), "missing_field", field)


def test_the_names_are_strings_and_may_be_empty(convert: Convert) -> None:
    # DEPARTMENTS.md: aac003 and aab004 are "string"; a blank one was dead-lettered as missing.
    record = convert(SOCIAL, with_(aac003="", aab004=" "))[0].record
    assert (record["name"], record["employer_name"]) == ("", " ")


@pytest.mark.parametrize("field", AMOUNTS)
@pytest.mark.parametrize("value", ["800000", 8000.5, 800000.0, True, -1, 10**18, [1]])
def test_amounts_are_non_negative_json_integers_of_fen(reject: Reject, field: str, value: object) -> None:
    reject(SOCIAL, with_(**{field: value}), "bad_amount", field)


def test_amount_message_tells_the_clerk_what_is_wrong(reject: Reject) -> None:
    error = reject(SOCIAL, with_(aae180="8000.5"), "bad_amount", "aae180")
    assert error.message == '人社 aae180 (contribution base) must be an integer number of fen, got "8000.5"'


@pytest.mark.parametrize(
    ("field", "value"),
    [("aae140", "999"), ("aae140", "11"), ("aae078", "2"), ("yxbz", "Y"), ("aae078", "是")],
)
def test_codes_outside_their_lists(reject: Reject, field: str, value: str) -> None:
    reject(SOCIAL, with_(**{field: value}), "unknown_code", field)


@pytest.mark.parametrize(("field", "value"), [("aae140", 110), ("aac003", 1), ("jfmxid", 7), ("yxbz", 1)])
def test_strings_must_be_json_strings(reject: Reject, field: str, value: object) -> None:
    error = reject(SOCIAL, with_(**{field: value}), "bad_type", field)
    assert f"got {value}" in error.message


@pytest.mark.parametrize("value", ["2026-10", "202613", "20261", "2026100"])
def test_month_is_yyyymm(reject: Reject, value: str) -> None:
    reject(SOCIAL, with_(aae002=value), "bad_month", "aae002")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("91440114", "uscc_length"),
        ("9144011470K239T3EO", "uscc_characters"),
        ("9144011470K239T3E1", "uscc_check_character"),
    ],
)
def test_employer_is_a_uscc(reject: Reject, value: str, reason: str) -> None:
    reject(SOCIAL, with_(aab998=value), reason, "aab998")


def test_insured_person_is_a_citizen_id(reject: Reject) -> None:
    reject(SOCIAL, with_(aac002="445102198409268961"), "id_check_character", "aac002")


@pytest.mark.parametrize("value", [1.5, True, "x", "1", 2**63])
def test_version_is_a_json_integer(reject: Reject, value: object) -> None:
    reject(SOCIAL, with_(bbh=value), "bad_version", "bbh")


@pytest.mark.parametrize("value", [0, -2])
def test_a_version_need_not_be_positive(convert: Convert, value: int) -> None:
    # DEPARTMENTS.md: bbh is an "integer" (identity's and tax's versions are "positive integer").
    assert convert(SOCIAL, with_(bbh=value))[0].record["envelope"]["source_version"] == value


@pytest.mark.parametrize("value", ["2026-10-20", "2026-10-20T09:00:00", "2026-10-32 09:00:00"])
def test_time_of_change_format(reject: Reject, value: str) -> None:
    reject(SOCIAL, with_(gxsj=value), "bad_time", "gxsj")


def test_a_key_the_format_does_not_have_is_refused(reject: Reject) -> None:
    error = reject(SOCIAL, with_(aae036="2026-10-20"), "unexpected_field", "aae036")
    assert error.message.startswith("人社 aae036 ")
