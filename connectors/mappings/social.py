"""人社 — 社保缴费: the contribution JSON Lines → `social.contribution` records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from connectors.exceptions import RecordRejected
from connectors.mappings.base import Converted, Mapping
from connectors.mappings.fields import code, integer_version, native_fields, string, text
from connectors.mappings.ids import citizen_id, uscc
from connectors.mappings.money import fen
from connectors.mappings.times import local_time, month

FIELDS = native_fields(
    "人社",
    {
        "jfmxid": "contribution line id",
        "aac002": "citizen ID",
        "aac003": "name",
        "aae140": "insurance type",
        "aae002": "contribution month",
        "aab998": "employer",
        "aab004": "employer name",
        "aae180": "contribution base",
        "dwjfje": "employer amount",
        "grjfje": "personal amount",
        "aae078": "received flag",
        "yxbz": "validity",
        "bbh": "version",
        "gxsj": "time of change",
    },
)
INSURANCE_TYPES = {
    "110": "enterprise_pension",
    "120": "institution_pension",
    "210": "unemployment",
    "310": "medical",
    "410": "injury",
    "510": "maternity",
}
RECEIVED = {"1": "paid", "0": "arrears"}
REVOKED = {"1": False, "0": True}  # yxbz: 1 valid, 0 revoked
_KEYS = frozenset(FIELDS)


class SocialMapping(Mapping):
    """人社's contribution lines; a revoked line (yxbz "0") is a revoke, arrears (aae078 "0") are kept."""

    department = "social"
    dataset = "social.contribution"
    columns = tuple(FIELDS)

    def convert(self, fields: dict[str, Any], *, published_at: dt.datetime, trace_id: str) -> list[Converted]:
        """One `social.contribution` record for the insured person; see `Mapping.convert`."""
        _refuse_unknown_keys(fields)
        subject = citizen_id(fields, FIELDS["aac002"])
        record = {
            "envelope": self.envelope(
                text(fields, FIELDS["jfmxid"]),
                integer_version(fields, FIELDS["bbh"]),
                revoked=code(fields, FIELDS["yxbz"], REVOKED),
                occurred_at=local_time(fields, FIELDS["gxsj"]),
                published_at=published_at,
                trace_id=trace_id,
            ),
            "citizen_id": subject,
            # DEPARTMENTS.md gives both names as "string" (identity's name is "text, 1–50 characters").
            "name": string(fields, FIELDS["aac003"]),
            "insurance_type": code(fields, FIELDS["aae140"], INSURANCE_TYPES),
            "month": month(fields, FIELDS["aae002"]),
            "employer_id": uscc(fields, FIELDS["aab998"]),
            "employer_name": string(fields, FIELDS["aab004"]),
            "base": fen(fields, FIELDS["aae180"]),
            "employer_amount": fen(fields, FIELDS["dwjfje"]),
            "personal_amount": fen(fields, FIELDS["grjfje"]),
            "status": code(fields, FIELDS["aae078"], RECEIVED),
        }
        return [Converted(subject, record)]


def _refuse_unknown_keys(fields: dict[str, Any]) -> None:
    """A key the format does not have is refused rather than ignored: its meaning would be a guess."""
    unknown = fields.keys() - _KEYS
    if unknown:
        key = min(unknown)
        raise RecordRejected("unexpected_field", key, f"人社 {key} is not a key of the contribution format")
