"""The grant matrix: every caller × purpose × fact, field, proof type and service item is allowed
exactly when policy/grants.json grants it — read here from the raw JSON, not from the loader."""

from __future__ import annotations

import json
from importlib import resources
from itertools import product
from typing import Any

import pytest

from exchange.facts import FACT_NAMES
from exchange.policy import Access, authorise, load_policy
from exchange.policy.decide import (
    FACT_NOT_GRANTED,
    FIELD_NOT_GRANTED,
    PROOF_TYPE_NOT_GRANTED,
    PURPOSE_NOT_GRANTED,
    SERVICE_ITEM_NOT_GRANTED,
    SUBJECT_AUDIT_NOT_GRANTED,
    UNKNOWN_CALLER,
)

POLICY = load_policy()


def _raw(name: str) -> Any:
    return json.loads(resources.files("policy").joinpath(name).read_text(encoding="utf-8"))


GRANTS: dict[str, list[dict[str, Any]]] = _raw("grants.json")["grants"]
CALLERS = sorted(_raw("callers.json")["callers"])
PURPOSES = sorted({grant["purpose"] for grants in GRANTS.values() for grant in grants} | {"unknown-purpose"})
PROOF_TYPES = [*sorted(_raw("proof_types.json")["proof_types"]), "no-such-proof"]
SERVICE_ITEMS = [*sorted(_raw("service_items.json")["service_items"]), "no-such-item"]


def granted(caller: str, purpose: str, key: str, name: str) -> bool:
    return any(grant["purpose"] == purpose and name in grant.get(key, []) for grant in GRANTS.get(caller, []))


def has_purpose(caller: str, purpose: str) -> bool:
    return any(grant["purpose"] == purpose for grant in GRANTS.get(caller, []))


def _expect(verdict_reason: str | None, caller: str, purpose: str, allowed: bool, missing: str) -> None:
    if allowed:
        assert verdict_reason is None
    elif not has_purpose(caller, purpose):
        assert verdict_reason == PURPOSE_NOT_GRANTED
    else:
        assert verdict_reason == missing


@pytest.mark.parametrize(("caller", "purpose"), list(product(CALLERS, PURPOSES)))
def test_facts_and_fields_are_allowed_exactly_when_granted(caller: str, purpose: str) -> None:
    for fact in sorted(FACT_NAMES):
        verdict = authorise(POLICY, Access(caller, purpose, facts=frozenset({fact})))
        _expect(verdict.reason, caller, purpose, granted(caller, purpose, "facts", fact), FACT_NOT_GRANTED)
        verdict = authorise(POLICY, Access(caller, purpose, fields=frozenset({fact})))
        allowed = granted(caller, purpose, "profile_fields", fact)
        _expect(verdict.reason, caller, purpose, allowed, FIELD_NOT_GRANTED)


@pytest.mark.parametrize(("caller", "purpose"), list(product(CALLERS, PURPOSES)))
def test_a_profile_read_is_allowed_exactly_where_some_profile_field_is_granted(
    caller: str, purpose: str
) -> None:
    # A read naming no field (every granted one) tells whether the exchange holds data on the subject.
    verdict = authorise(POLICY, Access(caller, purpose, profile=True))
    allowed = any(g["purpose"] == purpose and g.get("profile_fields") for g in GRANTS.get(caller, []))
    _expect(verdict.reason, caller, purpose, allowed, FIELD_NOT_GRANTED)


@pytest.mark.parametrize(("caller", "purpose"), list(product(CALLERS, PURPOSES)))
def test_proof_types_and_service_items_are_allowed_exactly_when_granted(caller: str, purpose: str) -> None:
    for proof_type in PROOF_TYPES:
        verdict = authorise(POLICY, Access(caller, purpose, proof_type=proof_type))
        allowed = granted(caller, purpose, "proof_types", proof_type)
        _expect(verdict.reason, caller, purpose, allowed, PROOF_TYPE_NOT_GRANTED)
    for item in SERVICE_ITEMS:
        verdict = authorise(POLICY, Access(caller, purpose, service_item=item))
        allowed = granted(caller, purpose, "service_items", item)
        _expect(verdict.reason, caller, purpose, allowed, SERVICE_ITEM_NOT_GRANTED)


@pytest.mark.parametrize(("caller", "purpose"), list(product(CALLERS, PURPOSES)))
def test_subject_audit_is_allowed_exactly_when_granted(caller: str, purpose: str) -> None:
    verdict = authorise(POLICY, Access(caller, purpose, subject_audit=True))
    allowed = any(g["purpose"] == purpose and g.get("subject_audit") for g in GRANTS.get(caller, []))
    _expect(verdict.reason, caller, purpose, allowed, SUBJECT_AUDIT_NOT_GRANTED)


def test_one_ungranted_fact_refuses_the_whole_request_and_names_it() -> None:
    verdict = authorise(
        POLICY,
        Access(
            "housing-bureau",
            "public-rental-housing",
            facts=frozenset({"identity.status", "tax.months_paid_12"}),
        ),
    )
    assert verdict.reason == FACT_NOT_GRANTED
    assert "tax.months_paid_12" in verdict.message and "grants.housing-bureau" in verdict.message
    assert "identity.status" not in verdict.message.split(" not granted")[0]


def test_the_bank_is_granted_nothing_and_an_unknown_caller_is_refused() -> None:
    for purpose in PURPOSES:
        assert authorise(POLICY, Access("bank", purpose)).reason == PURPOSE_NOT_GRANTED
    assert authorise(POLICY, Access("stranger", "public-rental-housing")).reason == UNKNOWN_CALLER
