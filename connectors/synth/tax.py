"""税务's payment vouchers for a person: wages withheld monthly, business income quarterly, the odd
other income, refunds from the annual settlement, and later versions (corrections, voids)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from connectors.synth.codes import (
    GUANGZHOU_DISTRICTS,
    INCOME_BUSINESS,
    INCOME_RENT,
    INCOME_ROYALTIES,
    INCOME_SERVICES,
    INCOME_WAGES,
)
from connectors.synth.context import Context
from connectors.synth.months import iso_day, last_day, period_texts
from connectors.synth.people import Person

_HISTORY = 15  # months of wage vouchers kept: the facts look back 12, the rest tests the window edge
# monthly withholding brackets: (upper bound of taxable income, rate %, quick deduction), yuan
_BRACKETS = ((3_000, 3, 0), (12_000, 10, 210), (25_000, 20, 1_410), (35_000, 25, 2_660), (55_000, 30, 4_410))
_TOP = (35, 7_160)

TaxRow = dict[str, str]


def tax_rows(context: Context, person: Person) -> list[TaxRow]:
    """The person's 税务 rows in file order."""
    rng = context.rng
    taxpayer = person.written_id(context, 0.3)
    rows: list[TaxRow] = []
    for job in person.jobs:
        agent, district = job.employer.uscc, job.employer.district
        for month in range(max(job.first, context.month - _HISTORY), job.last + 1):
            income = person.salary * 100 + int(rng.random() * 100)  # cents vary; random() is the cheap draw
            paid = _withheld(income - person.salary * 105 // 10 - 500_000 - 150_000)
            if paid > 0 or rng.random() < 0.3:  # a nil voucher now and then: tax paid 0 is not "paid"
                rows.append(
                    _row(
                        context, person, taxpayer, INCOME_WAGES, (month, month), income, paid, agent, district
                    )
                )
    home = person.district if person.district in GUANGZHOU_DISTRICTS else "440106"
    if person.self_employed:
        for start in range(context.month - 19, context.month - 2):
            if start % 3 == 0:  # calendar quarters, declared by the person (no withholding agent)
                income = rng.randrange(20_000_00, 200_000_00)
                rows.append(
                    _row(
                        context,
                        person,
                        taxpayer,
                        INCOME_BUSINESS,
                        (start, start + 2),
                        income,
                        income // 20,
                        "",
                        home,
                    )
                )
    if rows and rng.random() < 0.12:
        for _ in range(rng.randint(1, 3)):
            _other_income(context, person, taxpayer, rows, home)
    if rows and rng.random() < 0.15:
        _refund(context, person, taxpayer, rows, home)
    return _with_versions(context, rows)


def _other_income(context: Context, person: Person, taxpayer: str, rows: list[TaxRow], home: str) -> None:
    rng = context.rng
    month = context.month - rng.randint(1, _HISTORY)
    item = rng.choice((INCOME_SERVICES, INCOME_SERVICES, INCOME_ROYALTIES, INCOME_RENT))
    income = rng.randrange(1_000_00, 30_000_00)
    agent = "" if item == INCOME_RENT else rng.choice(context.employers).uscc
    rows.append(
        _row(context, person, taxpayer, item, (month, month), income, income * 16 // 100, agent, home)
    )


def _refund(context: Context, person: Person, taxpayer: str, rows: list[TaxRow], home: str) -> None:
    """The annual settlement (汇算清缴) refunds last year's over-withholding: a negative payment."""
    rng = context.rng
    year = context.reference_date.year - 1
    period = (year * 12, year * 12 + 11)
    if rng.random() < 0.3:  # or a single month's over-withholding refunded
        month = context.month - rng.randint(1, 12)
        period = (month, month)
    refund = -rng.randrange(50_00, 3_000_00)
    rows.append(_row(context, person, taxpayer, INCOME_WAGES, period, 0, refund, "", home))


def _with_versions(context: Context, rows: list[TaxRow]) -> list[TaxRow]:
    """Voids and corrections as version 2; some arrive before the voucher they change."""
    rng = context.rng
    if not rows:
        return rows
    changes: dict[int, TaxRow] = {}
    if rng.random() < 0.08:
        index = rng.randrange(len(rows))
        if rng.random() < 0.3:
            rows[index]["作废标志"] = "1"  # voided before it was ever sent
        else:
            changes[index] = {**rows[index], "作废标志": "1"}
    if rng.random() < 0.1:
        for index in rng.sample(range(len(rows)), min(len(rows), rng.randint(1, 2))):
            paid = _cents(rows[index]["实缴税额"])
            changes.setdefault(index, {**rows[index], "实缴税额": _yuan(paid // 2 if paid > 0 else paid * 2)})
    ordered: list[TaxRow] = []
    later: list[TaxRow] = []
    for index, row in enumerate(rows):
        change = changes.get(index)
        if change is None:
            ordered.append(row)
            continue
        change["版本号"] = "2"
        if rng.random() < 0.4:
            ordered += (change, row)
        else:
            ordered.append(row)
            later.append(change)
    return ordered + later


def _row(
    context: Context,
    person: Person,
    taxpayer: str,
    item: str,
    period: tuple[int, int],
    income: int,
    paid: int,
    agent: str,
    district: str,
) -> TaxRow:
    credited = _credited(period[1], context.reference_date)
    return {
        "电子税票号码": context.voucher(district),
        "纳税人识别号": taxpayer,
        "纳税人名称": person.name,
        "所得项目": item,
        "税款所属期起": period_texts(period[0])[0],
        "税款所属期止": period_texts(period[1])[1],
        "收入额": _yuan(income),
        "实缴税额": _yuan(paid),
        "扣缴义务人识别号": agent,
        "入库日期": credited,
        "税务机关代码": f"1{district}0000",
        "版本号": "1",
        "作废标志": "0",
    }


@lru_cache(maxsize=1024)
def _credited(month: int, reference_date: dt.date) -> str:
    """Credited to the treasury on the 15th of the next month, or by the reference date."""
    return iso_day(min(last_day(month) + dt.timedelta(days=15), reference_date))


def _withheld(taxable: int) -> int:
    """Monthly withholding on taxable income (fen) by the progressive table; 0 when nothing is taxable."""
    if taxable <= 0:
        return 0
    for bound, rate, quick in _BRACKETS:
        if taxable <= bound * 100:
            return taxable * rate // 100 - quick * 100
    return taxable * _TOP[0] // 100 - _TOP[1] * 100


def _yuan(fen: int) -> str:
    # exact: below 2**53 the double nearest to fen / 100 prints back as fen / 100 at two decimals
    return f"{fen / 100:.2f}"


def _cents(yuan: str) -> int:
    whole, _, cents = yuan.lstrip("-").partition(".")
    return (-1 if yuan.startswith("-") else 1) * (int(whole) * 100 + int(cents))
