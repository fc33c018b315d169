"""A department's native fields, and the checks every mapping applies to them.

Each check takes the record's fields and the `Field` it reads, and raises `RecordRejected` with a
stable reason code and a message that names the department's own field, so a clerk can act on it.
Values that identify a person (IDs, names, addresses) are never quoted back in a message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from connectors.exceptions import RecordRejected

T = TypeVar("T")
# Avro `long`: the widest version a record can carry.
MAX_VERSION = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Field:
    """A native field of a department's export: its name there and, for people, what it means."""

    department: str  # the department's own short name, e.g. 人社
    name: str
    meaning: str

    def __str__(self) -> str:
        return f"{self.department} {self.name} ({self.meaning})"

    def rejected(self, reason: str, problem: str) -> RecordRejected:
        """The rejection of a record because of this field; `problem` completes a sentence about it."""
        return RecordRejected(reason, self.name, f"{self} {problem}")


def native_fields(department: str, meanings: dict[str, str]) -> dict[str, Field]:
    """The fields of a department's export, in export order, from native name → meaning."""
    return {name: Field(department, name, meaning) for name, meaning in meanings.items()}


def shown(value: Any) -> str:
    """A value as it appeared in the export, quoted like JSON and cut short, for a message."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def text(fields: Mapping[str, Any], field: Field) -> str:
    """A required text field: present, a string, and not blank."""
    value = fields.get(field.name)
    if type(value) is str and value and not value.isspace():
        return value
    raise invalid(field, value, "missing_field", "text")


def string(fields: Mapping[str, Any], field: Field) -> str:
    """A field the contract calls a "string" (人社's names): present and a JSON string, empty or not."""
    value = fields.get(field.name)
    if type(value) is str:
        return value
    raise invalid(field, value, "missing_field", "a string")


def invalid(field: Field, value: Any, reason: str, expected: str) -> RecordRejected:
    """The rejection of a value that failed a check, for the first thing wrong with it.

    Missing or blank is `missing_field`, not a string where text belongs is `bad_type`, and anything else
    is `reason`. Checks test the good case first and call this only to explain a failure.
    """
    if value is None:
        return field.rejected("missing_field", "is missing")
    if not isinstance(value, str):
        return field.rejected("bad_type", f"must be text, got {shown(value)}")
    if not value or value.isspace():
        return field.rejected("missing_field", "is empty")
    return field.rejected(reason, f"must be {expected}, got {shown(value)}")


def code(fields: Mapping[str, Any], field: Field, table: Mapping[str, T], expected: str = "") -> T:
    """A coded field translated by `table`; `expected` describes a code list too long to list."""
    value: Any = fields.get(field.name)
    try:
        return table[value]
    except (KeyError, TypeError):  # TypeError: an unhashable JSON value
        raise invalid(field, value, "unknown_code", expected or "one of " + ", ".join(table)) from None


def digits(
    fields: Mapping[str, Any], field: Field, lengths: Collection[int], reason: str, expected: str
) -> str:
    """A field of ASCII digits whose length is one of `lengths`."""
    value = fields.get(field.name)
    if type(value) is str and len(value) in lengths and value.isascii() and value.isdigit():
        return value
    raise invalid(field, value, reason, expected)


def version(fields: Mapping[str, Any], field: Field) -> int:
    """A record version written as text (CSV): the ASCII digits of a positive integer."""
    value = fields.get(field.name)
    # At most 19 digits: a long enough digit string would make int() itself refuse it.
    if type(value) is str and len(value) <= 19 and value.isascii() and value.isdigit():
        number = int(value)
        if 1 <= number <= MAX_VERSION:
            return number
    raise invalid(field, value, "bad_version", "a positive integer")


def integer_version(fields: Mapping[str, Any], field: Field) -> int:
    """A record version given as a number (JSON, SQL): an integer, not a boolean or a string.

    DEPARTMENTS.md asks a positive integer of 公安's and 税务's versions (`version`) and only an integer
    of 人社's and the registry's `bbh`: 0 and below are versions like any other there, lower than 1.
    """
    value = fields.get(field.name)
    if type(value) is int and -MAX_VERSION - 1 <= value <= MAX_VERSION:
        return value
    if value is None:
        raise field.rejected("missing_field", "is missing")
    raise field.rejected("bad_version", f"must be an integer (of 64 bits), got {shown(value)}")


def district(fields: Mapping[str, Any], field: Field) -> str:
    """A GB/T 2260 six-digit district code; not looked up, since abolished and new codes are both valid."""
    return digits(fields, field, (6,), "bad_district", "a six-digit GB/T 2260 code")


def matching(
    fields: Mapping[str, Any], field: Field, shape: re.Pattern[str], reason: str, expected: str
) -> str:
    """A text field that must match `shape` whole."""
    value = fields.get(field.name)
    if type(value) is str and shape.fullmatch(value):
        return value
    raise invalid(field, value, reason, expected)
