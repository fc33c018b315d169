"""不动产登记中心 property mapping: rows of bdc_djb as psycopg returns them, one record per owner."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal

import pytest

from connectors.exceptions import RecordRejected
from connectors.mappings import MAPPINGS, Converted
from connectors.mappings.base import EVENT_NAMESPACE

Convert = Callable[..., list[Converted]]
Reject = Callable[..., RecordRejected]

PROPERTY = MAPPINGS["property"]
A, B, C = "440115196406031712", "440111200601168881", "44010220011028323X"
ROW = {
    "bdcqzh": "粤(2022)广州市不动产权第0000001号",
    "bdcdyh": "440604762481540055GB12935591",
    "qlr": f"{A}:50;{B}:50",
    "zl": "广州市某路216号2302房",
    "xzqdm": "440604",
    "yt": "住宅",
    "mj": Decimal("121.90"),
    "djsj": dt.datetime(2022, 5, 7, 10, 0),
    "qszt": "1",
    "dyzt": "0",
    "cfzt": "1",
    "bbh": 1,
    "gxsj": dt.datetime(2022, 5, 10, 10, 0),
}


def with_(**changes: object) -> dict[str, object]:
    return {**ROW, **changes}


def test_a_title_with_two_owners_is_two_records(convert: Convert) -> None:
    first, second = convert(PROPERTY, ROW)
    assert (first.subject_id, second.subject_id) == (A, B)
    record = first.record
    assert record["envelope"]["event_id"] == str(
        uuid.uuid5(EVENT_NAMESPACE, f"property|粤(2022)广州市不动产权第0000001号|1|{A}")
    )
    assert record["envelope"]["occurred_at"] == dt.datetime(2022, 5, 10, 2, 0, tzinfo=dt.UTC)
    assert {key: value for key, value in record.items() if key != "envelope"} == {
        "certificate_no": "粤(2022)广州市不动产权第0000001号",
        "unit_no": "440604762481540055GB12935591",
        "owner_id": A,
        "share": Decimal("50.00"),
        "co_owners": [{"owner_id": B, "share": Decimal("50.00")}],
        "location": "广州市某路216号2302房",
        "district": "440604",
        "use": "residential",
        "area": Decimal("121.90"),
        "registered_at": dt.datetime(2022, 5, 7, 2, 0, tzinfo=dt.UTC),
        "status": "current",
        "mortgaged": False,
        "seized": True,
    }
    assert second.record["co_owners"] == [{"owner_id": A, "share": Decimal("50.00")}]
    assert first.record["envelope"]["event_id"] != second.record["envelope"]["event_id"]


def test_shares_with_decimals_and_a_single_owner(convert: Convert) -> None:
    three = convert(PROPERTY, with_(qlr=f"{A}:33.33;{B}:33.33;{C.lower()}:33.34"))
    assert [item.record["share"] for item in three] == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    assert three[2].subject_id == C and len(three[2].record["co_owners"]) == 2
    (alone,) = convert(PROPERTY, with_(qlr=f"{A}:100"))
    assert alone.record["co_owners"] == [] and alone.record["share"] == Decimal("100.00")


@pytest.mark.parametrize(
    ("use", "symbol"),
    [
        ("住宅", "residential"),
        ("商业", "commercial"),
        ("办公", "office"),
        ("工业", "industrial"),
        ("其他", "other"),
    ],
)
def test_uses(convert: Convert, use: str, symbol: str) -> None:
    assert convert(PROPERTY, with_(yt=use))[0].record["use"] == symbol


@pytest.mark.parametrize(("code", "status"), [("1", "current"), ("2", "historic"), ("3", "cancelled")])
def test_title_statuses(convert: Convert, code: str, status: str) -> None:
    assert convert(PROPERTY, with_(qszt=code))[0].record["status"] == status


def test_a_title_without_location_still_counts(convert: Convert) -> None:
    assert convert(PROPERTY, with_(zl=None))[0].record["location"] == ""


@pytest.mark.parametrize("field", [name for name in ROW if name != "zl"])
def test_every_other_column_is_required(reject: Reject, field: str) -> None:
    reject(PROPERTY, with_(**{field: None}), "missing_field", field)


@pytest.mark.parametrize(
    ("qlr", "reason"),
    [
        (f"{A}:50;{B}:40", "shares_not_100"),
        (f"{A}:50.5;{B}:50", "shares_not_100"),
        (f"{A}:0;{B}:100", "bad_share"),
        (f"{A}:101", "bad_share"),
        (f"{A}:50.123;{B}:49.877", "bad_owners"),
        (f"{A}50;{B}:50", "bad_owners"),
        (f"{A}:50;{B}:50;", "bad_owners"),
        (f"{A}: 50;{B}:50", "bad_owners"),
        (f"{A}:50%;{B}:50", "bad_owners"),
        (f"{A}:50,{B}:50", "bad_owners"),
        (f"{A}:50;{A}:50", "duplicate_owner"),
        (f"{A}:50;{B[:-1]}:50", "id_length"),
        (f"{A}:50;{B[:-1]}2:50", "id_check_character"),
    ],
)
def test_owner_rules(reject: Reject, qlr: str, reason: str) -> None:
    error = reject(PROPERTY, with_(qlr=qlr), reason, "qlr")
    assert error.message.startswith("不动产登记中心 qlr (owners")
    assert B not in error.message


def test_owner_errors_say_which_owner(reject: Reject) -> None:
    error = reject(PROPERTY, with_(qlr=f"{A}:50;{B[:-1]}2:50"), "id_check_character", "qlr")
    assert "owner 2 of 2" in error.message


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("yt", "住房", "unknown_code"),
        ("qszt", "4", "unknown_code"),
        ("dyzt", "2", "unknown_code"),
        ("cfzt", "Y", "unknown_code"),
        ("bdcdyh", "440604762481540055GB1293559", "bad_unit_no"),
        ("bdcdyh", "440604762481540055GB1293559 ", "bad_unit_no"),
        ("xzqdm", "44060", "bad_district"),
        ("mj", Decimal(0), "bad_area"),
        ("mj", Decimal("-1.00"), "bad_area"),
        ("mj", Decimal("12.345"), "bad_area"),
        ("mj", Decimal("NaN"), "bad_area"),
        ("mj", Decimal("1e10"), "bad_area"),
        ("mj", 121.9, "bad_area"),
        ("mj", "121.90", "bad_area"),
        ("djsj", dt.datetime(2022, 5, 7, 10, 0, tzinfo=dt.UTC), "bad_time"),
        ("gxsj", "2022-05-10 10:00:00", "bad_time"),
        ("bbh", "1", "bad_version"),
        ("bbh", True, "bad_version"),
        ("bdcqzh", 7, "bad_type"),
    ],
)
def test_column_rules(reject: Reject, field: str, value: object, reason: str) -> None:
    reject(PROPERTY, with_(**{field: value}), reason, field)


def test_a_version_need_not_be_positive(convert: Convert) -> None:
    # DEPARTMENTS.md: bbh is an "integer" (identity's and tax's versions are "positive integer").
    (first, _) = convert(PROPERTY, with_(bbh=0))
    assert first.record["envelope"]["source_version"] == 0


def test_dropped_owners_are_revoked(convert: Convert, codec: object) -> None:
    row = with_(qlr=f"{A}:100", bbh=2)
    revokes = PROPERTY.revoke_dropped_owners(
        row, [A, B, B], published_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), trace_id="t"
    )
    (revoke,) = revokes
    assert revoke.subject_id == B
    assert revoke.record["envelope"]["op"] == "revoke" and revoke.record["share"] == Decimal("0.00")
    assert revoke.record["co_owners"] == [{"owner_id": A, "share": Decimal("100.00")}]
    codec.encode("property.title", revoke.record)  # type: ignore[attr-defined]
