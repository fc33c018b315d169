"""Shapes shared by several endpoints: errors, lineage, subject identifiers."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# A sample subject, so the OpenAPI examples (and schemathesis) reach real answers.
EXAMPLE_SUBJECT = "440103198403037020"
ID_PATTERN = r"^[0-9]{17}[0-9Xx]$"
# Codes of purposes, facts, proof types and service items: what the policy files can name.
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
SubjectId = Annotated[
    str,
    Field(
        pattern=ID_PATTERN, description="公民身份号码 (GB 11643) of the subject", examples=[EXAMPLE_SUBJECT]
    ),
]
Purpose = Annotated[
    str,
    Field(pattern=CODE_PATTERN, description="事项 code the caller acts for", examples=["talent-green-card"]),
]
FactValue = bool | int | str | None


class Body(BaseModel):
    """A request body: unknown keys are refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """An error: a stable code and a message saying what to do about it."""

    error: str = Field(description="not_authenticated, not_found, conflict, invalid_request, unavailable, …")
    message: str


class Refusal(BaseModel):
    """HTTP 403: what the policy, consent or delegation does not allow, and which grant is missing."""

    error: str = "forbidden"
    reason: str = Field(
        description="purpose_not_granted, fact_not_granted, field_not_granted, proof_type_not_granted, "
        "service_item_not_granted, subject_audit_not_granted, consent_missing or delegation_missing"
    )
    message: str
    policy_version: str


class RecordRef(BaseModel):
    """One source record version behind an answer: its event and where it sits in the log."""

    event_id: str
    dataset: str
    source_version: int
    topic: str
    partition: int
    offset: int


# How long a caller answered 503 should wait before asking again: the pool reconnects within seconds of
# PostgreSQL accepting connections again.
RETRY_AFTER_SECONDS = 5

Responses = dict[int | str, dict[str, object]]
# Every route writes its audit entry before it answers: while PostgreSQL is unavailable, this.
UNAVAILABLE: Responses = {
    503: {
        "model": Problem,
        "description": "PostgreSQL is unavailable: ask again after the seconds in Retry-After",
        "headers": {
            "Retry-After": {
                "description": "seconds to wait before asking again",
                "schema": {"type": "integer"},
            }
        },
    },
}
# A route taking a body: one over settings.api.max_body_bytes is refused unread.
TOO_LARGE: Responses = {413: {"description": "the request body is over the largest the exchange takes"}}
ERRORS: Responses = {
    401: {"model": Problem, "description": "no API key, or an unknown one"},
    403: {"model": Refusal, "description": "refused by policy, consent or delegation"},
    422: {"description": "the request is malformed or not meaningful"},
    **UNAVAILABLE,
}
