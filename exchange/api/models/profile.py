"""GET /v1/subjects/{subject_id}/profile: granted facts' values; and the subject's data-use history."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from exchange.api.models.common import FactValue, RecordRef


class ProfileResponse(BaseModel):
    """The values of the facts asked for (only granted ones), with their lineage."""

    purpose: str
    reference_date: dt.date
    as_of: dt.datetime
    profile_version: int
    fields: dict[str, FactValue] = Field(description="fact name -> value; amounts as decimal strings")
    lineage: dict[str, list[RecordRef]]


class UseOfData(BaseModel):
    """One use of the subject's data: who, for which purpose, what, when, and whether it was allowed."""

    at: dt.datetime
    caller: str
    caller_name: str
    purpose: str | None
    action: str
    outcome: str


class SubjectAuditResponse(BaseModel):
    """Who used the subject's data, newest first, a page at a time."""

    entries: list[UseOfData]
    next_before: int | None = Field(
        description="pass as `before` for the page of older entries; null: there are none"
    )
