"""Code tables the synthetic departments draw from: places, districts, insurance, uses, rare characters."""

from __future__ import annotations

GUANGZHOU_DISTRICTS = {
    "440103": "荔湾区",
    "440104": "越秀区",
    "440105": "海珠区",
    "440106": "天河区",
    "440111": "白云区",
    "440112": "黄埔区",
    "440113": "番禺区",
    "440114": "花都区",
    "440115": "南沙区",
    "440117": "从化区",
    "440118": "增城区",
}
"""Districts a person can be registered in today (户籍地行政区划, 不动产 xzqdm)."""

OTHER_DISTRICTS = {"440604": "佛山市禅城区", "440305": "深圳市南山区", "441302": "惠州市惠城区"}
"""Districts outside Guangzhou, for registrations and titles that are not in the city."""

# Where an ID was first issued, coded as it was then. Abolished codes (东山区, 芳村区, the four
# county-level cities) and the newer districts are all valid: the place code is never looked up.
ABOLISHED_PLACES = ("440102", "440107", "440181", "440182", "440183", "440184")
NEW_PLACES = ("440113", "440114", "440115", "440116", "440117", "440118")
OLD_PLACES = ("440103", "440104", "440105", "440106", "440111", "440112")
OUTSIDE_PLACES = ("440305", "445102", "440604", "430102", "360102", "450102", "510104", "110101", "420106")
BIRTH_PLACES = ABOLISHED_PLACES + NEW_PLACES + OLD_PLACES + OUTSIDE_PLACES

INCOME_WAGES = "工资薪金所得"
INCOME_SERVICES = "劳务报酬所得"
INCOME_BUSINESS = "经营所得"
INCOME_RENT = "财产租赁所得"
INCOME_ROYALTIES = "稿酬所得"

PENSION_ENTERPRISE = "110"
PENSION_INSTITUTION = "120"
# the other insurance types, each with its employer / personal rate in parts per ten thousand
INSURANCE_RATES = {
    "110": (1400, 800),
    "120": (1600, 800),
    "310": (550, 200),
    "210": (32, 20),
    "410": (20, 0),
    "510": (85, 0),
}

NON_RESIDENTIAL_USES = ("商业", "办公", "工业", "其他")

RARE_GIVEN_CHARACTERS = ("䶮", "𠮷", "堃", "㛃", "䲜", "𪚥", "𬌗", "𫓶", "𬀪", "𬸚", "喆", "赟", "犇", "淼")
"""Characters of real names outside GB 2312; 𠮷 㛃 䲜 𪚥 𬌗 𫓶 𬀪 𬸚 take GB18030's four-byte form."""

RARE_SURNAMES = ("𠮷", "䶮", "㐀")
"""Surnames that need the four-byte GB18030 form (or, 䶮, a GBK extension)."""

ADDRESS_SUFFIXES = ('之一,"东"座', '之二,"西"座', ",A栋", '"丽景"花园3座')
"""Tails that force RFC 4180 quoting in identity.csv: commas and double quotes."""
