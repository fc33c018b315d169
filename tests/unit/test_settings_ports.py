"""A local service's port is said once: for the stack and its clients alike."""

from __future__ import annotations

import os

import pytest

from exchange.settings import ExchangeSettings


@pytest.fixture(autouse=True)
def _no_exchange_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("EXCHANGE_")]:
        monkeypatch.delenv(name)


def test_a_stack_port_alone_moves_the_clients_and_the_controller_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Set apart, EXCHANGE_STACK__KAFKA_PORT=29092 started a broker there while every client went on
    # using 127.0.0.1:19092, another run's broker.
    monkeypatch.setenv("EXCHANGE_STACK__KAFKA_PORT", "29092")
    monkeypatch.setenv("EXCHANGE_STACK__POSTGRES_PORT", "25432")
    settings = ExchangeSettings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:29092"
    assert settings.stack.kafka_controller_port == 29093
    assert settings.postgres.port == 25432
    assert "port=25432 dbname=registry" in settings.connectors.registry_dsn.get_secret_value()


def test_a_client_port_alone_moves_the_stack_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_KAFKA__BOOTSTRAP_SERVERS", "localhost:39092")
    monkeypatch.setenv("EXCHANGE_POSTGRES__PORT", "35432")
    settings = ExchangeSettings()
    assert (settings.stack.kafka_port, settings.stack.kafka_controller_port) == (39092, 39093)
    assert settings.stack.postgres_port == 35432


def test_ports_given_on_both_sides_and_remote_brokers_are_taken_as_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXCHANGE_STACK__KAFKA_PORT", "29092")
    monkeypatch.setenv("EXCHANGE_STACK__KAFKA_CONTROLLER_PORT", "29999")
    monkeypatch.setenv("EXCHANGE_KAFKA__BOOTSTRAP_SERVERS", "kafka-1.example:9092")
    settings = ExchangeSettings()
    assert settings.kafka.bootstrap_servers == "kafka-1.example:9092"
    assert (settings.stack.kafka_port, settings.stack.kafka_controller_port) == (29092, 29999)


def test_with_no_port_given_the_defaults_hold() -> None:
    settings = ExchangeSettings()
    assert (settings.kafka.bootstrap_servers, settings.stack.kafka_controller_port) == (
        "127.0.0.1:19092",
        19093,
    )
    assert (settings.stack.postgres_port, settings.postgres.port) == (15432, 15432)
