"""A deliberately simple reference implementation of the facts and 秒批 decisions of DEPARTMENTS.md.

It works on the departments' native rows (their own field names and values), resolves versions
the obvious way — per source record id the highest version wins, whatever the order — and then
applies the definitions to the letter. It shares no code with the exchange's profile or facts, so
a disagreement between the two points at a bug in one of them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from connectors.synth.native import (
    IdentityRow,
    NativeRows,
    PropertyRow,
    SocialRow,
    TaxRow,
    owners_of,
    subject_of,
)

Fact = str | int | bool | None
Facts = dict[str, Fact]

ITEMS = ("longevity-allowance", "public-rental-housing", "talent-green-card")
SOCIAL_KINDS: dict[str | int, str] = {
    "110": "pension",
    "120": "pension",
    "310": "medical",
    "210": "unemployment",
    "410": "injury",
    "510": "maternity",
}
_KIND_NAMES = ("injury", "maternity", "medical", "pension", "unemployment")
_STATUS = {"0": "normal", "1": "deceased", "2": "moved_out"}
_CENT = Decimal("0.01")

_Row = TypeVar("_Row", bound=Mapping[str, str | int])


@dataclass(frozen=True)
class Expected:
    """Every fact of every subject, and the decision of every service item for each of them."""

    subjects: dict[str, Facts]
    decisions: dict[str, dict[str, str]]


def compute(rows: NativeRows, reference_date: dt.date) -> Expected:
    """The facts and decisions of every subject named by the rows, on the reference date."""
    subjects = facts_of(rows, reference_date)
    return Expected(subjects, {subject: decide(facts) for subject, facts in subjects.items()})


def expected_from_directory(directory: Path, reference_date: dt.date) -> Expected:
    """Read the four exports of a directory (bad rows left out, as the exchange dead-letters them)."""
    from connectors.synth.exports import read_exports  # the reader needs this module's types

    return compute(read_exports(directory).rows, reference_date)


def decide(facts: Facts) -> dict[str, str]:
    """The 秒批 decision of each service item for one subject's facts."""
    if facts["identity.status"] == "unknown":
        return dict.fromkeys(ITEMS, "manual_review")
    normal = facts["identity.status"] == "normal"
    district = facts["identity.district"]
    in_city = isinstance(district, str) and district.startswith("4401")
    age = facts["identity.age"]
    talent = (
        normal
        and _number(facts["social.pension.continuous_months"]) >= 6
        and _number(facts["tax.months_paid_12"]) >= 6
    )
    housing = normal and in_city and facts["property.owns_residential_in_city"] is False
    longevity = normal and in_city and isinstance(age, int) and age >= 80
    return {
        "longevity-allowance": _verdict(longevity),
        "public-rental-housing": _verdict(housing),
        "talent-green-card": _verdict(talent),
    }


def facts_of(rows: NativeRows, reference_date: dt.date) -> dict[str, Facts]:
    """Every fact of every subject that appears in any of the rows (in any version)."""
    identity = _latest(rows.identity, "公民身份号码", "记录版本", upper=True)
    tax_by: dict[str, list[TaxRow]] = defaultdict(list)
    for row in _latest(rows.tax, "电子税票号码", "版本号").values():
        tax_by[subject_of(row["纳税人识别号"])].append(row)
    social_by: dict[str, list[SocialRow]] = defaultdict(list)
    for line in _latest(rows.social, "jfmxid", "bbh").values():
        social_by[str(line["aac002"])].append(line)
    for written in [written for written in social_by if written != subject_of(written)]:
        social_by[subject_of(written)] += social_by.pop(written)  # 44…x and 44…X are one subject
    titles_by: dict[str, list[PropertyRow]] = defaultdict(list)
    for title in _latest(rows.property, "bdcqzh", "bbh").values():
        for owner in dict.fromkeys(subject_of(owner) for owner, _ in owners_of(title["qlr"])):
            titles_by[owner].append(title)

    now = _month(reference_date.year, reference_date.month)
    window = range(now - 12, now)
    result: dict[str, Facts] = {}
    for subject in sorted(_subjects(rows)):
        facts: Facts = {}
        facts.update(_identity_facts(identity.get(subject), reference_date))
        facts.update(_tax_facts(tax_by.get(subject, []), window))
        facts.update(_social_facts(social_by.get(subject, []), _months_back(now)))
        facts.update(_property_facts(subject, titles_by.get(subject, [])))
        result[subject] = dict(sorted(facts.items()))
    return result


def _identity_facts(row: IdentityRow | None, reference_date: dt.date) -> Facts:
    if row is None:
        return {"identity.status": "unknown", "identity.district": None, "identity.age": None}
    born = row["出生日期"]
    year, month, day = int(born[:4]), int(born[4:6]), int(born[6:8])
    age = reference_date.year - year - ((reference_date.month, reference_date.day) < (month, day))
    return {
        "identity.status": _STATUS[row["人员状态"]],
        "identity.district": row["户籍地行政区划"],
        "identity.age": age,
    }


