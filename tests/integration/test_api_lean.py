"""The lean path of POST /v1/verifications (exchange.api.lean) against FastAPI's own path, on the real
PostgreSQL: for a table of valid, malformed, unauthenticated and forbidden requests, the same status,
headers and body bytes, the same audit entry and the same metrics; and the valid ones really take it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from api_support import KEYS, store_person
from fastapi import FastAPI
from prometheus_client import REGISTRY

from exchange import database
from exchange.api import create_api
from exchange.api.lean import LeanRoutes
from exchange.api.models.proofs import ProofResponse
from exchange.settings import ExchangeSettings

CITIZEN = "440103198403037020"
UNKNOWN = "11010519491231002X"  # valid, but no profile
AS_OF = "2026-11-20T10:00:00+00:00"
JSON = {"content-type": "application/json"}
UNDECLARED = "x-test-send-chunked"  # this table's marker: send the body in chunks, with no Content-Length


def _body(**changes: Any) -> bytes:
    body: dict[str, Any] = {
        "subject": CITIZEN,
        "purpose": "public-rental-housing",
        "claims": [
            {"fact": "identity.status", "operator": "eq", "value": "normal"},
            {"fact": "property.owns_residential_in_city", "operator": "eq", "value": False},
            {"fact": "identity.district", "operator": "in", "value": ["440104", "440106"]},
        ],
        "reference_date": "2026-11-15",
        "as_of": AS_OF,
    }
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def _key(caller: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[caller], **JSON}


HOUSING = _key("housing-bureau")
# (case, headers, body, whether the lean path answers it itself; None: handed over before it is read whole)
CASES: list[tuple[str, dict[str, str], bytes, bool | None]] = [
    ("valid", HOUSING, _body(), True),
    ("valid, local as_of", HOUSING, _body(as_of="2026-11-20T18:00:00"), True),
    ("valid, unknown subject", HOUSING, _body(subject=UNKNOWN), True),
    ("valid, lower-case x", HOUSING, _body(subject=UNKNOWN.lower()), True),
    ("valid, duplicate key", HOUSING, _body()[:-1] + b', "purpose": "public-rental-housing"}', True),
    ("valid, spaces", HOUSING, b"  " + _body().replace(b",", b" ,\n ") + b"\n", True),
    (
        "valid, integral float",
        HOUSING,
        _body(claims=[{"fact": "identity.age", "operator": "ge", "value": 6.0}]),
        True,
    ),
    (
        "forbidden fact",
        HOUSING,
        _body(claims=[{"fact": "tax.months_paid_12", "operator": "ge", "value": 1}]),
        True,
    ),
    ("forbidden purpose", _key("bank"), _body(), True),
    (
        "consent missing",
        _key("talent-office"),
        _body(
            purpose="talent-green-card",
            claims=[{"fact": "identity.status", "operator": "eq", "value": "normal"}],
        ),
        True,
    ),
    ("unknown fact", HOUSING, _body(claims=[{"fact": "no.such.fact", "operator": "eq", "value": 1}]), True),
    (
        "in without a list",
        HOUSING,
        _body(claims=[{"fact": "identity.status", "operator": "in", "value": "x"}]),
        True,
    ),
    ("bad citizen id checksum", HOUSING, _body(subject="440103198403037021"), True),
    ("no key", JSON, _body(), False),
    ("unknown key", {"X-API-Key": "nope", **JSON}, _body(), False),
    ("empty key", {"X-API-Key": "", **JSON}, _body(), False),
    ("no key, malformed JSON", JSON, b'{"subject": ', False),
    ("malformed JSON", HOUSING, b'{"subject": "1",}', False),
    ("not an object", HOUSING, b"[1, 2]", False),
    ("empty body", HOUSING, b"", False),
    (
        "NaN",
        HOUSING,
        _body(claims=[{"fact": "identity.age", "operator": "ge", "value": float("nan")}]),
        False,
    ),
    ("control character", HOUSING, _body(purpose="public-rental\n-housing"), False),
    ("raw control character", HOUSING, _body().replace(b'"normal"', b'"nor\x01mal"'), False),
    (
        "lone surrogate",
        HOUSING,
        _body(claims=[{"fact": "identity.status", "operator": "eq", "value": "\ud800"}]),
        False,
    ),
    ("extra field", HOUSING, _body(extra=1), False),
    ("missing claims", HOUSING, _body(claims=None), False),
    ("no claims", HOUSING, _body(claims=[]), False),
    (
        "bad operator",
        HOUSING,
        _body(claims=[{"fact": "identity.status", "operator": "~", "value": 1}]),
        False,
    ),
    ("bad date", HOUSING, _body(reference_date="2026-13-01"), False),
    ("bad subject pattern", HOUSING, _body(subject="12345"), False),
    ("utf-16", HOUSING, _body().decode().encode("utf-16"), False),
    ("text/plain", {"X-API-Key": KEYS["housing-bureau"], "content-type": "text/plain"}, _body(), False),
    (
        "charset",
        {"X-API-Key": KEYS["housing-bureau"], "content-type": "application/json; charset=utf-8"},
        _body(),
        False,
    ),
    ("no content type", {"X-API-Key": KEYS["housing-bureau"]}, _body(), False),
    # Past the largest body taken (settings.api.max_body_bytes), a 413, audited: it was read whole.
    ("too large", HOUSING, _body(purpose="x" * (2 * 1024 * 1024)), None),
    ("too large, undeclared", {**HOUSING, UNDECLARED: "1"}, _body(purpose="x" * (2 * 1024 * 1024)), None),
]
_AUDITED = "caller, purpose, subject_key, action, outcome, reason, request, response, policy_version"


@pytest.fixture
def apps(
    settings: ExchangeSettings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FastAPI, FastAPI, list[bool]]]:
    database.migrate(settings.postgres)
    store_person(settings, CITIZEN, history=True)
    taken: list[bool] = []
    accepted = LeanRoutes._accepted

    def spy(self: LeanRoutes, *args: Any) -> Any:
        found = accepted(self, *args)
        taken.append(found is not None)
        return found

    monkeypatch.setattr(LeanRoutes, "_accepted", spy)
    yield create_api(settings, relay=False, lean=True), create_api(settings, relay=False, lean=False), taken


def _metrics(status: int, reason: str | None) -> tuple[float, float]:
    labels = {"route": "/v1/verifications", "method": "POST", "status": str(status)}
    answered = REGISTRY.get_sample_value("exchange_api_request_seconds_count", labels) or 0.0
    refusals = 0.0
    if reason is not None:
        refused = {"route": "/v1/verifications", "reason": reason}
        refusals = REGISTRY.get_sample_value("exchange_api_refusals_total", refused) or 0.0
    return answered, refusals


def _sent(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The headers and content to send: `body` itself, or, with the `UNDECLARED` marker, its chunks."""
    if UNDECLARED not in headers:
        return {"headers": headers, "content": body}

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    return {
        "headers": {name: value for name, value in headers.items() if name != UNDECLARED},
        "content": chunks(),
    }


