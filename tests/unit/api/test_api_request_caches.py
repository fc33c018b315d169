"""What each process remembers between requests: a citizen ID's subject key is worked out once and gives
the same answer as worked out afresh, refusals are never remembered, and an API key is never kept."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from exchange.api import context
from exchange.api.context import Services
from exchange.api.exceptions import InvalidRequestError
from exchange.api.routes import deps
from exchange.api.routes.deps import identify
from exchange.api.storage.pool import create_pool
from exchange.demo_api import KEYS
from exchange.policy import load_policy
from exchange.settings import ExchangeSettings
from exchange.subjects import citizen_id_check_character, subject_key

FIRST17 = "44010419840303001"
CITIZEN_ID = FIRST17 + citizen_id_check_character(FIRST17)


def _services() -> Services:
    settings = ExchangeSettings()
    signer: Any = None  # no request here signs
    return Services(settings, load_policy(), create_pool(settings), signer)


def test_a_subject_key_is_taken_once_per_citizen_id(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services()
    secret = services.settings.subject_secret.get_secret_value().encode()
    taken: list[str] = []

    def counted(identifier: str, key: bytes) -> str:
        taken.append(identifier)
        return subject_key(identifier, key)

    monkeypatch.setattr(context, "subject_key", counted)
    lower = CITIZEN_ID[:17] + CITIZEN_ID[17].lower()
    for _ in range(3):
        assert services.subject(CITIZEN_ID) == (CITIZEN_ID, subject_key(CITIZEN_ID, secret))
        assert services.subject_key(lower) == subject_key(CITIZEN_ID, secret)
    assert taken == [CITIZEN_ID, CITIZEN_ID]  # once per ID as sent


def test_an_invalid_citizen_id_is_refused_every_time() -> None:
    services = _services()
    broken = FIRST17 + ("0" if CITIZEN_ID[17] != "0" else "1")
    for _ in range(2):
        with pytest.raises(InvalidRequestError, match="check character"):
            services.subject_key(broken, ("body", "subject"))
    assert services.subjects == {}


def test_the_remembered_subjects_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "_SUBJECTS", 2)
    services = _services()
    ids = [
        first + citizen_id_check_character(first) for first in (f"4401041984030{n}001" for n in range(1, 6))
    ]
    for citizen_id in ids:
        services.subject(citizen_id)
        assert len(services.subjects) <= 2
    assert services.subject(ids[0])[0] == ids[0]


def test_an_api_key_is_looked_up_by_its_hash_and_never_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services()
    looked_up: list[str] = []
    policy = type(services.policy)
    by_hash = policy.caller_by_key_hash

    def counted(self: Any, key_sha256: str) -> Any:
        looked_up.append(key_sha256)
        return by_hash(self, key_sha256)

    monkeypatch.setattr(policy, "caller_by_key_hash", counted)
    key = KEYS["housing-bureau"]
    for _ in range(2):
        found = identify(services, None, key)
        assert found is not None and found.code == "housing-bureau"
        assert identify(services, None, "not-a-key") is None
    assert (
        looked_up == [hashlib.sha256(key.encode()).hexdigest(), hashlib.sha256(b"not-a-key").hexdigest()] * 2
    )
    # Nothing the process keeps between requests holds the key itself.
    assert key not in repr(vars(services))
    assert deps.identify(services, None, None) is None
