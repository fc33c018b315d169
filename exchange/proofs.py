"""电子证明: the content of each proof type, drawn from the current records, and when a proof is superseded.

Pure functions over rows of the record tables' `_current` views (dicts of column → value): the
content of a proof of each type of the 证明事项 catalogue, the lineage and Kafka offsets a proof
reflects, and — given the latest version of each record it used — whether it was superseded by a
correction or a revocation. Signing lives at the edge (exchange.api.signing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from exchange.exceptions import ExchangeError
from exchange.facts import GUANGZHOU
from exchange.profile import INSURANCE_TYPES

Row = Mapping[str, Any]
Document = dict[str, Any]
ISSUER = "数据跑腿 Exchange"
NO_PROPERTY_ZH = "经查询，截至出具时，该权利人在广州市范围内无现势不动产登记记录。"
NO_PROPERTY_EN = "As of issue, the subject holds no current registered real estate title in Guangzhou."


class ProofUnavailableError(ExchangeError):
    """Raised when a proof cannot be issued because the exchange has no record it would certify."""


def _money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _in_period(start: dt.date, end: dt.date, period: tuple[dt.date, dt.date]) -> bool:
    return start <= period[1] and end >= period[0]


def tax_content(rows: Sequence[Row], period: tuple[dt.date, dt.date]) -> tuple[Document, list[Row]]:
    """个人所得税完税证明: every valid payment whose tax period overlaps `period`, with totals."""
    used = sorted(
        (row for row in rows if _in_period(row["period_start"], row["period_end"], period)),
        key=lambda row: (row["period_start"], row["source_record_id"]),
    )
    payments = [
        {
            "voucher": row["source_record_id"],
            "income_item": row["income_item"],
            "period_start": row["period_start"].isoformat(),
            "period_end": row["period_end"].isoformat(),
            "income": _money(row["income"]),
            "tax_paid": _money(row["tax_paid"]),
            "withholding_agent": row["withholding_agent"],
            "credited_on": row["credited_on"].isoformat(),
            "tax_office": row["tax_office"],
        }
        for row in used
    ]
    totals = {
        "payments": len(used),
        "income": _money(sum((row["income"] for row in used), Decimal(0))),
        "tax_paid": _money(sum((row["tax_paid"] for row in used), Decimal(0))),
    }
    return {"payments": payments, "totals": totals}, used


def social_content(rows: Sequence[Row], period: tuple[dt.date, dt.date]) -> tuple[Document, list[Row]]:
    """社会保险参保缴费证明: per insurance type, the received months in `period` and their employers."""
    # A month (its 1st in the tables) is in the period when it overlaps it, as a tax period is.
    start = period[0].replace(day=1)
    used = [row for row in rows if row["status"] == "paid" and start <= row["month"] <= period[1]]
    insurance = []
    for kind in INSURANCE_TYPES:
        mine = [row for row in used if row["insurance_type"] == kind]
        if not mine:
            continue
        months = sorted({row["month"].strftime("%Y-%m") for row in mine})
        employers = sorted({(row["employer_id"], row["employer_name"]) for row in mine})
        insurance.append(
            {
                "insurance_type": kind,
                "months": months,
                "month_count": len(months),
                "employers": [{"id": employer, "name": name} for employer, name in employers],
            }
        )
    return {"insurance": insurance}, used


def property_content(rows: Sequence[Row]) -> tuple[Document, list[Row]]:
    """不动产登记信息查询结果: the current titles; 无房证明 (a statement) when none is in the city."""
    used = sorted(
        (row for row in rows if row["status"] == "current"), key=lambda row: row["source_record_id"]
    )
    titles = [
        {
            "certificate_no": row["certificate_no"],
            "unit_no": row["unit_no"],
            "share_percent": _money(row["share"]),
            "location": row["location"],
            "district": row["district"],
            "use": row["use"],
            "area_m2": _money(row["area"]),
            "mortgaged": row["mortgaged"],
            "seized": row["seized"],
        }
        for row in used
    ]
    in_city = sum(1 for row in used if str(row["district"]).startswith(GUANGZHOU))
    content: Document = {"titles": titles, "titles_in_city": in_city}
    if in_city == 0:
        content["statement"] = {"zh": NO_PROPERTY_ZH, "en": NO_PROPERTY_EN}
    return content, used


def household_content(rows: Sequence[Row]) -> tuple[Document, list[Row]]:
    """户籍证明: the subject's registration; `ProofUnavailableError` when there is none."""
    if not rows:
        raise ProofUnavailableError("no 户籍 (identity) record for this subject: no 户籍证明 can be issued")
    row = max(rows, key=lambda row: (row["source_version"], row["source_record_id"]))
    fields = ("name", "citizen_id", "sex", "ethnicity", "address", "district", "status")
    content: Document = {name: row[name] for name in fields}
    content["birth_date"] = row["birth_date"].isoformat()
    return content, [row]


