"""公安's rows for a person: the current registration, and the versions that led to it."""

from __future__ import annotations

import datetime as dt

from connectors.synth.codes import GUANGZHOU_DISTRICTS, RARE_GIVEN_CHARACTERS, RARE_SURNAMES
from connectors.synth.context import Context
from connectors.synth.months import stamp
from connectors.synth.people import Person

_RARE = frozenset(RARE_GIVEN_CHARACTERS + RARE_SURNAMES)
_EARLIEST_CHANGE = dt.date(1995, 1, 1).toordinal()


def identity_rows(context: Context, person: Person) -> list[dict[str, str]]:
    """The person's 公安 rows in file order (a higher version sometimes first); none if unregistered."""
    if not person.registered:
        return []
    rng = context.rng
    final = {
        "公民身份号码": person.written_id(context, 0.5),
        "姓名": person.name,
        "性别": person.sex,
        "民族": person.ethnicity,
        "出生日期": person.citizen_id[6:14],
        "户籍地址": person.address,
        "户籍地行政区划": person.district,
        "户别": person.household_type,
        "人员状态": person.status,
    }
    states = [final]
    if person.status != "0":
        # deaths and moves are recorded on an existing normal registration
        states.insert(0, {**final, "人员状态": "0"})
    elif rng.random() < 0.12:
        earlier = rng.choice(tuple(GUANGZHOU_DISTRICTS))
        street = rng.choice(context.pools.streets)
        address = f"广州市{GUANGZHOU_DISTRICTS[earlier]}{street}{rng.randint(1, 999)}号"
        states.insert(0, {**final, "户籍地行政区划": earlier, "户籍地址": address})
    if any(char in _RARE for char in person.name) and rng.random() < 0.6:
        # before the rare character could be keyed in, the name was registered with a common one
        common = "".join("某" if char in _RARE else char for char in person.name)
        states.insert(0, {**states[0], "姓名": common})
    times = _change_times(context, person.born, len(states))
    rows = [
        {**state, "记录版本": str(version), "变更时间": time}
        for version, (state, time) in enumerate(zip(states, times, strict=True), 1)
    ]
    if len(rows) > 1 and rng.random() < 0.35:
        rows[-2], rows[-1] = rows[-1], rows[-2]
    return rows


def _change_times(context: Context, born: dt.date, count: int) -> list[str]:
    rng = context.rng
    last = context.reference_date.toordinal() - 1
    first = min(max(born.toordinal(), _EARLIEST_CHANGE), last)
    days = sorted(rng.randint(first, last) for _ in range(count))
    seconds = sorted(rng.randrange(86_400) for _ in range(count))
    return [
        stamp(dt.date.fromordinal(day), second // 3600, second // 60 % 60, second % 60)
        for day, second in zip(days, seconds, strict=True)
    ]
