"""The policy decision: is this caller, for this purpose, allowed this access? Deny by default.

Pure: a function of the policy and the access asked for. Every refusal names the reason code and
the grant that is missing, so the caller (or whoever edits `policy/grants.json`) can act on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from exchange.policy.model import Grant, Policy

# Reason codes: stable, used in responses, audit entries and metric labels.
UNKNOWN_CALLER = "unknown_caller"
PURPOSE_NOT_GRANTED = "purpose_not_granted"
FACT_NOT_GRANTED = "fact_not_granted"
FIELD_NOT_GRANTED = "field_not_granted"
PROOF_TYPE_NOT_GRANTED = "proof_type_not_granted"
SERVICE_ITEM_NOT_GRANTED = "service_item_not_granted"
SUBJECT_AUDIT_NOT_GRANTED = "subject_audit_not_granted"
CONSENT_MISSING = "consent_missing"
DELEGATION_MISSING = "delegation_missing"


@dataclass(frozen=True, slots=True)
class Access:
    """What a request asks for: one purpose, and any of facts, fields, a proof type, a service item."""

    caller: str
    purpose: str
    facts: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()
    proof_type: str | None = None
    service_item: str | None = None
    subject_audit: bool = False
    # A profile read: allowed only where the grant lists some profile field (with none, even a read of
    # no field would tell whether the exchange holds data on the subject).
    profile: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """Allowed under `grant`, or refused with a reason code and a message naming the missing grant."""

    grant: Grant | None
    reason: str | None = None
    message: str = ""

    @property
    def allowed(self) -> bool:
        """Whether the access is granted."""
        return self.reason is None


def _refuse(reason: str, message: str) -> Verdict:
    return Verdict(None, reason, message)


def _missing(asked: Iterable[str], granted: frozenset[str]) -> list[str]:
    return sorted(set(asked) - granted)


def authorise(policy: Policy, access: Access) -> Verdict:
    """The verdict on one access; consent is checked afterwards, where the grant requires it."""
    if access.caller not in policy.callers:
        return _refuse(UNKNOWN_CALLER, f"caller {access.caller!r} is not in callers.json")
    grant = policy.grants.get(access.caller, {}).get(access.purpose)
    where = f"grants.json: grants.{access.caller}[purpose={access.purpose}]"
    if grant is None:
        granted = sorted(policy.grants.get(access.caller, {}))
        return _refuse(
            PURPOSE_NOT_GRANTED,
            f"caller {access.caller} has no grant for purpose {access.purpose!r} "
            f"(granted purposes: {', '.join(granted) or 'none'}); it needs an entry in {where}",
        )
    checks = (
        (FACT_NOT_GRANTED, "facts", _missing(access.facts, grant.facts)),
        (FIELD_NOT_GRANTED, "profile_fields", _missing(access.fields, grant.profile_fields)),
        (PROOF_TYPE_NOT_GRANTED, "proof_types", _missing(_some(access.proof_type), grant.proof_types)),
        (
            SERVICE_ITEM_NOT_GRANTED,
            "service_items",
            _missing(_some(access.service_item), grant.service_items),
        ),
    )
    for reason, key, missing in checks:
        if missing:
            return _refuse(reason, f"{', '.join(missing)} not granted: {where}.{key} does not list it")
    if access.profile and not grant.profile_fields:
        return _refuse(FIELD_NOT_GRANTED, f"no profile field granted: {where}.profile_fields is empty")
    if access.subject_audit and not grant.subject_audit:
        return _refuse(
            SUBJECT_AUDIT_NOT_GRANTED, f"data-use history not granted: {where}.subject_audit is false"
        )
    return Verdict(grant)


def refuse_proof_reads(policy: Policy, caller: str) -> Verdict | None:
    """The refusal of every stored proof to `caller` when none of its grants lists a proof type, or None
    (then the proof's own purpose and type decide, `authorise`). Asked before a proof is looked up, so
    that a caller who may read no proof learns nothing of which proof ids exist."""
    granted = policy.grants.get(caller, {})
    if any(grant.proof_types for grant in granted.values()):
        return None
    return _refuse(
        PROOF_TYPE_NOT_GRANTED,
        f"caller {caller} is granted no proof type, so may read no proof: "
        f"grants.json: grants.{caller}[*].proof_types lists none",
    )


def _some(value: str | None) -> tuple[str, ...]:
    return () if value is None else (value,)
