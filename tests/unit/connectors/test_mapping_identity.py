"""公安 identity mapping: every rule of DEPARTMENTS.md, with its reason code and the native field named."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest

from connectors.exceptions import RecordRejected
from connectors.mappings import MAPPINGS, Converted
from connectors.mappings.base import EVENT_NAMESPACE

Convert = Callable[..., list[Converted]]
Reject = Callable[..., RecordRejected]

IDENTITY = MAPPINGS["identity"]
ROW = {
    "公民身份号码": "44010220011028323x",
    "姓名": "何䶮",
    "性别": "1",
    "民族": "01",
    "出生日期": "20011028",
    "户籍地址": '广州市工业大道474号之一,"东"座',
    "户籍地行政区划": "440106",
    "户别": "2",
    "人员状态": "1",
    "记录版本": "2",
    "变更时间": "2024-03-05 10:00:00",
}


def with_(**changes: object) -> dict[str, object]:
    return {**ROW, **changes}


def test_a_person_converts_to_the_canonical_record(
    convert: Convert, published_at: dt.datetime, trace_id: str
) -> None:
    (converted,) = convert(IDENTITY, ROW)
    assert converted.subject_id == "44010220011028323X"
    record = converted.record
    assert record["envelope"] == {
        "event_id": str(uuid.uuid5(EVENT_NAMESPACE, "identity|44010220011028323X|2")),
        "department": "identity",
        "dataset": "identity.person",
        "source_record_id": "44010220011028323X",
        "source_version": 2,
        "op": "upsert",
        "occurred_at": dt.datetime(2024, 3, 5, 2, 0, tzinfo=dt.UTC),
        "published_at": published_at,
        "trace_id": trace_id,
    }
    assert {key: value for key, value in record.items() if key != "envelope"} == {
        "citizen_id": "44010220011028323X",
        "name": "何䶮",
        "sex": "male",
        "ethnicity": "01",
        "birth_date": dt.date(2001, 10, 28),
        "address": '广州市工业大道474号之一,"东"座',
        "district": "440106",
        "household_type": "collective",
        "status": "deceased",
    }


@pytest.mark.parametrize(
    ("code", "sex"), [("1", "male"), ("2", "female"), ("0", "unknown"), ("9", "unstated")]
)
def test_sex_codes(convert: Convert, code: str, sex: str) -> None:
    assert convert(IDENTITY, with_(性别=code))[0].record["sex"] == sex


@pytest.mark.parametrize(("code", "status"), [("0", "normal"), ("1", "deceased"), ("2", "moved_out")])
def test_status_codes(convert: Convert, code: str, status: str) -> None:
    assert convert(IDENTITY, with_(人员状态=code))[0].record["status"] == status


@pytest.mark.parametrize(("code", "kind"), [("1", "family"), ("2", "collective")])
def test_household_codes(convert: Convert, code: str, kind: str) -> None:
    assert convert(IDENTITY, with_(户别=code))[0].record["household_type"] == kind


@pytest.mark.parametrize("field", list(ROW))
@pytest.mark.parametrize("value", ["", "   "])
def test_every_field_is_required(reject: Reject, field: str, value: str) -> None:
    reject(IDENTITY, with_(**{field: value}), "missing_field", field)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("4401022001102832", "id_length"),
        ("4401022001102832300", "id_length"),
        ("44010220011028323Y", "id_characters"),
        ("44010220011O28323X", "id_characters"),
        ("440102200113283233", "id_birth_date"),
        ("440102200110283231", "id_check_character"),
    ],
)
def test_citizen_id_rules(reject: Reject, value: str, reason: str) -> None:
    error = reject(IDENTITY, with_(公民身份号码=value), reason, "公民身份号码")
    assert error.message.startswith("公安 公民身份号码 (citizen ID) ")
    assert value not in error.message  # identifiers never appear in messages


def test_abolished_and_new_place_codes_are_valid(convert: Convert, citizen_id: Callable[..., str]) -> None:
    for place in ("440102", "440107", "440181", "440113", "440118"):
        subject = citizen_id(place, "20011028", "323")
        assert convert(IDENTITY, with_(公民身份号码=subject))[0].subject_id == subject


def test_name_is_one_to_fifty_characters(convert: Convert, reject: Reject) -> None:
    assert convert(IDENTITY, with_(姓名="𠮷" * 50))[0].record["name"] == "𠮷" * 50
    error = reject(IDENTITY, with_(姓名="李" * 51), "bad_name_length", "姓名")
    assert "51 characters" in error.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("性别", "3"),
        ("性别", "01"),
        ("民族", "00"),
        ("民族", "57"),
        ("民族", "1"),
        ("户别", "3"),
        ("人员状态", "3"),
    ],
)
def test_codes_outside_their_lists(reject: Reject, field: str, value: str) -> None:
    error = reject(IDENTITY, with_(**{field: value}), "unknown_code", field)
    assert f'got "{value}"' in error.message


@pytest.mark.parametrize("value", ["2001-10-28", "2001108", "20011032", "２００１１０２８"])
def test_birth_date_format(reject: Reject, value: str) -> None:
    reject(IDENTITY, with_(出生日期=value), "bad_date", "出生日期")


def test_birth_date_must_be_the_one_inside_the_id(reject: Reject) -> None:
    error = reject(IDENTITY, with_(出生日期="20011029"), "birth_date_mismatch", "出生日期")
    assert (
        error.message == "公安 出生日期 (birth date) 20011029 is not the birth date inside the 公民身份号码"
    )


@pytest.mark.parametrize("value", ["44010", "4401060", "44O106"])
def test_district_is_six_digits(reject: Reject, value: str) -> None:
    reject(IDENTITY, with_(户籍地行政区划=value), "bad_district", "户籍地行政区划")


@pytest.mark.parametrize("value", ["0", "-1", "1.0", "v2", "9223372036854775808", "1" * 5000])
def test_version_is_a_positive_integer(reject: Reject, value: str) -> None:
    reject(IDENTITY, with_(记录版本=value), "bad_version", "记录版本")


@pytest.mark.parametrize(
    "value", ["2024-03-05T10:00:00", "2024-03-05 10:00", "2024-02-30 10:00:00", "2024-03-05 24:00:00"]
)
def test_time_of_change_format(reject: Reject, value: str) -> None:
    reject(IDENTITY, with_(变更时间=value), "bad_time", "变更时间")


def test_local_time_uses_the_zone_database(convert: Convert) -> None:
    # 1988-07-01 was in China's daylight saving time (UTC+9).
    summer = convert(IDENTITY, with_(变更时间="1988-07-01 09:00:00"))[0].record["envelope"]["occurred_at"]
    assert summer == dt.datetime(1988, 7, 1, 0, 0, tzinfo=dt.UTC)


def test_event_id_is_deterministic_and_versioned(convert: Convert) -> None:
    first, again = convert(IDENTITY, ROW)[0], convert(IDENTITY, with_(公民身份号码="44010220011028323X"))[0]
    newer = convert(IDENTITY, with_(记录版本="3"))[0]
    assert first.record["envelope"]["event_id"] == again.record["envelope"]["event_id"]
    assert first.record["envelope"]["event_id"] != newer.record["envelope"]["event_id"]


def test_published_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        IDENTITY.convert(dict(ROW), published_at=dt.datetime(2026, 1, 1), trace_id="t")
