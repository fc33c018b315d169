"""Pools of names, streets and company names drawn once from a seeded Faker('zh_CN').

Faker is slow per call (tens of microseconds), so it fills pools up front and the generator draws
from them with its own random.Random; the pools keep Faker's frequency weighting (common surnames
repeat), and the same seed gives the same pools.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from faker import Faker


@dataclass(frozen=True)
class NamePools:
    """Surnames, given names by sex, street names and company names."""

    surnames: tuple[str, ...]
    male_given: tuple[str, ...]
    female_given: tuple[str, ...]
    streets: tuple[str, ...]
    companies: tuple[str, ...]

    @classmethod
    def build(cls, seed: int) -> NamePools:
        """Fill the pools from Faker('zh_CN') seeded with `seed`."""
        fake = Faker("zh_CN")
        fake.seed_instance(seed)
        return cls(
            surnames=_plain(fake.last_name() for _ in range(300)),
            male_given=_plain(fake.first_name_male() for _ in range(400)),
            female_given=_plain(fake.first_name_female() for _ in range(400)),
            streets=_plain(fake.street_name() for _ in range(300)),
            companies=_plain(fake.company() for _ in range(300)),
        )


def _plain(texts: Iterable[object]) -> tuple[str, ...]:
    """Only text that JSON, CSV and SQL need not escape, so the fast writers may paste it in as is."""
    return tuple(text for text in map(str, texts) if not any(char in _SPECIAL or char < " " for char in text))


_SPECIAL = frozenset("\"\\',")
