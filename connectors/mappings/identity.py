"""公安 — 户籍人口基本信息: the identity CSV → `identity.person` records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from connectors.mappings.base import Converted, Mapping
from connectors.mappings.fields import code, district, native_fields, text, version
from connectors.mappings.ids import citizen_id
from connectors.mappings.times import compact_date, local_time

FIELDS = native_fields(
    "公安",
    {
        "公民身份号码": "citizen ID",
        "姓名": "name",
        "性别": "sex",
        "民族": "ethnicity",
        "出生日期": "birth date",
        "户籍地址": "registered address",
        "户籍地行政区划": "district of registration",
        "户别": "household type",
        "人员状态": "status",
        "记录版本": "version",
        "变更时间": "time of change",
    },
)
SEXES = {"1": "male", "2": "female", "0": "unknown", "9": "unstated"}  # GB/T 2261.1
ETHNICITIES = {f"{number:02d}": f"{number:02d}" for number in range(1, 57)}  # GB/T 3304
HOUSEHOLD_TYPES = {"1": "family", "2": "collective"}
STATUSES = {"0": "normal", "1": "deceased", "2": "moved_out"}
MAX_NAME_LENGTH = 50


class IdentityMapping(Mapping):
    """公安's person records; the citizen ID is both the subject and the source record id."""

    department = "identity"
    dataset = "identity.person"
    columns = tuple(FIELDS)

    def convert(self, fields: dict[str, Any], *, published_at: dt.datetime, trace_id: str) -> list[Converted]:
        """One `identity.person` record for the person; see `Mapping.convert`."""
        subject = citizen_id(fields, FIELDS["公民身份号码"])
        record = {
            "envelope": self.envelope(
                subject,
                version(fields, FIELDS["记录版本"]),
                revoked=False,
                occurred_at=local_time(fields, FIELDS["变更时间"]),
                published_at=published_at,
                trace_id=trace_id,
            ),
            "citizen_id": subject,
            "name": _name(fields),
            "sex": code(fields, FIELDS["性别"], SEXES),
            "ethnicity": code(fields, FIELDS["民族"], ETHNICITIES, "a GB/T 3304 code 01–56"),
            "birth_date": _birth_date(fields, subject),
            "address": text(fields, FIELDS["户籍地址"]),
            "district": district(fields, FIELDS["户籍地行政区划"]),
            "household_type": code(fields, FIELDS["户别"], HOUSEHOLD_TYPES),
            "status": code(fields, FIELDS["人员状态"], STATUSES),
        }
        return [Converted(subject, record)]


def _name(fields: dict[str, Any]) -> str:
    name = text(fields, FIELDS["姓名"])
    if len(name) > MAX_NAME_LENGTH:
        problem = f"has {len(name)} characters, at most {MAX_NAME_LENGTH} are allowed"
        raise FIELDS["姓名"].rejected("bad_name_length", problem)
    return name


def _birth_date(fields: dict[str, Any], subject: str) -> dt.date:
    """出生日期, which must be the date written inside the citizen ID."""
    field = FIELDS["出生日期"]
    born = compact_date(fields, field)
    # Characters 7–14 of a valid ID are its birth date, YYYYMMDD: compare the text, already checked.
    if fields[field.name] != subject[6:14]:
        problem = f"{born:%Y%m%d} is not the birth date inside the 公民身份号码"
        raise field.rejected("birth_date_mismatch", problem)
    return born
