"""POST /v1/verifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from exchange.api import evaluation
from exchange.api.access import check_consent, grant_for
from exchange.api.auditing import audited
from exchange.api.context import Services
from exchange.api.exceptions import InvalidRequestError
from exchange.api.models.common import ERRORS, TOO_LARGE
from exchange.api.models.verifications import VERIFICATION_EXAMPLE, VerificationRequest, VerificationResponse
from exchange.api.routes.deps import AuthDep
from exchange.api.storage.pool import connection
from exchange.facts import FACT_NAMES
from exchange.policy import Access, Caller

router = APIRouter(tags=["verifications"])
ROUTE = "/v1/verifications"
NAME = "verification"


@router.post(ROUTE, response_model=VerificationResponse, responses={**ERRORS, **TOO_LARGE}, name=NAME)
async def verify_claims(
    body: Annotated[VerificationRequest, Body(openapi_examples={"talent": {"value": VERIFICATION_EXAMPLE}})],
    auth: AuthDep,
) -> VerificationResponse:
    """Evaluate claims about a subject: true or false per claim, with the times used and the lineage."""
    return await answer(body, auth.caller, auth.services)


async def answer(body: VerificationRequest, caller: Caller, services: Services) -> VerificationResponse:
    """The verification of a validated request by an authenticated caller, audited: what both the route
    above and its lean path (exchange.api.lean) run."""
    asked = {
        # A claim without its value (what `model_dump(exclude={"value"})` returns, without the dump).
        "claims": [{"fact": claim.fact, "operator": claim.operator} for claim in body.claims],
        "reference_date": body.reference_date,
        "as_of": body.as_of,
    }
    async with audited(services, ROUTE, caller.code, "verification", body.purpose, asked) as audit:
        unknown = sorted({claim.fact for claim in body.claims} - FACT_NAMES)
        if unknown:
            raise InvalidRequestError(f"unknown facts {', '.join(unknown)}", ("body", "claims"))
        for claim in body.claims:
            if (claim.operator == "in") != isinstance(claim.value, list):
                raise InvalidRequestError(
                    f"claim on {claim.fact}: operator in takes a list, the others a single value",
                    ("body", "claims"),
                )
        as_of = evaluation.known_instant(body.as_of, ("body", "as_of"))
        evaluation.reported_date(body.reference_date, ("body", "reference_date"))
        audit.subject_key = services.subject_key(body.subject)
        access = Access(caller.code, body.purpose, facts=frozenset(claim.fact for claim in body.claims))
        grant = grant_for(services, access)
        async with connection(services.pool) as conn:  # reads only: no transaction to open and commit
            await check_consent(conn, grant, audit.subject_key)
            known = await evaluation.evaluate(
                conn, audit.subject_key, body.reference_date, as_of, services.profiles
            )
        results = [evaluation.check_claim(claim, known.facts) for claim in body.claims]
        audit.response = {
            "results": [{"fact": r["fact"], "holds": r["holds"]} for r in results],
            "profile_version": known.profile_version,
        }
        return VerificationResponse.model_validate(
            {
                "purpose": body.purpose,
                "reference_date": known.reference_date,
                "as_of": known.as_of,
                "profile_version": known.profile_version,
                "results": results,
            }
        )
