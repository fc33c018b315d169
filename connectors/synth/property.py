"""The registry's titles for a household: homes co-owned by its members, other property, old titles,
and the later changes (property_update.sql) the connector must pick up on a later poll.

Every INSERT's gxsj lies before `update_cutoff` and every UPDATE's after it, so a poll that has seen
all of property.sql has a watermark the updates are all above.
"""

from __future__ import annotations

import datetime as dt

from connectors.synth.codes import GUANGZHOU_DISTRICTS, NON_RESIDENTIAL_USES, OTHER_DISTRICTS
from connectors.synth.context import Context
from connectors.synth.months import stamp
from connectors.synth.people import Household, Person

_GUANGZHOU = tuple(GUANGZHOU_DISTRICTS)
_OUTSIDE = tuple(OTHER_DISTRICTS)
_SPLITS = {
    1: ((100,),),
    2: ((50, 50), (50, 50), (60, 40), (70, 30), (99, 1)),
    3: ((34, 33, 33), (40, 30, 30)),
}
_FIRST_REGISTRATION = dt.date(1998, 1, 1).toordinal()
UPDATE_WINDOW_DAYS = 60

TitleRow = dict[str, str]


def update_cutoff(reference_date: dt.date) -> dt.date:
    """Inserts are stamped before this day, updates on or after it."""
    return reference_date - dt.timedelta(days=UPDATE_WINDOW_DAYS)


def property_rows(context: Context, household: Household) -> tuple[list[TitleRow], list[TitleRow]]:
    """The household's INSERTed rows and, separately, the later row states its UPDATEs set."""
    rng = context.rng
    adults = [person for person in household.members if _age(context, person) >= 22]
    if not adults:
        return [], []
    titles: list[TitleRow] = []
    if rng.random() < 0.55:
        owners = adults[:3] if len(adults) >= 3 and rng.random() < 0.15 else adults[: rng.choice((1, 2, 2))]
        outside = household.district not in GUANGZHOU_DISTRICTS or rng.random() < 0.1
        titles.append(_title(context, owners, "住宅", _district(context, outside, household.district), "1"))
    if rng.random() < 0.12:
        use = rng.choice(NON_RESIDENTIAL_USES) if rng.random() < 0.7 else "住宅"
        titles.append(_title(context, [rng.choice(adults)], use, _district(context, use == "住宅", ""), "1"))
    if rng.random() < 0.1:
        # an earlier home, sold (2) or cancelled (3): present in the registry, counts for nothing
        status = "2" if rng.random() < 0.8 else "3"
        titles.append(_title(context, adults[:2], "住宅", rng.choice(_GUANGZHOU), status))
    updates: list[TitleRow] = []
    last = context.reference_date.toordinal() - 1
    for title in titles:
        if title["qszt"] == "1" and rng.random() < 0.22:
            # leave a day for a second change, which must come later still
            updates.append(_changed(context, title, last - 1))
            if rng.random() < 0.1:
                updates.append(_changed(context, updates[-1], last))
    return titles, updates


def _title(context: Context, owners: list[Person], use: str, district: str, status: str) -> TitleRow:
    rng = context.rng
    cutoff = update_cutoff(context.reference_date).toordinal()
    registered = dt.date.fromordinal(rng.randint(_FIRST_REGISTRATION, cutoff - 30))
    changed = dt.date.fromordinal(rng.randint(registered.toordinal() + 1, cutoff - 1))
    city = "广州市" if district in GUANGZHOU_DISTRICTS else OTHER_DISTRICTS[district][:3]
    area = rng.randrange(3_500, 18_000) if use == "住宅" else rng.randrange(1_000, 60_000)
    mortgaged = use != "工业" and rng.random() < 0.4
    return {
        "bdcqzh": context.title_number(registered.year, city),
        "bdcdyh": context.unit_number(district),
        "qlr": _owners(context, owners, rng.choice(_SPLITS[len(owners)])),
        "zl": _location(context, city, district),
        "xzqdm": district,
        "yt": use,
        "mj": f"{area // 100}.{area % 100:02d}",
        "djsj": stamp(registered, 10),
        "qszt": status,
        "dyzt": "1" if mortgaged else "0",
        "cfzt": "1" if rng.random() < 0.03 else "0",
        "bbh": "1",
        "gxsj": stamp(changed, 10),
    }


def _changed(context: Context, title: TitleRow, last: int) -> TitleRow:
    """A later state of a title: mortgaged or released, sold, cancelled, seized, re-shared, re-measured."""
    rng = context.rng
    kinds = ["transfer", "cancel", "seize", "area", "release" if title["dyzt"] == "1" else "mortgage"]
    owners = title["qlr"].split(";")
    if len(owners) > 1:
        kinds.append("reshare")
    kind = rng.choice(kinds)
    change: TitleRow = {}
    if kind == "transfer":
        change["qszt"] = "2"
    elif kind == "cancel":
        change["qszt"] = "3"
    elif kind == "seize":
        change["cfzt"] = "1"
    elif kind == "release":
        change["dyzt"] = "0"
    elif kind == "mortgage":
        change["dyzt"] = "1"
    elif kind == "area":
        area = int(title["mj"].replace(".", "")) + rng.randint(-300, 300)
        change["mj"] = f"{area // 100}.{area % 100:02d}"
    else:
        # one owner's share passes to the other (an inheritance, a gift): both stay owners
        ids = [owner.partition(":")[0] for owner in owners]
        change["qlr"] = ";".join(f"{i}:{s}" for i, s in zip(ids, rng.choice(_SPLITS[len(ids)]), strict=True))
    earliest = max(update_cutoff(context.reference_date).toordinal(), _day(title["gxsj"]) + 1)
    changed = dt.date.fromordinal(rng.randint(earliest, last))
    minute = rng.randrange(600)
    return {
        **title,
        **change,
        "bbh": str(int(title["bbh"]) + 1),
        "gxsj": stamp(changed, 8 + minute // 60, minute % 60),
    }


def _owners(context: Context, owners: list[Person], split: tuple[int, ...]) -> str:
    return ";".join(
        f"{owner.written_id(context, 0.3)}:{share}" for owner, share in zip(owners, split, strict=True)
    )


def _district(context: Context, outside: bool, home: str) -> str:
    if outside:
        return context.rng.choice(_OUTSIDE)
    return home if home in GUANGZHOU_DISTRICTS else context.rng.choice(_GUANGZHOU)


def _location(context: Context, city: str, district: str) -> str:
    rng = context.rng
    name = GUANGZHOU_DISTRICTS.get(district) or OTHER_DISTRICTS[district][3:]
    room = f"{rng.randint(1, 33)}{rng.randint(1, 12):02d}房"
    if rng.random() < 0.01:
        room = "'东'座" + room  # a quote the SQL must escape
    return f"{city}{name}{rng.choice(context.pools.streets)}{rng.randint(1, 999)}号{room}"


def _age(context: Context, person: Person) -> int:
    today = context.reference_date
    return today.year - person.born.year - ((today.month, today.day) < (person.born.month, person.born.day))


def _day(timestamp: str) -> int:
    return dt.date(int(timestamp[:4]), int(timestamp[5:7]), int(timestamp[8:10])).toordinal()
