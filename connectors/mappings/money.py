"""Amounts of money: yuan written with two decimals (税务) and integer fen in JSON (人社).

Both become `Decimal` yuan with scale 2, the schemas' `decimal(18, 2)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from connectors.mappings.fields import Field, invalid, shown

# decimal(18, 2) leaves 16 digits before the point.
_YUAN = re.compile(r"[0-9]{1,16}\.[0-9]{2}")
_SIGNED_YUAN = re.compile(r"-?[0-9]{1,16}\.[0-9]{2}")
_MAX_FEN = 10**18 - 1


def yuan(fields: Mapping[str, Any], field: Field, *, negative: bool = False) -> Decimal:
    """An amount in yuan with exactly two decimals; `negative` allows a minus sign (a refund)."""
    value = fields.get(field.name)
    if type(value) is str and (_SIGNED_YUAN if negative else _YUAN).fullmatch(value):
        return Decimal(value)
    sign = "an" if negative else "a non-negative"
    raise invalid(field, value, "bad_amount", f"{sign} amount in yuan with two decimals")


def fen(fields: Mapping[str, Any], field: Field) -> Decimal:
    """A non-negative JSON integer number of fen, as yuan; a string, a fraction or a boolean is an error."""
    value = fields.get(field.name)
    if type(value) is int and 0 <= value <= _MAX_FEN:
        return Decimal(value).scaleb(-2)
    if value is None:
        raise field.rejected("missing_field", "is missing")
    if type(value) is int:
        problem = "must not be negative" if value < 0 else "is too large"
        raise field.rejected("bad_amount", f"{problem}, got {value}")
    raise field.rejected("bad_amount", f"must be an integer number of fen, got {shown(value)}")
