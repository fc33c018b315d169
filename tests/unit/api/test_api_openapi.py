"""The OpenAPI description declares what every route can answer besides its success."""

from __future__ import annotations

from pathlib import Path

from exchange.api import create_api
from exchange.settings import ExchangeSettings


def test_every_route_declares_503_and_every_route_taking_a_body_declares_413(tmp_path: Path) -> None:
    # Every route appends an audit entry before it answers, so each answers 503 while PostgreSQL is
    # down (GET /v1/keys, audited since, declared none); any body over the limit is a 413 (declared
    # nowhere).
    settings = ExchangeSettings()
    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"signing_key_path": tmp_path / "key.pem"})}
    )
    paths = create_api(settings, relay=False).openapi()["paths"]
    operations = {
        (method, path): operation for path, item in paths.items() for method, operation in item.items()
    }
    assert ("get", "/v1/keys") in operations and ("post", "/v1/proofs/verify") in operations
    for (method, path), operation in operations.items():
        assert "503" in operation["responses"], f"{method} {path}"
        assert ("413" in operation["responses"]) == ("requestBody" in operation), f"{method} {path}"