def _tax_facts(records: list[TaxRow], window: range) -> Facts:
    paid_months: set[int] = set()
    total = Decimal(0)
    for row in records:
        if row["作废标志"] != "0":
            continue
        start, end = _date_month(row["税款所属期起"]), _date_month(row["税款所属期止"])
        paid = Decimal(row["实缴税额"])
        if paid > 0:
            paid_months.update(month for month in range(start, end + 1) if month in window)
        if end in window:
            total += paid
    return {"tax.months_paid_12": len(paid_months), "tax.total_paid_12": f"{total.quantize(_CENT)}"}


def _social_facts(records: list[SocialRow], months_back: tuple[str, ...]) -> Facts:
    # months are compared as 人社 writes them, "YYYYMM" text, which also sorts in time order
    received: dict[str, set[str]] = {kind: set() for kind in _KIND_NAMES}
    for row in records:
        if row["yxbz"] == "1" and row["aae078"] == "1":
            received[SOCIAL_KINDS[row["aae140"]]].add(str(row["aae002"]))
    window = set(months_back[:12])
    facts: Facts = {}
    for kind in _KIND_NAMES:
        months = received[kind]
        run = 0
        while run < len(months_back) and months_back[run] in months:
            run += 1
        facts[f"social.{kind}.continuous_months"] = run
        facts[f"social.{kind}.months_paid_12"] = len(months & window)
        facts[f"social.{kind}.total_months"] = len(months)
    facts["social.current_employer"] = _current_employer(records, received["pension"])
    return facts


def _current_employer(records: list[SocialRow], pension_months: set[str]) -> str | None:
    """The employer of the latest received pension month (its latest line if there are several)."""
    if not pension_months:
        return None
    latest = max(pension_months)
    lines = [
        (str(row["gxsj"]), str(row["jfmxid"]), str(row["aab998"]))
        for row in records
        if row["aae002"] == latest
        and SOCIAL_KINDS[row["aae140"]] == "pension"
        and row["yxbz"] == "1"
        and row["aae078"] == "1"
    ]
    return max(lines)[2]


@lru_cache(maxsize=16)
def _months_back(now: int) -> tuple[str, ...]:
    """M-1, M-2, … back 100 years, as YYYYMM: the last 12 months are the first 12."""
    return tuple(_yyyymm(month) for month in range(now - 1, now - 1201, -1))


def _property_facts(subject: str, titles: list[PropertyRow]) -> Facts:
    active = residential = 0
    in_city = encumbered = False
    area = Decimal(0)
    for row in titles:
        if row["qszt"] != "1":
            continue
        for owner, share in owners_of(row["qlr"]):
            if subject_of(owner) != subject:
                continue
            active += 1
            area += Decimal(row["mj"]) * Decimal(share) / 100
            encumbered = encumbered or row["dyzt"] == "1" or row["cfzt"] == "1"
            if row["yt"] == "住宅":
                residential += 1
                in_city = in_city or row["xzqdm"].startswith("4401")
    return {
        "property.active_count": active,
        "property.residential_count": residential,
        "property.owns_residential_in_city": in_city,
        # the exact sum, rounded once, half up (四舍五入) — never per title
        "property.total_area": f"{area.quantize(_CENT, rounding=ROUND_HALF_UP)}",
        "property.encumbered": encumbered,
    }


def _subjects(rows: NativeRows) -> set[str]:
    written = {row["公民身份号码"] for row in rows.identity}
    written.update(row["纳税人识别号"] for row in rows.tax)
    written.update(str(row["aac002"]) for row in rows.social)
    for row in rows.property:
        written.update(owner for owner, _ in owners_of(row["qlr"]))
    return {subject_of(citizen_id) for citizen_id in written}


def _latest(rows: Iterable[_Row], record_id: str, version: str, upper: bool = False) -> dict[str, _Row]:
    """Per source record id, the row of the highest version, whatever order the rows came in."""
    latest: dict[str, _Row] = {}
    for row in rows:
        key = str(row[record_id])
        if upper:
            key = key.upper()
        held = latest.get(key)
        if held is None or int(row[version]) > int(held[version]):
            latest[key] = row
    return latest


def _month(year: int, month: int) -> int:
    return year * 12 + month - 1


def _yyyymm(month: int) -> str:
    year, zero_based = divmod(month, 12)
    return f"{year:04d}{zero_based + 1:02d}"


@lru_cache(maxsize=8192)
def _date_month(text: str) -> int:
    return _month(int(text[:4]), int(text[5:7]))


def _number(fact: Fact) -> int:
    return fact if isinstance(fact, int) and not isinstance(fact, bool) else 0


def _verdict(approved: bool) -> str:
    return "approved" if approved else "rejected"
