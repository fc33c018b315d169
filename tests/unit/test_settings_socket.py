"""The stack's PostgreSQL is reached through its Unix socket, else over TCP; any other server as given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError

from exchange.settings import ExchangeSettings


@pytest.fixture(autouse=True)
def _no_exchange_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("EXCHANGE_")]:
        monkeypatch.delenv(name)


def _hosts(settings: ExchangeSettings) -> list[str]:
    return str(conninfo_to_dict(settings.postgres.conninfo())["host"]).split(",")


def test_the_stacks_server_is_reached_through_its_socket_then_over_tcp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _hosts(ExchangeSettings()) == [str(tmp_path / ".stack" / "postgres" / "run"), "127.0.0.1"]
    # The socket of a stack elsewhere, on another port: still the stack's, as both are said once.
    monkeypatch.setenv("EXCHANGE_STACK__HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("EXCHANGE_STACK__POSTGRES_PORT", "25432")
    settings = ExchangeSettings()
    assert _hosts(settings) == [str(tmp_path / "elsewhere" / "postgres" / "run"), "127.0.0.1"]
    assert conninfo_to_dict(settings.postgres.conninfo())["port"] == "25432"


@pytest.mark.parametrize(
    "variables",
    [
        {"EXCHANGE_POSTGRES__HOST": "db.example"},  # another machine's server
        {"EXCHANGE_POSTGRES__PORT": "35432", "EXCHANGE_STACK__POSTGRES_PORT": "25432"},  # not the stack's
        {"EXCHANGE_STACK__HOME": "/tmp/a,b"},  # a folder libpq cannot take in a list of hosts
    ],
)
def test_any_other_server_is_reached_as_given(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = ExchangeSettings()
    assert settings.postgres.socket_dir is None
    assert _hosts(settings) == [settings.postgres.host]


def test_an_empty_socket_folder_keeps_to_tcp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_POSTGRES__SOCKET_DIR", "")
    settings = ExchangeSettings()
    assert settings.postgres.socket_dir is None
    assert _hosts(settings) == ["127.0.0.1"]


def test_a_copy_given_another_host_reaches_that_host_not_the_local_socket() -> None:
    local = ExchangeSettings().postgres
    assert local.socket_dir is not None
    remote = local.model_copy(update={"host": "db.example"})
    assert str(conninfo_to_dict(remote.conninfo())["host"]) == "db.example"


def test_a_socket_folder_given_must_be_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_POSTGRES__SOCKET_DIR", "relative/run")
    with pytest.raises(ValidationError, match="absolute path"):
        ExchangeSettings()


def test_a_password_with_a_space_survives_the_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    # Written unquoted into the string, libpq read "secret" as the password and "phrase" as a syntax error.
    monkeypatch.setenv("EXCHANGE_POSTGRES__PASSWORD", "secret phrase")
    assert conninfo_to_dict(ExchangeSettings().postgres.conninfo())["password"] == "secret phrase"
