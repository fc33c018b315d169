"""`start_metrics_server`: off at port 0, loopback only, and a clear error when the port is taken."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from monitoring.exceptions import MetricsServerError
from monitoring.serve import start_metrics_server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_port_zero_serves_nothing() -> None:
    assert start_metrics_server(0) is None


def test_serves_the_registry_on_the_loopback() -> None:
    registry = CollectorRegistry()
    Counter("served_things_total", "things", registry=registry).inc(3)
    port = _free_port()
    server = start_metrics_server(port, registry=registry)
    assert server is not None
    try:
        assert server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert "served_things_total 3.0" in response.read().decode()
    finally:
        server.shutdown()
        server.server_close()


def test_a_taken_port_is_an_error_that_says_what_to_do() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(MetricsServerError, match="EXCHANGE_METRICS_PORT"):
            start_metrics_server(port, registry=CollectorRegistry())
