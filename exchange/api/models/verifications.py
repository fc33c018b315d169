"""POST /v1/verifications: yes/no claims about a subject (minimal disclosure)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from exchange.api.models.common import (
    CODE_PATTERN,
    EXAMPLE_SUBJECT,
    Body,
    FactValue,
    Purpose,
    RecordRef,
    SubjectId,
)

Operator = Literal["eq", "ne", "ge", "gt", "le", "lt", "in"]


class Claim(Body):
    """`fact operator value`, e.g. social.pension.continuous_months ge 6; `in` takes a list."""

    fact: str = Field(pattern=CODE_PATTERN, examples=["social.pension.continuous_months"])
    operator: Operator = Field(examples=["ge"])
    value: FactValue | list[FactValue] = Field(
        description=(
            'amounts as decimal strings ("656.91"); a list for `in`. Counts and amounts compare as '
            'numbers (an area of "120.00" eq "120"); codes and statuses compare as exact text'
        ),
        examples=[6],
    )


class VerificationRequest(Body):
    """Claims about one subject, for one purpose; the facts are computed on `reference_date` from what
    the exchange knew at `as_of`."""

    subject: SubjectId
    purpose: Purpose
    claims: list[Claim] = Field(min_length=1, max_length=50)
    reference_date: dt.date | None = Field(
        None, description="the date facts are evaluated on; default today, and never after today"
    )
    as_of: dt.datetime | None = Field(
        None, description="answer from what the exchange knew then; default now"
    )


class ClaimResult(BaseModel):
    """Whether one claim holds; never the fact's value."""

    fact: str
    operator: Operator
    holds: bool
    determinable: bool = Field(
        description="false when the fact has no value for this subject (e.g. no 户籍 record)"
    )
    lineage: list[RecordRef]


class VerificationResponse(BaseModel):
    """The answer to each claim, with the times it was evaluated at."""

    purpose: str
    reference_date: dt.date
    as_of: dt.datetime
    profile_version: int = Field(description="version of the subject's profile used; 0: none known")
    results: list[ClaimResult]


# A complete request, for the OpenAPI description (and schemathesis's explicit phase).
VERIFICATION_EXAMPLE = {
    "subject": EXAMPLE_SUBJECT,
    "purpose": "talent-green-card",
    "claims": [
        {"fact": "social.pension.continuous_months", "operator": "ge", "value": 6},
        {"fact": "identity.status", "operator": "in", "value": ["normal"]},
    ],
    "reference_date": "2026-11-15",
}
