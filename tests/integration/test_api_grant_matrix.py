"""The grant matrix over HTTP: every caller × purpose × fact (a verification), field (a profile read)
and proof type (an issue) is answered exactly as policy/grants.json — read here as raw JSON — grants:
200 when granted, 403 consent_missing when granted under consent (none is given here), and otherwise
403 naming what is missing. The unit matrix holds `authorise` to the same; this holds the routes to
it, each building its own access."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib import resources
from itertools import product
from typing import Any

import httpx
import pytest
from api_support import KEYS, store_person

from exchange import database
from exchange.api import create_api
from exchange.facts import FACT_NAMES
from exchange.settings import ExchangeSettings

CITIZEN = "440103198403037020"
GRANTS: dict[str, list[dict[str, Any]]] = json.loads(
    resources.files("policy").joinpath("grants.json").read_text(encoding="utf-8")
)["grants"]
PROOF_TYPES = sorted(
    json.loads(resources.files("policy").joinpath("proof_types.json").read_text(encoding="utf-8"))[
        "proof_types"
    ]
)
PURPOSES = sorted({grant["purpose"] for grants in GRANTS.values() for grant in grants} | {"unknown-purpose"})


def _grant(caller: str, purpose: str) -> dict[str, Any] | None:
    return next((grant for grant in GRANTS.get(caller, []) if grant["purpose"] == purpose), None)


def _expected(caller: str, purpose: str, key: str, name: str, missing: str) -> tuple[int, str | None]:
    grant = _grant(caller, purpose)
    if grant is None:
        return 403, "purpose_not_granted"
    if name not in grant.get(key, []):
        return 403, missing
    return (403, "consent_missing") if grant.get("consent_required") else (200, None)


@pytest.fixture
async def http(settings: ExchangeSettings, tmp_path: Any) -> AsyncIterator[httpx.AsyncClient]:
    database.migrate(settings.postgres)
    store_person(settings, CITIZEN)
    api_settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"signing_key_path": tmp_path / "signing-key.pem"})}
    )
    app = create_api(api_settings, relay=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://exchange") as client:
            yield client


def _answer(response: httpx.Response) -> tuple[int, str | None]:
    reason = response.json().get("reason") if response.status_code == 403 else None
    return response.status_code, reason


async def test_every_fact_field_and_proof_type_is_answered_exactly_as_granted(
    http: httpx.AsyncClient,
) -> None:
    wrong = []
    for caller, purpose in product(sorted(KEYS), PURPOSES):
        headers = {"X-API-Key": KEYS[caller]}
        for fact in sorted(FACT_NAMES):
            claim = {"fact": fact, "operator": "eq", "value": 0}
            body = {"subject": CITIZEN, "purpose": purpose, "claims": [claim]}
            answered = _answer(await http.post("/v1/verifications", json=body, headers=headers))
            expected = _expected(caller, purpose, "facts", fact, "fact_not_granted")
            if answered != expected:
                wrong.append(("verification", caller, purpose, fact, answered, expected))
            params = {"purpose": purpose, "fields": fact}
            response = await http.get(f"/v1/subjects/{CITIZEN}/profile", params=params, headers=headers)
            answered = _answer(response)
            expected = _expected(caller, purpose, "profile_fields", fact, "field_not_granted")
            if answered != expected:
                wrong.append(("profile", caller, purpose, fact, answered, expected))
            if answered[0] == 200:
                assert set(response.json()["fields"]) == {fact}, response.text
        for proof_type in PROOF_TYPES:
            body = {"proof_type": proof_type, "subject": CITIZEN, "purpose": purpose}
            answered = _answer(await http.post("/v1/proofs", json=body, headers=headers))
            expected = _expected(caller, purpose, "proof_types", proof_type, "proof_type_not_granted")
            if answered != expected:
                wrong.append(("proof", caller, purpose, proof_type, answered, expected))
    assert wrong == [], f"{len(wrong)} answers differ from the grants, e.g. {wrong[:5]}"
