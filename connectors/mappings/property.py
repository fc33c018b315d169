"""不动产登记中心 — titles: rows of the registry's table `bdc_djb` → `property.title` records per owner."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from connectors.mappings.base import Converted, Mapping
from connectors.mappings.fields import (
    Field,
    code,
    district,
    integer_version,
    matching,
    native_fields,
    shown,
    text,
)
from connectors.mappings.ids import check_citizen_id
from connectors.mappings.times import local_timestamp

FIELDS = native_fields(
    "不动产登记中心",
    {
        "bdcqzh": "certificate number",
        "bdcdyh": "real-estate unit number",
        "qlr": "owners",
        "zl": "location",
        "xzqdm": "district",
        "yt": "use",
        "mj": "floor area",
        "djsj": "registration time",
        "qszt": "title status",
        "dyzt": "mortgaged",
        "cfzt": "seized",
        "bbh": "version",
        "gxsj": "time of change",
    },
)
USES = {"住宅": "residential", "商业": "commercial", "办公": "office", "工业": "industrial", "其他": "other"}
TITLE_STATUSES = {"1": "current", "2": "historic", "3": "cancelled"}
FLAGS = {"0": False, "1": True}
HUNDRED = Decimal(100)
CENT = Decimal("0.01")
_UNIT_NO = re.compile(r"\S{28}")  # char(28) pads a short value with spaces; a padded one is wrong
_SHARE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,2})?")  # percent, decimal(5, 2)
_MAX_AREA = Decimal("1e10")  # numeric(12, 2)

Owners = list[tuple[str, Decimal]]


class PropertyMapping(Mapping):
    """The registry's titles; a title with n owners is n records, each keyed by its owner with its share."""

    department = "property"
    dataset = "property.title"
    columns = tuple(FIELDS)

    def convert(self, fields: dict[str, Any], *, published_at: dt.datetime, trace_id: str) -> list[Converted]:
        """One `property.title` record per owner, the others listed as `co_owners`; see `Mapping.convert`."""
        owners = parse_owners(fields)
        return self._records(
            fields, owners, owners, revoked=False, published_at=published_at, trace_id=trace_id
        )

    def revoke_dropped_owners(
        self,
        fields: dict[str, Any],
        previous_owners: Iterable[str],
        *,
        published_at: dt.datetime,
        trace_id: str,
    ) -> list[Converted]:
        """Revokes for the owners of an earlier version of the title who are not owners in this one.

        A row holds only its current owners, so the caller — which remembers the owners it published —
        passes the earlier ones in; the schema requires a dropped owner's record to be revoked.
        """
        owners = parse_owners(fields)
        current = {owner for owner, _ in owners}
        gone = [(owner, Decimal("0.00")) for owner in dict.fromkeys(previous_owners) if owner not in current]
        return self._records(fields, gone, owners, revoked=True, published_at=published_at, trace_id=trace_id)

    def _records(
        self,
        fields: dict[str, Any],
        written: Owners,
        owners: Owners,
        *,
        revoked: bool,
        published_at: dt.datetime,
        trace_id: str,
    ) -> list[Converted]:
        """A record for each of the `written` owners of a title owned by `owners`."""
        title = _title(fields)
        bbh, occurred_at = integer_version(fields, FIELDS["bbh"]), local_timestamp(fields, FIELDS["gxsj"])
        return [
            Converted(
                owner,
                {
                    "envelope": self.envelope(
                        title["certificate_no"],
                        bbh,
                        revoked=revoked,
                        occurred_at=occurred_at,
                        published_at=published_at,
                        trace_id=trace_id,
                        owner=owner,
                    ),
                    **title,
                    "owner_id": owner,
                    "share": share,
                    "co_owners": [
                        {"owner_id": other, "share": part} for other, part in owners if other != owner
                    ],
                },
            )
            for owner, share in written
        ]


def _title(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields every owner's record of a title shares."""
    return {
        "certificate_no": text(fields, FIELDS["bdcqzh"]),
        "unit_no": matching(fields, FIELDS["bdcdyh"], _UNIT_NO, "bad_unit_no", "28 characters"),
        # zl is nullable in bdc_djb; a title with no location still shows who owns property.
        "location": "" if fields.get("zl") is None else text(fields, FIELDS["zl"]),
        "district": district(fields, FIELDS["xzqdm"]),
        "use": code(fields, FIELDS["yt"], USES),
        "area": _area(fields),
        "registered_at": local_timestamp(fields, FIELDS["djsj"]),
        "status": code(fields, FIELDS["qszt"], TITLE_STATUSES),
        "mortgaged": code(fields, FIELDS["dyzt"], FLAGS),
        "seized": code(fields, FIELDS["cfzt"], FLAGS),
    }


def parse_owners(fields: dict[str, Any]) -> Owners:
    """qlr: `ID:share` pairs joined by `;`, each ID valid and once, shares in percent summing to 100."""
    field = FIELDS["qlr"]
    pairs = text(fields, field).split(";")
    owners: dict[str, Decimal] = {}
    for number, pair in enumerate(pairs, 1):
        which = Field(field.department, field.name, f"owners, owner {number} of {len(pairs)}")
        owner, share = _pair(pair, which)
        if owner in owners:
            raise field.rejected("duplicate_owner", f"names owner {number} of {len(pairs)} more than once")
        owners[owner] = share
    total = sum(owners.values(), Decimal(0))
    if total != HUNDRED:
        raise field.rejected("shares_not_100", f"shares sum to {total}, not 100")
    return list(owners.items())


def _pair(pair: str, field: Field) -> tuple[str, Decimal]:
    owner, colon, share = pair.partition(":")
    if not colon or not _SHARE.fullmatch(share):
        raise field.rejected("bad_owners", "is not written ID:share (share in percent, at most two decimals)")
    value = Decimal(share)
    if not 0 < value <= HUNDRED:
        raise field.rejected("bad_share", f"has share {share}, expected more than 0 and at most 100")
    return check_citizen_id(owner, field), value.quantize(CENT)


def _area(fields: dict[str, Any]) -> Decimal:
    """mj: numeric(12, 2) square metres, more than 0."""
    value = fields.get("mj")
    if isinstance(value, Decimal) and value.is_finite() and 0 < value < _MAX_AREA:
        area = value.quantize(CENT)
        if area == value:  # more decimals would have to be rounded away, which is a guess
            return area
    if value is None:
        raise FIELDS["mj"].rejected("missing_field", "is missing")
    problem = f"must be a numeric(12,2) area in m² above 0, got {shown(value)}"
    raise FIELDS["mj"].rejected("bad_area", problem)
