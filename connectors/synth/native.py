"""The departments' rows as they export them: their own field names and their textual values.

The reference implementation and the generator share only these shapes, never the exchange's own
mappings, so that the reference stays an independent second opinion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

IdentityRow = Mapping[str, str]
"""A 公安 row: the CSV header names mapped to the cell text."""

TaxRow = Mapping[str, str]
"""A 税务 row: the CSV header names mapped to the cell text."""

SocialRow = Mapping[str, str | int]
"""A 人社 line: the indicator codes mapped to the JSON strings and integers."""

PropertyRow = Mapping[str, str]
"""A 不动产登记中心 row state of table bdc_djb, every column as text (bbh too)."""

DEPARTMENTS = ("identity", "tax", "social", "property")

IDENTITY_COLUMNS = (
    "公民身份号码",
    "姓名",
    "性别",
    "民族",
    "出生日期",
    "户籍地址",
    "户籍地行政区划",
    "户别",
    "人员状态",
    "记录版本",
    "变更时间",
)
TAX_COLUMNS = (
    "电子税票号码",
    "纳税人识别号",
    "纳税人名称",
    "所得项目",
    "税款所属期起",
    "税款所属期止",
    "收入额",
    "实缴税额",
    "扣缴义务人识别号",
    "入库日期",
    "税务机关代码",
    "版本号",
    "作废标志",
)
SOCIAL_KEYS = (
    "jfmxid",
    "aac002",
    "aac003",
    "aae140",
    "aae002",
    "aab998",
    "aab004",
    "aae180",
    "dwjfje",
    "grjfje",
    "aae078",
    "yxbz",
    "bbh",
    "gxsj",
)
SOCIAL_AMOUNT_KEYS = ("aae180", "dwjfje", "grjfje")
PROPERTY_COLUMNS = (
    "bdcqzh",
    "bdcdyh",
    "qlr",
    "zl",
    "xzqdm",
    "yt",
    "mj",
    "djsj",
    "qszt",
    "dyzt",
    "cfzt",
    "bbh",
    "gxsj",
)


@dataclass
class NativeRows:
    """A batch of good rows of the four departments: one household's, or a whole export's.

    Order does not matter to the facts (versions decide), so property holds every row state, the
    INSERTed ones and the ones after each UPDATE alike.
    """

    identity: list[IdentityRow] = field(default_factory=list)
    tax: list[TaxRow] = field(default_factory=list)
    social: list[SocialRow] = field(default_factory=list)
    property: list[PropertyRow] = field(default_factory=list)


def subject_of(citizen_id: str) -> str:
    """The subject a citizen ID names: departments write the check character x or X alike."""
    return citizen_id.upper()


def owners_of(qlr: str) -> list[tuple[str, str]]:
    """The (citizen ID, share) pairs of a 权利人 text such as ``440106199001011234:50;…``."""
    pairs = []
    for part in qlr.split(";"):
        citizen_id, _, share = part.partition(":")
        pairs.append((citizen_id, share))
    return pairs
