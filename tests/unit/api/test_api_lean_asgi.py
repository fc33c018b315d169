"""The lean path's hand-over to FastAPI (exchange.api.lean), at the ASGI level: whatever it does not
answer reaches the app behind it with the request exactly as sent. (Its answers are compared with
FastAPI's on the real database in tests/integration/test_api_lean.py.)"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import APIRouter
from pydantic import TypeAdapter
from starlette.types import Message, Receive, Scope, Send

from exchange.api.lean import Lean, LeanRoutes
from exchange.api.models.verifications import VerificationRequest, VerificationResponse
from exchange.policy import load_policy
from exchange.settings import ExchangeSettings

BODY = json.dumps({"subject": "440103198403037020", "purpose": "x", "claims": []}).encode()


class Behind:
    """The app behind the lean path: records what reached it and the body it could read."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, list[str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, types = b"", []
        while True:
            message = await receive()
            types.append(message["type"])
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.calls.append((scope["path"], body, types))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _lean(behind: Behind) -> LeanRoutes:
    services = SimpleNamespace(settings=ExchangeSettings(), policy=load_policy())
    api: Any = SimpleNamespace(state=SimpleNamespace(services=services), exception_handlers={})
    return LeanRoutes(behind, api)


def _scope(path: str, headers: dict[str, str]) -> Scope:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return {"type": "http", "method": "POST", "path": path, "root_path": "", "headers": raw}


async def _call(lean: LeanRoutes, scope: Scope, messages: list[Message]) -> list[Message]:
    pending = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await lean(scope, receive, send)
    return sent


def _chunks(body: bytes, size: int) -> list[Message]:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]


async def test_a_request_it_does_not_answer_reaches_fastapi_with_its_whole_body() -> None:
    behind = Behind()
    lean = _lean(behind)
    json_type = {"content-type": "application/json"}
    # No key, an unknown key, a body the model refuses (no claims), another content type: all handed over.
    for headers in (
        json_type,
        {**json_type, "x-api-key": "unknown"},
        {**json_type, "x-api-key": "dev-housing-key"},
        {"content-type": "text/plain", "x-api-key": "dev-housing-key"},
    ):
        sent = await _call(lean, _scope("/v1/verifications", headers), _chunks(BODY, 7))
        assert sent[0]["status"] == 299
    assert [call[:2] for call in behind.calls] == [("/v1/verifications", BODY)] * 4
    # The replayed body comes as one message, and the app reads on from the client after it.
    assert all(types == ["http.request"] for _, _, types in behind.calls)


async def test_a_client_gone_mid_body_and_other_routes_are_fastapi_s() -> None:
    behind = Behind()
    lean = _lean(behind)
    headers = {"content-type": "application/json", "x-api-key": "dev-housing-key"}
    await _call(lean, _scope("/v1/verifications", headers), _chunks(BODY, 7)[:2])
    await _call(lean, _scope("/v1/proofs/verify", headers), _chunks(BODY, 100))
    assert behind.calls[0][2] == ["http.disconnect"]  # FastAPI's path sees the disconnection itself
    assert behind.calls[1] == ("/v1/proofs/verify", BODY, ["http.request"])


async def test_an_exception_no_handler_takes_is_a_plain_500_then_raised_on_as_fastapi_answers_it() -> None:
    # In front of FastAPI's stack, the lean path answers what FastAPI's outermost ServerErrorMiddleware
    # would: "Internal Server Error" as text, then the exception goes on to the server (which logs it).
    router = APIRouter()

    @router.post("/v1/failing", name="failing")
    async def failing() -> None:  # pragma: no cover - only declared, as the lean routes are
        raise AssertionError

    async def answer(request: Any, caller: Any, services: Any) -> Any:
        raise LookupError("nothing handles this")

    failing_route = Lean(
        "/v1/failing", "failing", router, VerificationRequest, answer, TypeAdapter(VerificationResponse)
    )
    services = SimpleNamespace(settings=ExchangeSettings(), policy=load_policy())
    api: Any = SimpleNamespace(state=SimpleNamespace(services=services), exception_handlers={}, debug=False)
    lean = LeanRoutes(Behind(), api, routes=(failing_route,))
    body = json.dumps(
        {
            "subject": "440103198403037020",
            "purpose": "public-rental-housing",
            "claims": [{"fact": "identity.status", "operator": "eq", "value": "normal"}],
        }
    ).encode()
    headers = {"content-type": "application/json", "x-api-key": "dev-housing-key"}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(LookupError):
        await lean(_scope("/v1/failing", headers), receive, send)
    assert sent[0]["status"] == 500
    assert dict(sent[0]["headers"])[b"content-type"] == b"text/plain; charset=utf-8"
    assert sent[1]["body"] == b"Internal Server Error"
