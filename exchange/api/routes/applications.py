"""POST /v1/applications."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body

from exchange.api.applications import Application, count_decision, decide
from exchange.api.auditing import audited
from exchange.api.models.applications import APPLICATION_EXAMPLE, ApplicationRequest, ApplicationResponse
from exchange.api.models.common import ERRORS, TOO_LARGE
from exchange.api.routes.deps import AuthDep
from exchange.api.storage.pool import transaction

router = APIRouter(tags=["applications"])
ROUTE = "/v1/applications"


@router.post(
    ROUTE, response_model=ApplicationResponse, responses={**ERRORS, **TOO_LARGE, 409: {}}, name="application"
)
async def apply(
    body: Annotated[ApplicationRequest, Body(openapi_examples={"talent": {"value": APPLICATION_EXAMPLE}})],
    auth: AuthDep,
) -> ApplicationResponse:
    """Decide an application automatically (秒批): approved, rejected or manual review, with the reasons."""
    caller, services = auth.caller, auth.services
    purpose = body.purpose or body.service_item
    asked = body.model_dump(mode="json", exclude={"subject", "applicant"})
    async with audited(services, ROUTE, caller.code, "application", purpose, asked) as audit:
        audit.subject_key = services.subject_key(body.subject)
        applicant = (
            None if body.applicant is None else services.subject_key(body.applicant, ("body", "applicant"))
        )
        application = Application(
            application_id=str(body.application_id or uuid.uuid4()),
            caller=caller.code,
            purpose=purpose,
            service_item=body.service_item,
            subject_key=audit.subject_key,
            applicant_key=applicant,
            reference_date=body.reference_date,
            channel="api",
            trace_id=uuid.uuid4().hex,
        )
        async with transaction(services.pool) as conn:
            decided = await decide(services, conn, application)
        count_decision(services, application, decided)  # committed
        row = decided.row
        audit.response = {"application_id": application.application_id, "outcome": row["outcome"]}
        return ApplicationResponse.model_validate(
            {**row, "application_id": str(row["application_id"]), "decision_id": str(row["decision_id"])}
        )
