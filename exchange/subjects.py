"""Subjects: 居民身份证号 and 统一社会信用代码 checks, normalisation, and the HMAC subject key.

A citizen ID is invalid only for its length, its characters, its birth date or its check character
(DEPARTMENTS.md). The place code is deliberately not looked up: abolished codes (440102 东山区) and codes
newer than any table are valid, which is why python-stdnum's `cn.ric.validate` is not used here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import operator

from exchange.exceptions import InvalidIdentifierError
from exchange.local_time import today

_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_ID_CHECK = "10X98765432"

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


# The ASCII code of "0" times the sum of the weights: lets the hot path multiply bytes, not ints.
_ID_ZERO_OFFSET = 48 * sum(_ID_WEIGHTS)


def citizen_id_check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits (GB 11643-1999)."""
    # Runs once per record in every connector: summing products of ASCII codes is ~4× faster than
    # converting each digit with int(); subtracting 48 × Σweights turns codes back into digits.
    total = sum(map(operator.mul, first17.encode("ascii"), _ID_WEIGHTS)) - _ID_ZERO_OFFSET
    return _ID_CHECK[total % 11]


def normalise_citizen_id(value: str) -> str:
    """Validate a 公民身份号码 and return it with an upper-case X; raise `InvalidIdentifierError`.

    Taken as written: a space or any other character around the 18 is an error, not trimmed away."""
    text = value
    if len(text) != 18:
        raise InvalidIdentifierError("id_length", f"has {len(text)} characters, expected 18")
    body, check = text[:17], text[17].upper()
    if not body.isascii() or not body.isdigit() or check not in "0123456789X":
        raise InvalidIdentifierError("id_characters", "must be 17 digits followed by a digit or X")
    birth_date_of(body)
    expected = citizen_id_check_character(body)
    if check != expected:
        raise InvalidIdentifierError(
            "id_check_character", f"check character is {check}, expected {expected} (GB 11643)"
        )
    return body + check


def birth_date_of(citizen_id: str) -> dt.date:
    """The birth date written in characters 7–14 of a citizen ID."""
    digits = citizen_id[6:14]
    try:
        born = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError as exc:
        raise InvalidIdentifierError("id_birth_date", f"birth date {digits} is not a date") from exc
    if born.year < 1850:
        raise InvalidIdentifierError("id_birth_date", f"birth date {digits} is before 1850")
    if born > today():  # one valid before is valid for good, so a cache of valid IDs stays right
        raise InvalidIdentifierError("id_birth_date", f"birth date {digits} is after today")
    return born


def uscc_check_character(first17: str) -> str:
    """The GB 32100-2015 check character of the first 17 characters of a 统一社会信用代码."""
    total = sum(
        USCC_ALPHABET.index(char) * weight for char, weight in zip(first17, _USCC_WEIGHTS, strict=True)
    )
    return USCC_ALPHABET[(31 - total % 31) % 31]


def normalise_uscc(value: str) -> str:
    """Validate a 统一社会信用代码 and return it upper-cased; raise `InvalidIdentifierError` (a space
    around the 18 characters included)."""
    # Counted and checked as written: upper() can lengthen a string (the ligature ﬀ is FF), so 17
    # characters passed, and 18 became 19.
    if len(value) != 18:
        raise InvalidIdentifierError("uscc_length", f"has {len(value)} characters, expected 18")
    text = value.upper() if value.isascii() else value
    bad = sorted({char for char in text if char not in USCC_ALPHABET})
    if bad:
        raise InvalidIdentifierError(
            "uscc_characters",
            f"contains {''.join(bad)}, not allowed in a 统一社会信用代码 (no I, O, S, V, Z)",
        )
    expected = uscc_check_character(text[:17])
    if text[17] != expected:
        raise InvalidIdentifierError(
            "uscc_check_character", f"check character is {text[17]}, expected {expected} (GB 32100)"
        )
    return text


def subject_key(identifier: str, secret: bytes) -> str:
    """The Kafka key of a subject: hex HMAC-SHA256 of the normalised identifier under the exchange secret."""
    return hmac.new(secret, identifier.encode("ascii"), hashlib.sha256).hexdigest()
