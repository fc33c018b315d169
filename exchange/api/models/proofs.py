"""POST /v1/proofs, GET /v1/proofs/{proof_id}, POST /v1/proofs/verify, GET /v1/keys."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from exchange.api.models.common import CODE_PATTERN, EXAMPLE_SUBJECT, Body, Purpose, SubjectId
from exchange.api.signing import MAX_TOKEN_BYTES


class ProofRequest(Body):
    """An electronic proof (电子证明) of a proof type of the catalogue, about one subject."""

    proof_type: str = Field(pattern=CODE_PATTERN, examples=["tax-payment"])
    subject: SubjectId
    purpose: Purpose
    period_start: dt.date | None = Field(
        None, description="tax and social proofs; default: the last 12 months"
    )
    period_end: dt.date | None = None


class ProofResponse(BaseModel):
    """The signed proof: a compact JWS over `document`, which is repeated here for convenience."""

    proof_id: str
    proof_type: str
    jws: str = Field(description="compact JWS, alg Ed25519 (EdDSA); verify with GET /v1/keys")
    document: dict[str, Any]


class StoredProofResponse(ProofResponse):
    """A proof issued earlier, and whether the records behind it are still as they were."""

    status: Literal["valid", "superseded", "invalid"] = Field(
        description="superseded: records behind the proof were corrected, revoked or added since issue"
    )
    superseded_by: list[str] = Field(description="event ids of the corrections or revocations since issue")
    checked_at: dt.datetime


class VerifyRequest(Body):
    """A proof as presented by whoever holds it."""

    jws: str = Field(max_length=MAX_TOKEN_BYTES)


class VerifyResponse(BaseModel):
    """Whether a proof is genuine and still reflects the records: valid, superseded, invalid or unknown."""

    status: Literal["valid", "superseded", "invalid", "unknown"]
    signature_valid: bool
    intact: bool | None = Field(
        description="the payload equals the proof the exchange stored; null if unknown"
    )
    proof_id: str | None
    superseded_by: list[str] = Field(description="event ids of the corrections or revocations since issue")
    checked_at: dt.datetime
    message: str


class Jwks(BaseModel):
    """The exchange's public signing keys (RFC 7517)."""

    keys: list[dict[str, str]]


# A complete request, for the OpenAPI description (and schemathesis's explicit phase).
PROOF_EXAMPLE = {"proof_type": "tax-payment", "subject": EXAMPLE_SUBJECT, "purpose": "talent-green-card"}
