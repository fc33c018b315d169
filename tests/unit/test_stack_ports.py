"""The stack refuses to start a service on a port something else already answers on."""

from __future__ import annotations

import socket

import pytest

from exchange.exceptions import StackError
from exchange.stack.processes import ensure_port_free


def test_a_port_another_process_listens_on_is_refused_with_the_setting_to_change() -> None:
    # A broker started there failed to bind while `stack up`'s readiness check was answered by the
    # other broker, so tests ran against someone else's Kafka.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(StackError, match=f"127.0.0.1:{port}.*EXCHANGE_STACK__KAFKA_PORT"):
            ensure_port_free(port, "Kafka", "EXCHANGE_STACK__KAFKA_PORT")
    ensure_port_free(port, "Kafka", "EXCHANGE_STACK__KAFKA_PORT")  # closed again: free
