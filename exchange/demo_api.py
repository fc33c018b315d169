"""The demo's questions to the API: what an approval service would ask, printed with the answers.

Uses the development callers of `policy/callers.json` (their keys are documented in the README).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel

from exchange.settings import ExchangeSettings, child_environment

_console = Console()
KEYS = {
    "housing-bureau": "dev-housing-key",
    "talent-office": "dev-talent-key",
    "civil-affairs": "dev-civil-affairs-key",
    "bank": "dev-bank-key",
}


def _pick(expected: dict[str, Any], item: str, outcome: str) -> str | None:
    """A subject whose expected decision for `item` is `outcome`."""
    return next((cid for cid, items in expected["decisions"].items() if items.get(item) == outcome), None)


def _show(title: str, response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    shown = json.dumps(body, ensure_ascii=False, indent=1)
    if len(shown) > 1800:
        shown = shown[:1800] + "\n…"
    _console.print(Panel(shown, title=f"{title} → HTTP {response.status_code}", expand=False))
    return body


def ask_api(settings: ExchangeSettings, expected: dict[str, Any]) -> None:
    """Verifications, a proof and its public check, 秒批 with and without consent, and a refusal."""
    base = f"http://{settings.api.host}:{settings.api.port}"
    reference = expected["reference_date"]
    renter = _pick(expected, "public-rental-housing", "approved")
    elder = _pick(expected, "longevity-allowance", "approved")
    talent = _pick(expected, "talent-green-card", "approved")
    with httpx.Client(base_url=base, timeout=30) as client:
        _wait_ready(client)
        if renter:
            _show(
                "housing bureau verifies claims (no raw data returned)",
                client.post(
                    "/v1/verifications",
                    headers={"X-API-Key": KEYS["housing-bureau"]},
                    json={
                        "subject": renter,
                        "purpose": "public-rental-housing",
                        "reference_date": reference,
                        "claims": [
                            {"fact": "identity.status", "operator": "eq", "value": "normal"},
                            {"fact": "property.owns_residential_in_city", "operator": "eq", "value": False},
                        ],
                    },
                ),
            )
            _show(
                "秒批 public-rental-housing",
                client.post(
                    "/v1/applications",
                    headers={"X-API-Key": KEYS["housing-bureau"]},
                    json={
                        "service_item": "public-rental-housing",
                        "subject": renter,
                        "reference_date": reference,
                    },
                ),
            )
        if elder:
            proof = _show(
                "civil affairs asks for a household proof (户籍证明)",
                client.post(
                    "/v1/proofs",
                    headers={"X-API-Key": KEYS["civil-affairs"]},
                    json={"proof_type": "household", "subject": elder, "purpose": "longevity-allowance"},
                ),
            )
            if "jws" in proof:
                _show(
                    "anyone verifies the proof", client.post("/v1/proofs/verify", json={"jws": proof["jws"]})
                )
        if talent:
            application = {
                "service_item": "talent-green-card",
                "subject": talent,
                "reference_date": reference,
            }
            _show(
                "talent office without the subject's consent",
                client.post(
                    "/v1/applications", headers={"X-API-Key": KEYS["talent-office"]}, json=application
                ),
            )
            _grant_consent(settings, talent)
            for _ in range(30):
                answer = client.post(
                    "/v1/applications", headers={"X-API-Key": KEYS["talent-office"]}, json=application
                )
                if answer.status_code == 200:
                    break
                time.sleep(1)
            _show("talent office after consent (授权)", answer)
        if renter:
            _show(
                "a bank with no grant",
                client.post(
                    "/v1/verifications",
                    headers={"X-API-Key": KEYS["bank"]},
                    json={
                        "subject": renter,
                        "purpose": "credit",
                        "claims": [{"fact": "tax.months_paid_12", "operator": "ge", "value": 6}],
                    },
                ),
            )


def _wait_ready(client: httpx.Client) -> None:
    for _ in range(60):
        try:
            if client.get("/v1/keys").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)


def _grant_consent(settings: ExchangeSettings, subject: str) -> None:
    """The subject consents, as they would through the citizens' portal: `exchange consent grant`."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "exchange",
            "consent",
            "grant",
            "--subject",
            subject,
            "--caller",
            "talent-office",
            "--purpose",
            "talent-green-card",
        ],
        env=child_environment(settings),
        check=True,
        capture_output=True,
    )
    _console.print("[cyan]the subject granted consent to the talent office (exchange consent grant)[/]")
