"""Identifiers: citizen IDs unique by construction, 统一社会信用代码 with valid check characters."""

from __future__ import annotations

import datetime as dt
import random
from array import array

from connectors.synth.codes import BIRTH_PLACES
from exchange.subjects import USCC_ALPHABET, citizen_id_check_character, uscc_check_character

_PER_CELL = 500  # sequence numbers of one sex for one place and birth date (the 17th digit carries the sex)


class CitizenIds:
    """Hands out 公民身份号码 that never repeat, in memory bounded by places × days, not by people.

    A counter per (place, birth date, sex) picks the next unused 顺序码, scrambled so that
    neighbours do not look sequential; random draws would collide among a million people.
    """

    def __init__(self, first_birth: dt.date, last_birth: dt.date) -> None:
        self._first = first_birth.toordinal()
        self._days = last_birth.toordinal() - self._first + 1
        self._place_index = {place: index for index, place in enumerate(BIRTH_PLACES)}
        self._used = array("H", bytes(2 * len(BIRTH_PLACES) * self._days * 2))

    def allocate(self, place: str, born: dt.date, male: bool) -> str:
        """A new valid citizen ID (upper-case X) for someone born on or just after `born` at `place`."""
        day = min(max(born.toordinal() - self._first, 0), self._days - 1)
        while True:
            cell = ((self._place_index[place] * self._days + day) << 1) | male
            used = self._used[cell]
            if used < _PER_CELL:
                break
            day = (day + 1) % self._days
        self._used[cell] = used + 1
        sequence = ((used * 7 + cell * 13) % _PER_CELL) * 2 + male
        date = dt.date.fromordinal(self._first + day)
        first17 = f"{place}{date.year:04d}{date.month:02d}{date.day:02d}{sequence:03d}"
        return first17 + citizen_id_check_character(first17)


def wrong_check_character(citizen_id: str) -> str:
    """The same ID with a different, wrong check character."""
    right = citizen_id[17].upper()
    wrong = "0" if right == "X" else ("X" if right == "9" else str(int(right) + 1))
    return citizen_id[:17] + wrong


def new_uscc(rng: random.Random, district: str, public_institution: bool) -> str:
    """A 统一社会信用代码: 91 (enterprise) or 12 (public institution), a district, an org code, the check."""
    body = ("12" if public_institution else "91") + district
    body += "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check_character(body)


def wrong_uscc(uscc: str) -> str:
    """The same code with a different, wrong check character."""
    right = USCC_ALPHABET.index(uscc[17])
    return uscc[:17] + USCC_ALPHABET[(right + 1) % len(USCC_ALPHABET)]
