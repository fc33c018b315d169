"""POST /v1/proofs, GET /v1/proofs/{proof_id}, POST /v1/proofs/verify (public), GET /v1/keys (public)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Body

from exchange.api import proofing
from exchange.api.access import check_consent, grant_for
from exchange.api.auditing import audited
from exchange.api.context import Services
from exchange.api.exceptions import InvalidRequestError, NotFoundError, RefusedError
from exchange.api.models.common import ERRORS, TOO_LARGE, UNAVAILABLE
from exchange.api.models.proofs import (
    PROOF_EXAMPLE,
    Jwks,
    ProofRequest,
    ProofResponse,
    StoredProofResponse,
    VerifyRequest,
    VerifyResponse,
)
from exchange.api.routes.deps import AuthDep, ServicesDep
from exchange.api.storage.pool import connection
from exchange.api.storage.proofs import get_proof
from exchange.local_time import today
from exchange.policy import Access, Caller, refuse_proof_reads
from exchange.proofs import default_period

router = APIRouter(tags=["proofs"])
PROOFS = "/v1/proofs"
PROOF = "/v1/proofs/{proof_id}"
VERIFY = "/v1/proofs/verify"
KEYS = "/v1/keys"
ISSUE = "proof.issue"
PUBLIC = "public"  # the audit caller of the unauthenticated verification endpoint


def _period(body: ProofRequest) -> tuple[dt.date, dt.date]:
    start, end = default_period(today())
    period = (body.period_start or start, body.period_end or end)
    if period[0] > period[1]:
        raise InvalidRequestError("period_start is after period_end", ("body", "period_start"))
    return period


@router.post(PROOFS, response_model=ProofResponse, responses={**ERRORS, **TOO_LARGE}, name=ISSUE)
async def issue_proof(
    body: Annotated[ProofRequest, Body(openapi_examples={"talent": {"value": PROOF_EXAMPLE}})],
    auth: AuthDep,
) -> ProofResponse:
    """Issue a signed electronic proof (JWS) of a proof type of the 证明事项 catalogue."""
    return await issue(body, auth.caller, auth.services)


async def issue(body: ProofRequest, caller: Caller, services: Services) -> ProofResponse:
    """The proof a validated request by an authenticated caller asks for, audited: what both the route
    above and its lean path (exchange.api.lean) run."""
    asked = body.model_dump(mode="json", exclude={"subject"})
    async with audited(services, PROOFS, caller.code, ISSUE, body.purpose, asked) as audit:
        subject = services.subject(body.subject)
        audit.subject_key = subject[1]
        grant = grant_for(services, Access(caller.code, body.purpose, proof_type=body.proof_type))
        proof_type = services.policy.proof_types[body.proof_type]
        period = _period(body) if proof_type.period else None
        # Reads, then the proof's one insert: each statement its own transaction.
        async with connection(services.pool) as conn:
            await check_consent(conn, grant, subject[1])
            issued = await proofing.issue(services, conn, grant, proof_type, subject, period)
        audit.response = {"proof_id": issued.document["proof_id"], "records": len(issued.document["lineage"])}
        return ProofResponse(
            proof_id=issued.document["proof_id"],
            proof_type=body.proof_type,
            jws=issued.jws,
            document=issued.document,
        )


@router.get(PROOF, response_model=StoredProofResponse, responses=ERRORS, name="proof.read")
async def read_proof(proof_id: uuid.UUID, auth: AuthDep) -> StoredProofResponse:
    """A proof issued earlier, to a caller granted its proof type for its purpose, with the subject's
    consent in force now where the grant requires it (a withdrawn consent stops reads of the proofs
    issued under it, as it stops new ones); with its status as POST /v1/proofs/verify tells it:
    superseded when records behind it were corrected, revoked or added since."""
    caller, services = auth.caller, auth.services
    async with audited(
        services, PROOF, caller.code, "proof.read", None, {"proof_id": str(proof_id)}
    ) as audit:
        refusal = refuse_proof_reads(services.policy, caller.code)
        if refusal is not None:  # before the lookup: whether the proof exists is not theirs to learn
            raise RefusedError(refusal.reason or "refused", refusal.message)
        async with connection(services.pool) as conn:
            stored = await get_proof(conn, str(proof_id))
            if stored is None:
                raise NotFoundError(f"no proof {proof_id}")
            audit.purpose, audit.subject_key = stored["purpose"], stored["subject_key"]
            grant = grant_for(
                services, Access(caller.code, stored["purpose"], proof_type=stored["proof_type"])
            )
            await check_consent(conn, grant, stored["subject_key"])
            checked = await proofing.check(services, conn, stored["jws"])
        audit.response = {"proof_id": str(proof_id), "status": checked.status}
        return StoredProofResponse(
            proof_id=str(proof_id),
            proof_type=stored["proof_type"],
            jws=stored["jws"],
            document=stored["document"],
            status=checked.status,
            superseded_by=checked.superseded_by,
            checked_at=dt.datetime.now(dt.UTC),
        )


@router.post(
    VERIFY,
    response_model=VerifyResponse,
    responses={**UNAVAILABLE, **TOO_LARGE, 422: {}},
    name="proof.verify",
)
async def verify_proof(body: VerifyRequest, services: ServicesDep) -> VerifyResponse:
    """Check a presented proof: signature, integrity, and whether its records changed since (public)."""
    async with audited(services, VERIFY, PUBLIC, "proof.verify", None, {}) as audit:
        async with connection(services.pool) as conn:
            result = await proofing.check(services, conn, body.jws)
        audit.request = {"proof_id": result.proof_id}
        audit.subject_key = result.subject_key  # in the subject's data-use history: whose proof was checked
        audit.response = {"status": result.status}
        return VerifyResponse(
            status=result.status,
            signature_valid=result.signature_valid,
            intact=result.intact,
            proof_id=result.proof_id,
            superseded_by=result.superseded_by,
            checked_at=dt.datetime.now(dt.UTC),
            message=result.message,
        )


@router.get(KEYS, response_model=Jwks, responses=UNAVAILABLE, name="keys")
async def keys(services: ServicesDep) -> Jwks:
    """The public key set proofs are signed with (JWKS), for offline verification. Public, and audited
    as every endpoint's request is."""
    async with audited(services, KEYS, PUBLIC, "keys", None, {}) as audit:
        audit.response = {"kid": services.signer.kid}
        return Jwks.model_validate(services.signer.jwks())
