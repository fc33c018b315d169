"""Bad rows: each one breaks exactly one rule of DEPARTMENTS.md, so the exchange must dead-letter it.

Every bad row has a source record id of its own (a new voucher, line id, certificate number, or a
citizen ID nobody else has), so it can never be mistaken for a version of a good record and never
changes an expected fact. Kinds take turns per department so that a small run covers them all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import TypeVar

from connectors.synth.codes import BIRTH_PLACES, GUANGZHOU_DISTRICTS
from connectors.synth.context import Context
from connectors.synth.identifiers import wrong_check_character, wrong_uscc
from connectors.synth.months import first_day, iso_day, last_day, stamp, yyyymm
from connectors.synth.native import IDENTITY_COLUMNS, SOCIAL_KEYS, TAX_COLUMNS
from connectors.synth.people import Household
from connectors.synth.sql import insert_statement

_Cells = dict[str, str]
_T = TypeVar("_T")


class BadRows:
    """Decides how many bad rows each department is due and makes them, kind after kind."""

    def __init__(self, context: Context, rate: float) -> None:
        self._context = context
        self._rate = rate
        self._owed = {"identity": 0.0, "tax": 0.0, "social": 0.0, "property": 0.0}
        self._turn = {"identity": 0, "tax": 0, "social": 0, "property": 0}
        self.written = {"identity": 0, "tax": 0, "social": 0, "property": 0}
        self.kinds: dict[str, int] = {}

    def due(self, department: str, good_rows: int) -> int:
        """How many bad rows to add after `good_rows` good ones, keeping the running rate exact."""
        owed = self._owed[department] + good_rows * self._rate
        count = int(owed)
        self._owed[department] = owed - count
        return count

    def identity(self, household: Household, count: int) -> list[list[str]]:
        """公安 rows as cells; a column-count row has one cell too few."""
        return [self._make("identity", _IDENTITY_KINDS, household) for _ in range(count)]

    def tax(self, household: Household, count: int) -> list[list[str]]:
        """税务 rows as cells."""
        return [self._make("tax", _TAX_KINDS, household) for _ in range(count)]

    def social(self, household: Household, count: int) -> list[str]:
        """人社 lines as text."""
        return [self._make("social", _SOCIAL_KINDS, household) for _ in range(count)]

    def property(self, household: Household, count: int) -> list[str]:
        """INSERT statements."""
        return [self._make("property", _PROPERTY_KINDS, household) for _ in range(count)]

    def _make(
        self, department: str, kinds: dict[str, Callable[[Context, Household], _T]], household: Household
    ) -> _T:
        names = tuple(kinds)
        name = names[self._turn[department] % len(names)]
        self._turn[department] += 1
        self.written[department] += 1
        label = f"{department}.{name}"
        self.kinds[label] = self.kinds.get(label, 0) + 1
        return kinds[name](self._context, household)


def _put(column: str, value: str | Callable[[str], str]) -> Callable[[_Cells], None]:
    """A change that sets one column, to a value or to a function of its good value."""

    def change(row: _Cells) -> None:
        row[column] = value(row[column]) if callable(value) else value

    return change


def _drop(column: str) -> Callable[[_Cells], None]:
    """A change that leaves one column out: the row has one cell too few."""

    def change(row: _Cells) -> None:
        del row[column]

    return change


# 公安 ------------------------------------------------------------------------------------------------


def _identity_base(context: Context) -> _Cells:
    """A good row for a citizen ID no one else has; the kinds below break one thing in it."""
    rng = context.rng
    born = dt.date.fromordinal(rng.randint(dt.date(1940, 1, 1).toordinal(), dt.date(2010, 1, 1).toordinal()))
    male = rng.random() < 0.5
    citizen_id = context.ids.allocate(rng.choice(BIRTH_PLACES), born, male)
    return {
        "公民身份号码": citizen_id,
        "姓名": rng.choice(context.pools.surnames) + rng.choice(context.pools.male_given),
        "性别": "1" if male else "2",
        "民族": "01",
        "出生日期": citizen_id[6:14],
        "户籍地址": "广州市越秀区北京路1号",
        "户籍地行政区划": rng.choice(tuple(GUANGZHOU_DISTRICTS)),
        "户别": "1",
        "人员状态": "0",
        "记录版本": "1",
        "变更时间": stamp(context.reference_date - dt.timedelta(days=400), 10),
    }


def _identity(change: Callable[[_Cells], None]) -> Callable[[Context, Household], list[str]]:
    def make(context: Context, household: Household) -> list[str]:
        row = _identity_base(context)
        change(row)
        return [row[column] for column in IDENTITY_COLUMNS if column in row]

    return make


def _day_after(yyyymmdd: str) -> str:
    born = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    return (born + dt.timedelta(days=1)).strftime("%Y%m%d")


_IDENTITY_KINDS: dict[str, Callable[[Context, Household], list[str]]] = {
    "check_character": _identity(_put("公民身份号码", wrong_check_character)),
    "birth_date_mismatch": _identity(_put("出生日期", _day_after)),
    "unknown_sex": _identity(_put("性别", "5")),
    "unknown_ethnicity": _identity(_put("民族", "57")),
    "unknown_status": _identity(_put("人员状态", "4")),
    "malformed_time": _identity(_put("变更时间", "2024-02-30 10:00:00")),
    "missing_name": _identity(_put("姓名", "")),
    "malformed_district": _identity(_put("户籍地行政区划", "4401")),
    "zero_version": _identity(_put("记录版本", "0")),
    "column_count": _identity(_drop("户别")),
}


# 税务 ------------------------------------------------------------------------------------------------


def _tax_base(context: Context, household: Household) -> _Cells:
    """A wage voucher of a member of the household under a new voucher number."""
    rng = context.rng
    person = rng.choice(household.members)
    employer = rng.choice(context.employers)
    month = context.month - rng.randint(1, 12)
    return {
        "电子税票号码": context.voucher(employer.district),
        "纳税人识别号": person.citizen_id,
        "纳税人名称": person.name,
        "所得项目": "工资薪金所得",
        "税款所属期起": iso_day(first_day(month)),
        "税款所属期止": iso_day(last_day(month)),
        "收入额": "20000.00",
        "实缴税额": "1290.00",
        "扣缴义务人识别号": employer.uscc,
        "入库日期": iso_day(last_day(month) + dt.timedelta(days=15)),
        "税务机关代码": f"1{employer.district}0000",
        "版本号": "1",
        "作废标志": "0",
    }


def _tax(change: Callable[[_Cells], None]) -> Callable[[Context, Household], list[str]]:
    def make(context: Context, household: Household) -> list[str]:
        row = _tax_base(context, household)
        change(row)
        return [row[column] for column in TAX_COLUMNS if column in row]

    return make


def _reverse_period(row: _Cells) -> None:
    # the period starts on the first day of the month after it ends
    row["税款所属期起"] = iso_day(dt.date.fromisoformat(row["税款所属期止"]) + dt.timedelta(days=1))


_TAX_KINDS: dict[str, Callable[[Context, Household], list[str]]] = {
    "check_character": _tax(_put("纳税人识别号", wrong_check_character)),
    "unknown_income_item": _tax(_put("所得项目", "彩票中奖所得")),
    "malformed_date": _tax(_put("税款所属期止", lambda end: end[:8] + "32")),
    "period_reversed": _tax(_reverse_period),
    "partial_month": _tax(_put("税款所属期起", lambda start: start[:8] + "05")),
    "amount_format": _tax(_put("实缴税额", "1290.5")),
    "agent_check_character": _tax(_put("扣缴义务人识别号", wrong_uscc)),
    "unknown_void_flag": _tax(_put("作废标志", "2")),
    "missing_credit_date": _tax(_put("入库日期", "")),
    "column_count": _tax(_drop("税务机关代码")),
}


# 人社 ------------------------------------------------------------------------------------------------


def _social_base(context: Context, household: Household) -> dict[str, object]:
    rng = context.rng
    person = rng.choice(household.members)
    employer = rng.choice(context.employers)
    month = yyyymm(context.month - rng.randint(1, 12))
    return {
        "jfmxid": context.line_id(),
        "aac002": person.citizen_id,
        "aac003": person.name,
        "aae140": "110",
        "aae002": month,
        "aab998": employer.uscc,
        "aab004": employer.name,
        "aae180": 800000,
        "dwjfje": 112000,
        "grjfje": 64000,
        "aae078": "1",
        "yxbz": "1",
        "bbh": 1,
        "gxsj": f"{month[:4]}-{month[4:]}-20 09:00:00",
    }


def _social(change: Callable[[dict[str, object]], object]) -> Callable[[Context, Household], str]:
    def make(context: Context, household: Household) -> str:
        line = _social_base(context, household)
        change(line)
        return json.dumps({key: line[key] for key in SOCIAL_KEYS if key in line}, ensure_ascii=False)

    return make


def _unparseable(context: Context, household: Household) -> str:
    text = _social(lambda line: None)(context, household)
    return text[: len(text) // 2]  # a line cut short, as a crashed export leaves it


_SOCIAL_KINDS: dict[str, Callable[[Context, Household], str]] = {
    "amount_as_string": _social(lambda line: line.update(aae180="800000")),
    "amount_fraction": _social(lambda line: line.update(dwjfje=1120.5)),
    "negative_amount": _social(lambda line: line.update(grjfje=-64000)),
    "unknown_insurance_type": _social(lambda line: line.update(aae140="999")),
    "malformed_month": _social(lambda line: line.update(aae002=str(line["aae002"])[:4] + "13")),
    "check_character": _social(lambda line: line.update(aac002=wrong_check_character(str(line["aac002"])))),
    "employer_check_character": _social(lambda line: line.update(aab998=wrong_uscc(str(line["aab998"])))),
    "missing_field": _social(lambda line: line.pop("aae078")),  # the line lacks a key
    "unknown_validity": _social(lambda line: line.update(yxbz="2")),
    "unparseable_json": _unparseable,
}


# 不动产登记中心 -----------------------------------------------------------------------------------


def _property_base(context: Context, household: Household) -> _Cells:
    rng = context.rng
    person = rng.choice(household.members)
    district = rng.choice(tuple(GUANGZHOU_DISTRICTS))
    registered = context.reference_date - dt.timedelta(days=rng.randint(400, 4000))
    return {
        "bdcqzh": context.title_number(registered.year, "广州市"),
        "bdcdyh": context.unit_number(district),
        "qlr": f"{person.citizen_id}:100",
        "zl": f"广州市{GUANGZHOU_DISTRICTS[district]}{rng.choice(context.pools.streets)}8号",
        "xzqdm": district,
        "yt": "住宅",
        "mj": "88.00",
        "djsj": stamp(registered, 10),
        "qszt": "1",
        "dyzt": "0",
        "cfzt": "0",
        "bbh": "1",
        "gxsj": stamp(registered + dt.timedelta(days=3), 10),
    }


def _property(change: Callable[[_Cells], None]) -> Callable[[Context, Household], str]:
    # only values PostgreSQL accepts into bdc_djb: the table's types must not reject the load
    def make(context: Context, household: Household) -> str:
        row = _property_base(context, household)
        change(row)
        return insert_statement(row)

    return make


_PROPERTY_KINDS: dict[str, Callable[[Context, Household], str]] = {
    "shares_not_100": _property(_put("qlr", lambda qlr: qlr.replace(":100", ":60"))),
    "unknown_use": _property(_put("yt", "车位")),
    "owner_check_character": _property(_put("qlr", lambda qlr: wrong_check_character(qlr[:18]) + qlr[18:])),
    "zero_area": _property(_put("mj", "0.00")),
    "unknown_title_status": _property(_put("qszt", "5")),
    "unknown_mortgage_flag": _property(_put("dyzt", "2")),
    "missing_owners": _property(_put("qlr", "")),
    "malformed_district": _property(_put("xzqdm", "44010A")),
}
