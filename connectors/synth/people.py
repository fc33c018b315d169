"""Households of synthetic people: who they are, where they are registered, where they work.

A household is the unit of generation: its members share an address, co-own titles, and are
written out and forgotten before the next household is made, so memory does not grow with the
population.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from connectors.synth.codes import (
    ABOLISHED_PLACES,
    ADDRESS_SUFFIXES,
    GUANGZHOU_DISTRICTS,
    NEW_PLACES,
    OLD_PLACES,
    OTHER_DISTRICTS,
    OUTSIDE_PLACES,
    RARE_GIVEN_CHARACTERS,
    RARE_SURNAMES,
)
from connectors.synth.context import Context, Employer

_GUANGZHOU = tuple(GUANGZHOU_DISTRICTS)
_OUTSIDE = tuple(OTHER_DISTRICTS)
_KINDS = ("single", "couple", "elderly", "three", "migrant")
_KIND_WEIGHTS = (22, 52, 68, 90, 100)  # cumulative: 22 % single, 30 % couples, 16 % elderly, …
_BORN_BEFORE_2000 = OLD_PLACES + ABOLISHED_PLACES  # codes abolished since were still in use then
_BORN_SINCE_2000 = OLD_PLACES + NEW_PLACES


@dataclass(slots=True)
class Job:
    """Months (indices) with one employer, first to last inclusive."""

    employer: Employer
    first: int
    last: int


@dataclass(slots=True)
class Person:
    """One synthetic person; `status` and `district` are the final (latest) identity values."""

    citizen_id: str
    name: str
    sex: str
    born: dt.date
    ethnicity: str
    address: str
    district: str
    household_type: str
    status: str
    registered: bool
    salary: int = 0
    jobs: list[Job] = field(default_factory=list)
    self_employed: bool = False

    def written_id(self, context: Context, lower_x_chance: float) -> str:
        """The ID as a department writes it: a final X sometimes in lower case."""
        if self.citizen_id[17] == "X" and context.rng.random() < lower_x_chance:
            return self.citizen_id[:17] + "x"
        return self.citizen_id


@dataclass(slots=True)
class Household:
    """People living together: the unit the generator makes, writes and forgets."""

    members: list[Person]
    district: str


def make_household(context: Context, room: int) -> Household:
    """A new household of at most `room` people."""
    rng = context.rng
    kind = rng.choices(_KINDS, cum_weights=_KIND_WEIGHTS)[0]
    district = rng.choice(_GUANGZHOU) if rng.random() < 0.92 else rng.choice(_OUTSIDE)
    address = _address(context, district)
    surname = _surname(context)
    registered = kind != "migrant"
    if kind == "single":
        ages = [rng.randint(19, 64)]
        registered = rng.random() > 0.08
    elif kind == "elderly":
        base = rng.randint(68, 100)
        ages = [base] if rng.random() < 0.4 else [base, max(60, base + rng.randint(-6, 3))]
    elif kind == "migrant":
        # no children: an unregistered child would have no record in any department
        base = rng.randint(19, 50)
        ages = [base] if rng.random() < 0.5 else [base, max(20, base + rng.randint(-5, 5))]
    else:
        base = rng.randint(25, 58)
        ages = [base, max(20, base + rng.randint(-5, 5))]
        ages += [rng.randint(0, base - 22) for _ in range(rng.choice((0, 1, 1, 2)))]
        if kind == "three":
            ages += [min(104, base + rng.randint(24, 36)) for _ in range(rng.choice((1, 2)))]
    members = []
    for position, age in enumerate(ages[:room]):
        male = position % 2 == 0 if position < 2 or age > 60 else rng.random() < 0.5
        # a wife keeps her own surname; children and the husband's parents share his
        own_surname = surname if position != 1 else _surname(context)
        members.append(_person(context, age, male, own_surname, address, district, registered))
    return Household(members, district)


def _person(
    context: Context, age: int, male: bool, surname: str, address: str, district: str, registered: bool
) -> Person:
    rng = context.rng
    born = _birth_date(context, age)
    citizen_id = context.ids.allocate(_birth_place(context, born, registered), born, male)
    born = dt.date(int(citizen_id[6:10]), int(citizen_id[10:12]), int(citizen_id[12:14]))
    given = rng.choice(context.pools.male_given if male else context.pools.female_given)
    if rng.random() < 0.03:
        given = given[:1] + rng.choice(RARE_GIVEN_CHARACTERS)
    status = "0"
    if registered and age >= 75 and rng.random() < 0.15:
        status = "1"
    elif registered and 18 <= age < 75 and rng.random() < 0.03:
        status = rng.choice(("1", "2", "2"))
    sex = "9" if rng.random() < 0.003 else ("1" if male else "2")
    person = Person(
        citizen_id=citizen_id,
        name=surname + given,
        sex=sex,
        born=born,
        ethnicity="01" if rng.random() < 0.9 else f"{rng.randint(2, 56):02d}",
        address=address,
        district=district,
        household_type="1" if rng.random() < 0.93 else "2",
        status=status,
        registered=registered,
    )
    _give_work(context, person, age)
    return person


def _give_work(context: Context, person: Person, age: int) -> None:
    """Contribution and wage history; unregistered people always work (they must appear somewhere)."""
    rng = context.rng
    if not 18 <= age <= 64 or (person.registered and rng.random() > 0.72):
        person.self_employed = 20 <= age <= 70 and person.registered and rng.random() < 0.12
        return
    person.salary = int(rng.triangular(3500, 45000, 9000)) // 10 * 10
    last = context.month - 1
    if person.registered and rng.random() < 0.2:
        last -= rng.randint(1, 14)
    length = max(3 if not person.registered else 1, int(rng.triangular(1, 36, 9)))
    first = min(last, max(last - length + 1, context.month - (age - 18) * 12))
    employer = rng.choice(context.employers)
    if last - first > 8 and rng.random() < 0.3:
        switch = rng.randint(first + 3, last - 2)
        gap = min(rng.choice((0, 0, 1, 2, 3)), switch - first - 1)
        person.jobs.append(Job(employer, first, switch - 1 - gap))
        employer = rng.choice(context.employers)
        first = switch
    person.jobs.append(Job(employer, first, last))


def _birth_date(context: Context, age: int) -> dt.date:
    day = context.reference_date.toordinal() - age * 365 - age // 4 - context.rng.randint(1, 364)
    return dt.date.fromordinal(max(day, dt.date(1915, 1, 1).toordinal()))


def _birth_place(context: Context, born: dt.date, registered: bool) -> str:
    rng = context.rng
    if not registered or rng.random() < 0.3:
        return rng.choice(OUTSIDE_PLACES)
    return rng.choice(_BORN_BEFORE_2000 if born.year < 2000 else _BORN_SINCE_2000)


def _surname(context: Context) -> str:
    rng = context.rng
    return rng.choice(RARE_SURNAMES) if rng.random() < 0.004 else rng.choice(context.pools.surnames)


def _address(context: Context, district: str) -> str:
    rng = context.rng
    street = rng.choice(context.pools.streets)
    place = (
        f"广州市{GUANGZHOU_DISTRICTS[district]}"
        if district in GUANGZHOU_DISTRICTS
        else OTHER_DISTRICTS[district]
    )
    text = f"{place}{street}{rng.randint(1, 999)}号"
    if rng.random() < 0.08:
        return text + rng.choice(ADDRESS_SUFFIXES)
    return f"{text}{rng.randint(1, 33)}{rng.randint(1, 12):02d}房"
