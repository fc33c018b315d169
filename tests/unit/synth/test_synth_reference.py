"""The reference implementation: it reproduces samples/expected.json, and applies the definitions to
the letter on small hand-made cases (windows, versions, rounding, the x check character)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from connectors.synth.native import IdentityRow, NativeRows, SocialRow
from connectors.synth.reference import compute, decide, expected_from_directory

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "samples"
D = dt.date(2026, 11, 15)
PERSON = "440102195607099506"
OTHER = "44010220011028323X"


@pytest.fixture(scope="module")
def sample_expected() -> dict[str, object]:
    path = SAMPLES / "expected.json"
    assert path.exists(), f"the shared samples are missing: expected {path}"
    loaded: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def test_reproduces_every_fact_of_the_samples(sample_expected: dict[str, object]) -> None:
    expected = expected_from_directory(SAMPLES, dt.date.fromisoformat(str(sample_expected["reference_date"])))
    assert expected.subjects == sample_expected["subjects"]


def test_reproduces_every_decision_of_the_samples(sample_expected: dict[str, object]) -> None:
    expected = expected_from_directory(SAMPLES, dt.date.fromisoformat(str(sample_expected["reference_date"])))
    assert expected.decisions == sample_expected["decisions"]


def test_no_identity_record_means_unknown_and_manual_review() -> None:
    rows = NativeRows(tax=[_tax("1", PERSON, "2026-10-01", "2026-10-31", "100.00")])
    result = compute(rows, D)
    facts = result.subjects[PERSON]
    assert (facts["identity.status"], facts["identity.district"], facts["identity.age"]) == (
        "unknown",
        None,
        None,
    )
    assert set(result.decisions[PERSON].values()) == {"manual_review"}


def test_the_highest_version_wins_whatever_the_order() -> None:
    newer: IdentityRow = _identity(PERSON, version="2", status="1")
    older: IdentityRow = _identity(PERSON, version="1", status="0")
    for order in ([newer, older], [older, newer]):
        assert compute(NativeRows(identity=list(order)), D).subjects[PERSON]["identity.status"] == "deceased"


def test_age_is_full_years_on_the_reference_date() -> None:
    born_on_d = _identity("440103194611158881")  # 80 exactly on 2026-11-15
    born_day_after = _identity("440103194611162222")
    result = compute(NativeRows(identity=[born_on_d, born_day_after]), D)
    assert result.subjects["440103194611158881"]["identity.age"] == 80
    assert result.subjects["440103194611162222"]["identity.age"] == 79
    assert result.decisions["440103194611158881"]["longevity-allowance"] == "approved"


def test_tax_window_is_the_twelve_complete_months_before_m() -> None:
    rows = NativeRows(
        tax=[
            _tax("1", PERSON, "2025-10-01", "2025-10-31", "50.00"),  # M-13: outside
            _tax(
                "2", PERSON, "2025-10-01", "2025-12-31", "30.00"
            ),  # ends in the window, covers 2 months of it
            _tax("3", PERSON, "2026-11-01", "2026-11-30", "70.00"),  # month M: outside
            _tax("4", PERSON, "2026-03-01", "2026-03-31", "-20.00"),  # refund: counts in the total only
            _tax("5", PERSON, "2026-04-01", "2026-04-30", "99.00", void="1"),
        ]
    )
    facts = compute(rows, D).subjects[PERSON]
    assert facts["tax.months_paid_12"] == 2
    assert facts["tax.total_paid_12"] == "10.00"


def test_pension_counts_110_and_120_and_continuity_ends_at_m_minus_1() -> None:
    lines: list[SocialRow] = [
        _line(str(i), "110" if i % 2 else "120", month)
        for i, month in enumerate(("202608", "202609", "202610"))
    ]
    lines.append(_line("9", "110", "202606"))
    lines.append(_line("10", "310", "202609"))  # medical: M-1 missing, so not continuous
    lines.append(_line("11", "110", "202605", received="0"))
    facts = compute(NativeRows(social=lines), D).subjects[PERSON]
    assert facts["social.pension.continuous_months"] == 3
    assert facts["social.pension.months_paid_12"] == 4
    assert facts["social.pension.total_months"] == 4
    assert facts["social.medical.continuous_months"] == 0
    assert facts["social.current_employer"] == "91440101MA5CXXXX0X"


def test_lower_case_x_names_the_same_subject() -> None:
    rows = NativeRows(
        identity=[_identity(OTHER)], social=[_line("1", "110", "202610", subject=OTHER.lower())]
    )
    result = compute(rows, D)
    assert list(result.subjects) == [OTHER]
    assert result.subjects[OTHER]["social.pension.total_months"] == 1


def test_total_area_is_the_exact_sum_rounded_once_half_up() -> None:
    third = "440104198001010014"
    rows = NativeRows(
        property=[
            _title("A", f"{PERSON}:50;{OTHER}:50", "121.25"),  # 60.625 each
            _title("B", f"{PERSON}:50;{third}:50", "10.05"),  # 5.025 each
            _title("C", f"{PERSON}:100", "99.00", status="2"),  # transferred: counts for nothing
        ]
    )
    subjects = compute(rows, D).subjects
    assert subjects[PERSON]["property.total_area"] == "65.65"  # rounding each title first gives 65.66
    assert subjects[OTHER]["property.total_area"] == "60.63"  # half up, not half even (60.62)
    assert subjects[PERSON]["property.active_count"] == 2
    assert subjects[PERSON]["property.residential_count"] == 2


def test_residential_outside_the_city_does_not_block_public_housing() -> None:
    rows = NativeRows(
        identity=[_identity(PERSON)], property=[_title("A", f"{PERSON}:100", "80.00", district="440604")]
    )
    result = compute(rows, D)
    assert result.subjects[PERSON]["property.owns_residential_in_city"] is False
    assert result.decisions[PERSON]["public-rental-housing"] == "approved"


def test_decide_rejects_a_normal_person_registered_outside_the_city() -> None:
    facts = compute(NativeRows(identity=[_identity(PERSON, district="440604")]), D).subjects[PERSON]
    assert decide(facts) == {
        "longevity-allowance": "rejected",
        "public-rental-housing": "rejected",
        "talent-green-card": "rejected",
    }


def _identity(
    citizen_id: str, version: str = "1", status: str = "0", district: str = "440104"
) -> dict[str, str]:
    return {
        "公民身份号码": citizen_id,
        "姓名": "陈某",
        "性别": "1",
        "民族": "01",
        "出生日期": citizen_id[6:14],
        "户籍地址": "广州市越秀区某路1号",
        "户籍地行政区划": district,
        "户别": "1",
        "人员状态": status,
        "记录版本": version,
        "变更时间": "2024-03-05 10:00:00",
    }


def _tax(voucher: str, subject: str, start: str, end: str, paid: str, void: str = "0") -> dict[str, str]:
    return {
        "电子税票号码": voucher,
        "纳税人识别号": subject,
        "纳税人名称": "陈某",
        "所得项目": "工资薪金所得",
        "税款所属期起": start,
        "税款所属期止": end,
        "收入额": "10000.00",
        "实缴税额": paid,
        "扣缴义务人识别号": "",
        "入库日期": "2026-11-15",
        "税务机关代码": "14401060000",
        "版本号": "1",
        "作废标志": void,
    }


def _line(
    line_id: str, kind: str, month: str, received: str = "1", subject: str = PERSON
) -> dict[str, str | int]:
    return {
        "jfmxid": line_id,
        "aac002": subject,
        "aac003": "陈某",
        "aae140": kind,
        "aae002": month,
        "aab998": "91440101MA5CXXXX0X",
        "aab004": "广州某有限公司",
        "aae180": 800000,
        "dwjfje": 112000,
        "grjfje": 64000,
        "aae078": received,
        "yxbz": "1",
        "bbh": 1,
        "gxsj": f"{month[:4]}-{month[4:]}-20 09:00:00",
    }


def _title(number: str, qlr: str, area: str, status: str = "1", district: str = "440104") -> dict[str, str]:
    return {
        "bdcqzh": number,
        "bdcdyh": "4401040000000000000000000000",
        "qlr": qlr,
        "zl": "广州市越秀区某路1号",
        "xzqdm": district,
        "yt": "住宅",
        "mj": area,
        "djsj": "2020-01-01 10:00:00",
        "qszt": status,
        "dyzt": "0",
        "cfzt": "0",
        "bbh": "1",
        "gxsj": "2020-01-05 10:00:00",
    }