ContentBuilder = Callable[[Sequence[Row], tuple[dt.date, dt.date]], tuple[Document, list[Row]]]
CONTENT: Mapping[str, ContentBuilder] = {
    "tax-payment": tax_content,
    "social-insurance": social_content,
    "property-holdings": lambda rows, _period: property_content(rows),
    "household": lambda rows, _period: household_content(rows),
}


def lineage(dataset: str, rows: Iterable[Row]) -> list[Document]:
    """The record versions a proof used: dataset, record id, version, event id and log position."""
    return [
        {
            "dataset": dataset,
            "source_record_id": row["source_record_id"],
            "source_version": int(row["source_version"]),
            "event_id": str(row["event_id"]),
            "topic": row["topic"],
            "partition": int(row["kafka_partition"]),
            "offset": int(row["kafka_offset"]),
        }
        for row in rows
    ]


def offsets(read: Iterable[Mapping[str, Any]]) -> list[Document]:
    """The highest Kafka offset per topic and partition among `read` (topic, partition, offset): what a
    proof reflects when `read` holds every record version of the subject it was built from, those it
    left out (revoked, in arrears, outside the period) included; none for a subject with no records."""
    highest: dict[tuple[str, int], int] = {}
    for ref in read:
        place = (ref["topic"], ref["partition"])
        highest[place] = max(highest.get(place, -1), ref["offset"])
    return [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(highest.items())]


def default_period(today: dt.date) -> tuple[dt.date, dt.date]:
    """The last 12 complete calendar months before `today`: from the 1st of M-12 to the last day of M-1."""
    end = today.replace(day=1) - dt.timedelta(days=1)
    first = end.year * 12 + end.month - 1 - 11
    return dt.date(first // 12, first % 12 + 1, 1), end


def superseded_by(used: Sequence[Mapping[str, Any]], latest: Mapping[str, Row]) -> list[str]:
    """Event ids of the corrections and revocations of records a proof used, issued after it.

    `latest` maps each source record id to its highest version now (revocations included): a record
    is superseded when that version is higher than the one used, or when it is a revocation.
    """
    found = []
    for ref in used:
        now = latest.get(ref["source_record_id"])
        if now is None:
            continue
        if int(now["source_version"]) > ref["source_version"] or now["op"] == "revoke":
            found.append(str(now["event_id"]))
    return sorted(set(found))


def added_since(used: Sequence[Mapping[str, Any]], now: Sequence[Mapping[str, Any]]) -> list[str]:
    """Event ids of the record versions a proof issued now would use (`now`, as `lineage` gives them)
    that the proof did not use (`used`): records added, or corrected into what it certifies, since."""
    had = {(ref["dataset"], ref["source_record_id"], ref["source_version"]) for ref in used}
    return sorted(
        {
            str(ref["event_id"])
            for ref in now
            if (ref["dataset"], ref["source_record_id"], ref["source_version"]) not in had
        }
    )
