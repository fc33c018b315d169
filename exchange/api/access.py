"""Access control at request time: the policy decision, then consent and delegation where needed."""

from __future__ import annotations

from exchange import consent
from exchange.api.context import Services
from exchange.api.exceptions import RefusedError
from exchange.api.storage import consents
from exchange.api.storage.pool import Connection
from exchange.policy import Access, Grant, authorise

# Verdicts remembered per process: the policy does not change while it runs, so the same access asked
# again has the same verdict. Bounded, as a purpose is whatever the caller sends.
_REMEMBERED = 4096


def grant_for(services: Services, access: Access) -> Grant:
    """The grant allowing `access`; `RefusedError` with the missing grant otherwise."""
    verdicts = services.verdicts
    verdict = verdicts.get(access)
    if verdict is None:
        verdict = authorise(services.policy, access)
        if len(verdicts) >= _REMEMBERED:
            verdicts.clear()
        verdicts[access] = verdict
    if verdict.grant is None:
        raise RefusedError(verdict.reason or "refused", verdict.message)
    return verdict.grant


async def check_consent(
    conn: Connection, grant: Grant, subject_key: str, applicant_key: str | None = None
) -> None:
    """`RefusedError` when the grant needs consent not in force, or an applicant holds no delegation."""
    if not grant.consent_required and (applicant_key is None or applicant_key == subject_key):
        return  # nothing to look up
    in_force = await consents.in_force(conn, subject_key, grant.caller, grant.purpose)
    refusal = consent.check(grant, in_force, subject_key=subject_key, applicant_key=applicant_key)
    if refusal is not None:
        raise RefusedError(refusal.reason, refusal.message)
