"""The format rules of DEPARTMENTS.md, as the reference reader applies them to rows it reads back.

Each check returns a reason code for a row the exchange must dead-letter, or None for a good row.
They exist so that a generated directory with bad rows can be read back and compared with its
expected.json; they are written from the contract, not from the exchange's connectors.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal

from connectors.synth.native import (
    IDENTITY_COLUMNS,
    PROPERTY_COLUMNS,
    SOCIAL_AMOUNT_KEYS,
    SOCIAL_KEYS,
    TAX_COLUMNS,
    owners_of,
)
from exchange.subjects import USCC_ALPHABET, citizen_id_check_character, uscc_check_character

INCOME_ITEMS = frozenset(
    {
        "工资薪金所得",
        "劳务报酬所得",
        "稿酬所得",
        "特许权使用费所得",
        "经营所得",
        "利息股息红利所得",
        "财产租赁所得",
        "财产转让所得",
        "偶然所得",
    }
)
INSURANCE_TYPES = frozenset({"110", "120", "210", "310", "410", "510"})
USES = frozenset({"住宅", "商业", "办公", "工业", "其他"})

_ID = re.compile(r"[0-9]{17}[0-9Xx]")
_YUAN = re.compile(r"-?[0-9]+\.[0-9]{2}")
_AREA = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")
_SHARE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_POSITIVE = re.compile(r"[1-9][0-9]*")
_INTEGER = re.compile(r"-?[0-9]+")  # bbh: an integer, not necessarily positive (DEPARTMENTS.md)


def citizen_id_problem(value: str) -> str | None:
    """Why a 公民身份号码 is invalid (length, characters, birth date, check character), or None."""
    if not _ID.fullmatch(value):
        return "id_format"
    if _date(value[6:14], "%Y%m%d") is None:
        return "id_birth_date"
    if citizen_id_check_character(value[:17]) != value[17].upper():
        return "id_check_character"
    return None


def uscc_problem(value: str) -> str | None:
    """Why a 统一社会信用代码 is invalid (length, alphabet, GB 32100 check character), or None."""
    if len(value) != 18 or any(char not in USCC_ALPHABET for char in value):
        return "uscc_format"
    if uscc_check_character(value[:17]) != value[17]:
        return "uscc_check_character"
    return None


def identity_problem(row: Mapping[str, str]) -> str | None:
    """Why a 公安 row must be dead-lettered, or None."""
    if tuple(row) != IDENTITY_COLUMNS:
        return "columns"
    checks = (
        citizen_id_problem(row["公民身份号码"]),
        None if 1 <= len(row["姓名"]) <= 50 else "name",
        None if row["性别"] in {"0", "1", "2", "9"} else "sex",
        None if len(row["民族"]) == 2 and "01" <= row["民族"] <= "56" else "ethnicity",
        None if row["出生日期"] == row["公民身份号码"][6:14] else "birth_date",
        None if _digits(row["户籍地行政区划"], 6) else "district",
        None if row["户别"] in {"1", "2"} else "household_type",
        None if row["人员状态"] in {"0", "1", "2"} else "status",
        None if _POSITIVE.fullmatch(row["记录版本"]) else "version",
        None if _date(row["变更时间"], "%Y-%m-%d %H:%M:%S") else "changed_at",
    )
    return _first(checks)


def tax_problem(row: Mapping[str, str]) -> str | None:
    """Why a 税务 row must be dead-lettered, or None."""
    if tuple(row) != TAX_COLUMNS:
        return "columns"
    voucher = row["电子税票号码"]
    agent = row["扣缴义务人识别号"]
    checks = (
        None if voucher.isascii() and voucher.isdigit() and 18 <= len(voucher) <= 20 else "voucher",
        citizen_id_problem(row["纳税人识别号"]),
        None if row["纳税人名称"] else "name",
        None if row["所得项目"] in INCOME_ITEMS else "income_item",
        _period_problem(row["税款所属期起"], row["税款所属期止"]),
        None if _YUAN.fullmatch(row["收入额"]) and not row["收入额"].startswith("-") else "income",
        None if _YUAN.fullmatch(row["实缴税额"]) else "tax_paid",
        uscc_problem(agent) if agent else None,
        None if _date(row["入库日期"], "%Y-%m-%d") else "credited_on",
        None if _digits(row["税务机关代码"], 11) else "tax_office",
        None if _POSITIVE.fullmatch(row["版本号"]) else "version",
        None if row["作废标志"] in {"0", "1"} else "void_flag",
    )
    return _first(checks)


def social_problem(line: Mapping[str, object]) -> str | None:
    """Why a 人社 line (already parsed as a JSON object) must be dead-lettered, or None."""
    if set(line) != set(SOCIAL_KEYS):
        return "keys"
    for key in SOCIAL_AMOUNT_KEYS:
        amount = line[key]
        if type(amount) is not int or amount < 0:
            return "amount"
    texts = {key: line[key] for key in SOCIAL_KEYS if key not in (*SOCIAL_AMOUNT_KEYS, "bbh")}
    if any(not isinstance(value, str) for value in texts.values()):
        return "types"
    bbh = line["bbh"]
    if type(bbh) is not int:
        return "version"
    checks = (
        None if texts["jfmxid"] else "record_id",
        citizen_id_problem(str(texts["aac002"])),
        None if texts["aae140"] in INSURANCE_TYPES else "insurance_type",
        None if _date(f"{texts['aae002']}01", "%Y%m%d") and len(str(texts["aae002"])) == 6 else "month",
        uscc_problem(str(texts["aab998"])),
        None if texts["aae078"] in {"0", "1"} else "received_flag",
        None if texts["yxbz"] in {"0", "1"} else "validity",
        None if _date(str(texts["gxsj"]), "%Y-%m-%d %H:%M:%S") else "changed_at",
    )
    return _first(checks)


def property_problem(row: Mapping[str, str | None]) -> str | None:
    """Why a bdc_djb row state must be dead-lettered, or None."""
    if tuple(row) != PROPERTY_COLUMNS:
        return "columns"
    if any(row[column] is None for column in PROPERTY_COLUMNS if column != "zl"):
        return "missing"
    text = {column: row[column] or "" for column in PROPERTY_COLUMNS}
    checks = (
        None if text["bdcqzh"] else "record_id",
        None if len(text["bdcdyh"]) == 28 else "unit_number",
        _owners_problem(text["qlr"]),
        None if _digits(text["xzqdm"], 6) else "district",
        None if text["yt"] in USES else "use",
        None if _AREA.fullmatch(text["mj"]) and Decimal(text["mj"]) > 0 else "area",
        None if _date(text["djsj"], "%Y-%m-%d %H:%M:%S") else "registered_at",
        None if text["qszt"] in {"1", "2", "3"} else "title_status",
        None if text["dyzt"] in {"0", "1"} and text["cfzt"] in {"0", "1"} else "encumbrance",
        None if _INTEGER.fullmatch(text["bbh"]) else "version",
        None if _date(text["gxsj"], "%Y-%m-%d %H:%M:%S") else "changed_at",
    )
    return _first(checks)


def _owners_problem(qlr: str) -> str | None:
    if not qlr:
        return "owners"
    total = Decimal(0)
    for citizen_id, share in owners_of(qlr):
        problem = citizen_id_problem(citizen_id)
        if problem:
            return problem
        if not _SHARE.fullmatch(share) or Decimal(share) <= 0:
            return "share"
        total += Decimal(share)
    return None if total == 100 else "shares_sum"


def _period_problem(start_text: str, end_text: str) -> str | None:
    start, end = _date(start_text, "%Y-%m-%d"), _date(end_text, "%Y-%m-%d")
    if start is None or end is None:
        return "period_date"
    if start > end:
        return "period_order"
    if start.day != 1 or (end + dt.timedelta(days=1)).day != 1:
        return "period_months"
    return None


def _date(text: str, pattern: str) -> dt.datetime | None:
    # strptime accepts "2024-3-5" for "%Y-%m-%d": insist on the zero-padded length too
    if len(text) != len(dt.datetime(2000, 10, 10, 10, 10, 10).strftime(pattern)):
        return None
    try:
        return dt.datetime.strptime(text, pattern)
    except ValueError:
        return None


def _digits(text: str, length: int) -> bool:
    return len(text) == length and text.isascii() and text.isdigit()


def _first(problems: tuple[str | None, ...]) -> str | None:
    return next((problem for problem in problems if problem), None)
