"""POST /v1/applications: an automated decision (秒批) on a service item."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from exchange.api.models.common import CODE_PATTERN, EXAMPLE_SUBJECT, ID_PATTERN, Body, RecordRef, SubjectId


class ApplicationRequest(Body):
    """An application for a service item, decided on the subject's facts."""

    service_item: str = Field(pattern=CODE_PATTERN, examples=["talent-green-card"])
    subject: SubjectId
    purpose: str | None = Field(
        None, pattern=CODE_PATTERN, description="事项 code; default the service item's"
    )
    reference_date: dt.date | None = Field(
        None,
        description="the date the rules are evaluated on; default today, and never after today "
        "(Asia/Shanghai)",
    )
    applicant: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="公民身份号码 of the applicant when not the subject (代办)",
    )
    application_id: uuid.UUID | None = Field(
        None, description="the caller's id; a repeat returns the same decision"
    )


class ReasonOut(BaseModel):
    """A rule of the service item and whether it held (null: it could not be told)."""

    code: str = Field(description="the rule's fact")
    met: bool | None
    zh: str
    en: str


class FactUsed(BaseModel):
    """A fact the decision relied on and the records it came from (its value is not disclosed)."""

    fact: str
    lineage: list[RecordRef]


class ApplicationResponse(BaseModel):
    """The decision: approved, rejected or manual review, with the reasons and the facts it relied on."""

    application_id: str
    decision_id: str
    service_item: str
    purpose: str
    outcome: str = Field(description="approved, rejected or manual_review")
    reasons: list[ReasonOut]
    facts_used: list[FactUsed]
    reference_date: dt.date
    profile_version: int
    policy_version: str
    decided_at: dt.datetime


# A complete request, for the OpenAPI description (and schemathesis's explicit phase).
APPLICATION_EXAMPLE = {"service_item": "talent-green-card", "subject": EXAMPLE_SUBJECT}
