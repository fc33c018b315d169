"""税务 — 个人所得税 payments: the tax CSV (GB18030) → `tax.payment` records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from connectors.mappings.base import Converted, Mapping
from connectors.mappings.fields import code, digits, native_fields, text, version
from connectors.mappings.ids import citizen_id, optional_uscc
from connectors.mappings.money import yuan
from connectors.mappings.times import iso_date, midnight_of

FIELDS = native_fields(
    "税务",
    {
        "电子税票号码": "payment voucher",
        "纳税人识别号": "taxpayer ID",
        "纳税人名称": "taxpayer name",
        "所得项目": "income item",
        "税款所属期起": "tax period start",
        "税款所属期止": "tax period end",
        "收入额": "income",
        "实缴税额": "tax paid",
        "扣缴义务人识别号": "withholding agent",
        "入库日期": "date credited",
        "税务机关代码": "tax office",
        "版本号": "version",
        "作废标志": "void flag",
    },
)
# The nine items of the individual income tax law, in the law's order.
INCOME_ITEMS = {
    "工资薪金所得": "wages",
    "劳务报酬所得": "service_remuneration",
    "稿酬所得": "author_remuneration",
    "特许权使用费所得": "royalties",
    "经营所得": "business",
    "利息股息红利所得": "interest_dividends",
    "财产租赁所得": "property_lease",
    "财产转让所得": "property_transfer",
    "偶然所得": "incidental",
}
VOID_FLAGS = {"0": False, "1": True}
_ONE_DAY = dt.timedelta(days=1)


class TaxMapping(Mapping):
    """税务's payment vouchers (电子税票); a voided voucher (作废标志 1) is a revoke."""

    department = "tax"
    dataset = "tax.payment"
    columns = tuple(FIELDS)

    def convert(self, fields: dict[str, Any], *, published_at: dt.datetime, trace_id: str) -> list[Converted]:
        """One `tax.payment` record for the taxpayer; see `Mapping.convert`.

        The export has no time of change, so `occurred_at` is local midnight at the start of 入库日期,
        the day the payment was credited to the treasury.
        """
        subject = citizen_id(fields, FIELDS["纳税人识别号"])
        start, end = _period(fields)
        credited_on = iso_date(fields, FIELDS["入库日期"])
        record = {
            "envelope": self.envelope(
                digits(fields, FIELDS["电子税票号码"], range(18, 21), "bad_voucher", "18 to 20 digits"),
                version(fields, FIELDS["版本号"]),
                revoked=code(fields, FIELDS["作废标志"], VOID_FLAGS),
                occurred_at=midnight_of(fields, FIELDS["入库日期"], credited_on),
                published_at=published_at,
                trace_id=trace_id,
            ),
            "citizen_id": subject,
            "name": text(fields, FIELDS["纳税人名称"]),
            "income_item": code(fields, FIELDS["所得项目"], INCOME_ITEMS),
            "period_start": start,
            "period_end": end,
            "income": yuan(fields, FIELDS["收入额"]),
            "tax_paid": yuan(fields, FIELDS["实缴税额"], negative=True),
            "withholding_agent": optional_uscc(fields, FIELDS["扣缴义务人识别号"]),
            "credited_on": credited_on,
            "tax_office": digits(fields, FIELDS["税务机关代码"], (11,), "bad_tax_office", "11 digits"),
        }
        return [Converted(subject, record)]


def _period(fields: dict[str, Any]) -> tuple[dt.date, dt.date]:
    """税款所属期起 and 止: whole months, the start not after the end."""
    start_field, end_field = FIELDS["税款所属期起"], FIELDS["税款所属期止"]
    start, end = iso_date(fields, start_field), iso_date(fields, end_field)
    if start > end:
        raise start_field.rejected("period_order", f"{start} is after {end_field.name} {end}")
    if start.day != 1:
        raise start_field.rejected("period_not_whole_months", f"{start} is not the first day of a month")
    if end != dt.date.max and (end + _ONE_DAY).day != 1:
        raise end_field.rejected("period_not_whole_months", f"{end} is not the last day of a month")
    return start, end