async def _ask(
    app: FastAPI, settings: ExchangeSettings, headers: dict[str, str], body: bytes
) -> tuple[httpx.Response, tuple[Any, ...], tuple[float, float]]:
    """The answer, the audit entry it appended and how much the metrics moved."""
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        last = conn.execute("SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a 500 is an answer too
    async with httpx.AsyncClient(transport=transport, base_url="http://exchange") as http:
        # The metrics of an answer of the same status and reason, before and after.
        probe = await http.post("/v1/verifications", **_sent(headers, body))
        reason = (
            probe.json().get("reason") if probe.headers.get("content-type") == "application/json" else None
        )
        before = _metrics(probe.status_code, reason if isinstance(reason, str) else None)
        response = await http.post("/v1/verifications", **_sent(headers, body))
        after = _metrics(probe.status_code, reason if isinstance(reason, str) else None)
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        rows = conn.execute(
            f"SELECT {_AUDITED} FROM audit_log WHERE seq > %s ORDER BY seq", (last[0] if last else 0,)
        ).fetchall()
    assert len(rows) == 2, rows  # every answer is audited: the probe's entry and the answer's
    assert rows[0] == rows[1]
    return response, rows[1], (after[0] - before[0], after[1] - before[1])


@pytest.mark.parametrize(("case", "headers", "body", "lean"), CASES, ids=[case[0] for case in CASES])
async def test_the_lean_path_answers_exactly_as_fastapi(
    apps: tuple[FastAPI, FastAPI, list[bool]],
    settings: ExchangeSettings,
    case: str,
    headers: dict[str, str],
    body: bytes,
    lean: bool | None,
) -> None:
    lean_app, plain_app, taken = apps
    async with lean_app.router.lifespan_context(lean_app), plain_app.router.lifespan_context(plain_app):
        plain, plain_audit, plain_metrics = await _ask(plain_app, settings, headers, body)
        assert not taken  # the app without the lean path never consults it
        answered, audit, metrics = await _ask(lean_app, settings, headers, body)
    assert taken == ([] if lean is None else [lean, lean]), (
        "the lean path answered other requests than expected"
    )
    if lean is None:  # refused unread, as FastAPI refuses it (the lean path read any body whole)
        assert (answered.status_code, audit[4:6]) == (413, ("refused", "body_too_large"))
    assert (answered.status_code, answered.content) == (plain.status_code, plain.content)
    assert answered.headers.raw == plain.headers.raw
    assert audit == plain_audit
    assert metrics == plain_metrics == (1.0, 1.0 if plain.status_code == 403 else 0.0)
    if lean:
        assert answered.status_code != 401 and answered.headers["content-type"] == "application/json"


def _proof(**changes: Any) -> bytes:
    body: dict[str, Any] = {"proof_type": "household", "subject": CITIZEN, "purpose": "public-rental-housing"}
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


# (case, headers, body, whether the lean path answers it itself); the issued ones are compared apart
PROOF_CASES: list[tuple[str, dict[str, str], bytes, bool]] = [
    ("no record to certify", HOUSING, _proof(subject=UNKNOWN), True),
    ("forbidden proof type", HOUSING, _proof(proof_type="tax-payment"), True),
    ("unknown proof type", HOUSING, _proof(proof_type="no-such-proof"), True),
    ("forbidden purpose", _key("bank"), _proof(), True),
    ("bad citizen id checksum", HOUSING, _proof(subject="440103198403037021"), True),
    (
        "inverted period",
        _key("talent-office"),
        _proof(
            proof_type="tax-payment",
            purpose="talent-green-card",
            period_start="2026-10-01",
            period_end="2026-01-01",
        ),
        True,
    ),
    ("no key", JSON, _proof(), False),
    ("malformed JSON", HOUSING, b'{"proof_type": ', False),
    ("extra field", HOUSING, _proof(extra=True), False),
    ("bad date", HOUSING, _proof(period_start="yesterday"), False),
    (
        "charset",
        {"X-API-Key": KEYS["housing-bureau"], "content-type": "application/json; charset=utf-8"},
        _proof(subject=UNKNOWN),
        False,
    ),
]


async def _ask_proof(
    app: FastAPI, settings: ExchangeSettings, headers: dict[str, str], body: bytes
) -> tuple[httpx.Response, list[tuple[Any, ...]]]:
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        last = conn.execute("SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://exchange") as http:
        response = await http.post("/v1/proofs", content=body, headers=headers)
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        rows = conn.execute(
            f"SELECT {_AUDITED} FROM audit_log WHERE seq > %s ORDER BY seq", (last[0] if last else 0,)
        ).fetchall()
    return response, rows


@pytest.mark.parametrize(("case", "headers", "body", "lean"), PROOF_CASES, ids=[c[0] for c in PROOF_CASES])
async def test_the_lean_proof_path_answers_exactly_as_fastapi(
    apps: tuple[FastAPI, FastAPI, list[bool]],
    settings: ExchangeSettings,
    case: str,
    headers: dict[str, str],
    body: bytes,
    lean: bool | None,
) -> None:
    lean_app, plain_app, taken = apps
    async with lean_app.router.lifespan_context(lean_app), plain_app.router.lifespan_context(plain_app):
        plain, plain_audit = await _ask_proof(plain_app, settings, headers, body)
        answered, audit = await _ask_proof(lean_app, settings, headers, body)
    assert taken == [lean]
    assert (answered.status_code, answered.content) == (plain.status_code, plain.content)
    assert answered.status_code != 200 and answered.headers.raw == plain.headers.raw
    assert audit == plain_audit


async def test_a_proof_issued_by_the_lean_path_is_the_one_fastapi_issues(
    apps: tuple[FastAPI, FastAPI, list[bool]], settings: ExchangeSettings
) -> None:
    lean_app, plain_app, taken = apps
    async with lean_app.router.lifespan_context(lean_app), plain_app.router.lifespan_context(plain_app):
        plain, plain_audit = await _ask_proof(plain_app, settings, HOUSING, _proof())
        answered, audit = await _ask_proof(lean_app, settings, HOUSING, _proof())
    assert taken == [True] and plain.status_code == answered.status_code == 200
    assert answered.headers["content-type"] == plain.headers["content-type"] == "application/json"
    ours, theirs = answered.json(), plain.json()
    # Only the proof's id, its instant of issue and so its signature differ between two issues.
    assert list(ours) == list(theirs) == ["proof_id", "proof_type", "jws", "document"]
    assert list(ours["document"]) == list(theirs["document"])
    for differing in ("proof_id", "issued_at"):
        ours["document"].pop(differing), theirs["document"].pop(differing)
    assert ours["document"] == theirs["document"] and ours["proof_type"] == theirs["proof_type"]
    assert answered.content == ProofResponse.model_validate_json(answered.content).model_dump_json().encode()
    assert len(audit) == len(plain_audit) == 1
    assert audit[0][:-2] == plain_audit[0][:-2] and audit[0][-1] == plain_audit[0][-1]
    assert set(audit[0][-2]) == set(plain_audit[0][-2]) == {"proof_id", "records"}


async def test_a_body_holding_nan_is_a_422_naming_it_not_a_500(
    apps: tuple[FastAPI, FastAPI, list[bool]], settings: ExchangeSettings
) -> None:
    lean_app, plain_app, _ = apps
    body = _body(claims=[{"fact": "identity.age", "operator": "ge", "value": float("nan")}])
    async with lean_app.router.lifespan_context(lean_app), plain_app.router.lifespan_context(plain_app):
        for app in (lean_app, plain_app):
            answered, _, _ = await _ask(app, settings, HOUSING, body)
            assert answered.status_code == 422
            inputs = [error.get("input") for error in answered.json()["detail"]]
            assert "nan" in json.dumps(inputs)


UNRENDERABLE = [
    # A lone surrogate where a string is validated: FastAPI's 422 echoed it, which UTF-8 cannot write.
    ("surrogate subject", "/v1/verifications", HOUSING, _body(subject="\ud800")),
    ("surrogate key", "/v1/verifications", HOUSING, _body(extra={"\ud800": 1})),
    ("surrogate jws, public", "/v1/proofs/verify", JSON, json.dumps({"jws": "\udc00"}).encode()),
    # Bytes that are not UTF-8, sent without a JSON content type: the 422 echoed the raw bytes.
    ("not UTF-8, no content type", "/v1/verifications", {"X-API-Key": KEYS["housing-bureau"]}, b"\xff"),
    ("not UTF-8, public", "/v1/proofs/verify", {}, b"\xff\xfe"),
]


@pytest.mark.parametrize(
    ("case", "path", "headers", "body"), UNRENDERABLE, ids=[case[0] for case in UNRENDERABLE]
)
async def test_a_body_the_answer_cannot_echo_is_a_422_audited_as_such_not_a_500(
    apps: tuple[FastAPI, FastAPI, list[bool]],
    settings: ExchangeSettings,
    case: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    lean_app, plain_app, _ = apps
    async with lean_app.router.lifespan_context(lean_app), plain_app.router.lifespan_context(plain_app):
        for app in (lean_app, plain_app):
            answered, outcome = await _post(app, settings, path, headers, body)
            assert answered.status_code == 422, answered.text
            assert answered.json()["detail"]
            assert outcome == ("refused", "invalid_request", 422)


async def test_a_path_with_a_trailing_slash_is_an_audited_404_not_a_redirect(
    apps: tuple[FastAPI, FastAPI, list[bool]], settings: ExchangeSettings
) -> None:
    lean_app, _, _ = apps
    async with lean_app.router.lifespan_context(lean_app):
        answered, outcome = await _post(lean_app, settings, "/v1/verifications/", HOUSING, _body())
    assert answered.status_code == 404
    assert outcome == ("refused", "no_such_route", 404)


async def _post(
    app: FastAPI, settings: ExchangeSettings, path: str, headers: dict[str, str], body: bytes
) -> tuple[httpx.Response, tuple[Any, ...]]:
    """The answer and the outcome, reason and status of the one audit entry it appended."""
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        last = conn.execute("SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a 500 is an answer too
    async with httpx.AsyncClient(transport=transport, base_url="http://exchange") as http:
        answered = await http.post(path, content=body, headers=headers)
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        rows = conn.execute(
            "SELECT outcome, reason, (response->>'status')::int FROM audit_log WHERE seq > %s",
            (last[0] if last else 0,),
        ).fetchall()
    assert len(rows) == 1, rows
    return answered, rows[0]
