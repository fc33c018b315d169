"""Citizen IDs and 统一社会信用代码 in department records, checked by `exchange.subjects`.

The rejection carries the reason code of `InvalidIdentifierError` (id_length, id_characters,
id_birth_date, id_check_character, uscc_length, uscc_characters, uscc_check_character).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from connectors.mappings.fields import Field, text
from exchange.exceptions import InvalidIdentifierError
from exchange.subjects import normalise_citizen_id, normalise_uscc

# The same people and employers recur in every export (a contribution line per person, month and
# insurance type), so remembering valid identifiers saves most of the check's cost. Invalid ones are
# not cached: `lru_cache` does not keep exceptions.
_citizen_ids = lru_cache(maxsize=1 << 16)(normalise_citizen_id)
_usccs = lru_cache(maxsize=1 << 14)(normalise_uscc)


def citizen_id(fields: Mapping[str, Any], field: Field) -> str:
    """A required 公民身份号码 field, normalised (upper-case X)."""
    return check_citizen_id(text(fields, field), field)


def check_citizen_id(value: str, field: Field) -> str:
    """A citizen ID found in `field` (alone or as part of it), normalised."""
    try:
        return _citizen_ids(value)
    except InvalidIdentifierError as exc:
        raise field.rejected(exc.reason, exc.message) from exc


def uscc(fields: Mapping[str, Any], field: Field) -> str:
    """A required 统一社会信用代码 field, normalised (upper case)."""
    try:
        return _usccs(text(fields, field))
    except InvalidIdentifierError as exc:
        raise field.rejected(exc.reason, exc.message) from exc


def optional_uscc(fields: Mapping[str, Any], field: Field) -> str | None:
    """A 统一社会信用代码 field that may be empty (None); otherwise as `uscc`."""
    return None if fields.get(field.name) == "" else uscc(fields, field)
