"""税务 tax mapping: every rule of DEPARTMENTS.md, with its reason code and the native field named."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest

from connectors.exceptions import RecordRejected
from connectors.mappings import MAPPINGS, Converted
from connectors.mappings.tax import INCOME_ITEMS

Convert = Callable[..., list[Converted]]
Reject = Callable[..., RecordRejected]

TAX = MAPPINGS["tax"]
ROW = {
    "电子税票号码": "0003244010600000125",
    "纳税人识别号": "445102198409268960",
    "纳税人名称": "罗艳",
    "所得项目": "工资薪金所得",
    "税款所属期起": "2026-10-01",
    "税款所属期止": "2026-10-31",
    "收入额": "30245.00",
    "实缴税额": "757.35",
    "扣缴义务人识别号": "9144011470K239T3E2",
    "入库日期": "2026-11-15",
    "税务机关代码": "14401060000",
    "版本号": "1",
    "作废标志": "0",
}


def with_(**changes: object) -> dict[str, object]:
    return {**ROW, **changes}


def test_a_payment_converts_to_the_canonical_record(convert: Convert) -> None:
    (converted,) = convert(TAX, ROW)
    record = converted.record
    assert converted.subject_id == "445102198409268960"
    assert record["envelope"]["source_record_id"] == "0003244010600000125"
    assert (record["envelope"]["op"], record["envelope"]["source_version"]) == ("upsert", 1)
    # No change time in the export: local midnight of 入库日期, 16:00 UTC the day before.
    assert record["envelope"]["occurred_at"] == dt.datetime(2026, 11, 14, 16, 0, tzinfo=dt.UTC)
    assert {key: value for key, value in record.items() if key != "envelope"} == {
        "citizen_id": "445102198409268960",
        "name": "罗艳",
        "income_item": "wages",
        "period_start": dt.date(2026, 10, 1),
        "period_end": dt.date(2026, 10, 31),
        "income": Decimal("30245.00"),
        "tax_paid": Decimal("757.35"),
        "withholding_agent": "9144011470K239T3E2",
        "credited_on": dt.date(2026, 11, 15),
        "tax_office": "14401060000",
    }


def test_all_nine_income_items(convert: Convert) -> None:
    symbols = [convert(TAX, with_(所得项目=item))[0].record["income_item"] for item in INCOME_ITEMS]
    assert len(set(symbols)) == 9


def test_void_flag_revokes_the_voucher(convert: Convert, reject: Reject) -> None:
    assert convert(TAX, with_(作废标志="1"))[0].record["envelope"]["op"] == "revoke"
    reject(TAX, with_(作废标志="2"), "unknown_code", "作废标志")


def test_self_declared_payment_has_no_withholding_agent(convert: Convert) -> None:
    assert convert(TAX, with_(扣缴义务人识别号=""))[0].record["withholding_agent"] is None


def test_a_refund_is_negative_tax_paid(convert: Convert) -> None:
    record = convert(TAX, with_(收入额="0.00", 实缴税额="-120.50"))[0].record
    assert (record["income"], record["tax_paid"]) == (Decimal("0.00"), Decimal("-120.50"))


@pytest.mark.parametrize("field", [name for name in ROW if name != "扣缴义务人识别号"])
def test_every_other_field_is_required(reject: Reject, field: str) -> None:
    reject(TAX, with_(**{field: ""}), "missing_field", field)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("44510219840926896", "id_length"),
        ("4451021984092689X0", "id_characters"),
        ("445102198402308960", "id_birth_date"),
        ("445102198409268961", "id_check_character"),
    ],
)
def test_taxpayer_is_a_citizen_id(reject: Reject, value: str, reason: str) -> None:
    error = reject(TAX, with_(纳税人识别号=value), reason, "纳税人识别号")
    assert error.message.startswith("税务 纳税人识别号 (taxpayer ID) ")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("9144011470K239T3E", "uscc_length"),
        ("9144011470K239T3EI", "uscc_characters"),
        ("9144011470K239T3E3", "uscc_check_character"),
    ],
)
def test_withholding_agent_is_a_uscc(reject: Reject, value: str, reason: str) -> None:
    reject(TAX, with_(扣缴义务人识别号=value), reason, "扣缴义务人识别号")


def test_unknown_income_item(reject: Reject) -> None:
    error = reject(TAX, with_(所得项目="工资"), "unknown_code", "所得项目")
    assert "工资薪金所得" in error.message


@pytest.mark.parametrize("field", ["税款所属期起", "税款所属期止", "入库日期"])
@pytest.mark.parametrize("value", ["20261001", "2026-10-1", "2026-13-01", "2026/10/01"])
def test_dates_are_yyyy_mm_dd(reject: Reject, field: str, value: str) -> None:
    reject(TAX, with_(**{field: value}), "bad_date", field)


def test_a_credit_date_with_no_instant_is_rejected_not_a_crash(reject: Reject) -> None:
    # Local midnight of 0001-01-01 is before datetime.min in UTC: an OverflowError stopped the connector.
    error = reject(TAX, with_(入库日期="0001-01-01"), "bad_date", "入库日期")
    assert "0001-01-01" in error.message


def test_period_start_not_after_end(reject: Reject) -> None:
    error = reject(TAX, with_(税款所属期起="2026-11-01"), "period_order", "税款所属期起")
    assert "税款所属期止" in error.message


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2026-10-02", "2026-10-31", "税款所属期起"),
        ("2026-10-01", "2026-10-30", "税款所属期止"),
        ("2024-02-01", "2024-02-28", "税款所属期止"),
    ],
)
def test_period_is_whole_months(reject: Reject, start: str, end: str, field: str) -> None:
    reject(TAX, with_(税款所属期起=start, 税款所属期止=end), "period_not_whole_months", field)


def test_multi_month_and_leap_february_periods(convert: Convert) -> None:
    assert convert(TAX, with_(税款所属期起="2026-05-01", 税款所属期止="2026-07-31"))
    assert convert(TAX, with_(税款所属期起="2024-02-01", 税款所属期止="2024-02-29"))


@pytest.mark.parametrize(
    "value", ["30245", "30245.0", "30245.000", "-1.00", "30,245.00", "３.00", " 1.00", "1e3"]
)
def test_income_is_non_negative_yuan_with_two_decimals(reject: Reject, value: str) -> None:
    error = reject(TAX, with_(收入额=value), "bad_amount", "收入额")
    assert error.message.startswith("税务 收入额 (income) must be a non-negative amount in yuan")


@pytest.mark.parametrize("value", ["757.3", "--1.00", "+1.00", "12345678901234567.00"])
def test_tax_paid_is_yuan_with_two_decimals(reject: Reject, value: str) -> None:
    reject(TAX, with_(实缴税额=value), "bad_amount", "实缴税额")


@pytest.mark.parametrize("value", ["1440106000", "144010600000", "1440106000A"])
def test_tax_office_is_eleven_digits(reject: Reject, value: str) -> None:
    reject(TAX, with_(税务机关代码=value), "bad_tax_office", "税务机关代码")


@pytest.mark.parametrize("value", ["00032440106000001", "000324401060000012500", "00032440106000012X"])
def test_voucher_is_eighteen_to_twenty_digits(reject: Reject, value: str) -> None:
    reject(TAX, with_(电子税票号码=value), "bad_voucher", "电子税票号码")


@pytest.mark.parametrize("value", ["000324401060000012", "00032440106000001250"])
def test_voucher_lengths_accepted(convert: Convert, value: str) -> None:
    assert convert(TAX, with_(电子税票号码=value))[0].record["envelope"]["source_record_id"] == value


@pytest.mark.parametrize("value", ["0", "1.5", "a"])
def test_version_is_a_positive_integer(reject: Reject, value: str) -> None:
    reject(TAX, with_(版本号=value), "bad_version", "版本号")
