"""GET /v1/subjects/{subject_id}/profile and GET /v1/subjects/{subject_id}/audit."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query

from exchange.api import evaluation
from exchange.api.access import check_consent, grant_for
from exchange.api.auditing import audited
from exchange.api.exceptions import InvalidRequestError
from exchange.api.models.common import CODE_PATTERN, ERRORS, EXAMPLE_SUBJECT, ID_PATTERN
from exchange.api.models.profile import ProfileResponse, SubjectAuditResponse
from exchange.api.routes.deps import AuthDep
from exchange.api.storage import audit as audit_table
from exchange.api.storage.pool import connection
from exchange.facts import FACT_NAMES
from exchange.policy import Access

router = APIRouter(tags=["subjects"])
PROFILE = "/v1/subjects/{subject_id}/profile"
HISTORY = "/v1/subjects/{subject_id}/audit"
HISTORY_PAGE = 500  # the most entries a page of the data-use history holds
SubjectPath = Annotated[
    str,
    Path(pattern=ID_PATTERN, description="公民身份号码 of the subject", examples=[EXAMPLE_SUBJECT]),
]
PurposeQuery = Annotated[
    str,
    Query(pattern=CODE_PATTERN, description="事项 code the caller acts for", examples=["talent-green-card"]),
]


def _fields(raw: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated `fields` alike; None when not given (then every granted field)."""
    if raw is None:
        return None
    fields = sorted({name.strip() for item in raw for name in item.split(",") if name.strip()})
    if not fields:
        raise InvalidRequestError(
            "fields names no field; leave it out for every granted field", ("query", "fields")
        )
    unknown = [name for name in fields if name not in FACT_NAMES]
    if unknown:
        raise InvalidRequestError(
            f"unknown fields {', '.join(unknown)}; fields are fact names", ("query", "fields")
        )
    return fields


@router.get(PROFILE, response_model=ProfileResponse, responses=ERRORS, name="profile.read")
async def read_profile(
    subject_id: SubjectPath,
    purpose: PurposeQuery,
    auth: AuthDep,
    fields: Annotated[
        list[str] | None,
        Query(description="fact names, repeated or comma-separated", examples=[["identity.status"]]),
    ] = None,
    as_of: Annotated[dt.datetime | None, Query(description="what the exchange knew then")] = None,
    reference_date: Annotated[
        dt.date | None,
        Query(
            description="the date facts are evaluated on; default today, never after", examples=["2026-11-15"]
        ),
    ] = None,
) -> ProfileResponse:
    """The values of granted facts about a subject; all granted ones when `fields` is not given."""
    caller, services = auth.caller, auth.services
    asked = {"fields": fields, "as_of": as_of, "reference_date": reference_date}
    async with audited(services, PROFILE, caller.code, "profile.read", purpose, asked) as audit:
        wanted = _fields(fields)
        as_of = evaluation.known_instant(as_of, ("query", "as_of"))
        evaluation.reported_date(reference_date, ("query", "reference_date"))
        audit.subject_key = services.subject_key(subject_id, ("path", "subject_id"))
        grant = grant_for(
            services, Access(caller.code, purpose, fields=frozenset(wanted or ()), profile=True)
        )
        names = sorted(grant.profile_fields) if wanted is None else wanted
        async with connection(services.pool) as conn:  # reads only
            await check_consent(conn, grant, audit.subject_key)
            known = await evaluation.evaluate(
                conn, audit.subject_key, reference_date, as_of, services.profiles
            )
        audit.response = {"fields": names, "profile_version": known.profile_version}
        return ProfileResponse.model_validate(
            {
                "purpose": purpose,
                "reference_date": known.reference_date,
                "as_of": known.as_of,
                "profile_version": known.profile_version,
                "fields": {name: known.facts[name].value for name in names},
                "lineage": {name: evaluation.lineage(known.facts[name].lineage) for name in names},
            }
        )


@router.get(HISTORY, response_model=SubjectAuditResponse, responses=ERRORS, name="subject_audit.read")
async def read_history(
    subject_id: SubjectPath,
    purpose: PurposeQuery,
    auth: AuthDep,
    limit: Annotated[int, Query(ge=1, le=HISTORY_PAGE, description="entries in the page")] = 100,
    before: Annotated[
        int | None,
        Query(ge=1, le=2**63 - 1, description="the `next_before` of the page before; default: the newest"),
    ] = None,
) -> SubjectAuditResponse:
    """Who used the subject's data, for which purpose, when (for the subject's own portal): newest
    first, a page at a time."""
    caller, services = auth.caller, auth.services
    asked = {"limit": limit, "before": before}
    async with audited(services, HISTORY, caller.code, "subject_audit.read", purpose, asked) as audit:
        audit.subject_key = services.subject_key(subject_id, ("path", "subject_id"))
        grant = grant_for(services, Access(caller.code, purpose, subject_audit=True))
        async with connection(services.pool) as conn:
            await check_consent(conn, grant, audit.subject_key)
            # One more than the page: whether there are older entries.
            rows = await audit_table.subject_history(conn, audit.subject_key, limit + 1, before)
        rows, older = rows[:limit], len(rows) > limit
        callers = services.policy.callers
        entries = [
            {
                **row,
                "caller_name": callers[row["caller"]].name_zh if row["caller"] in callers else row["caller"],
            }
            for row in rows
        ]
        audit.response = {"entries": len(entries)}
        next_before = rows[-1]["seq"] if older else None
        return SubjectAuditResponse.model_validate({"entries": entries, "next_before": next_before})
