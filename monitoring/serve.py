"""/metrics for processes that are not HTTP servers themselves: connectors, the sink, approvals."""

from __future__ import annotations

import logging
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.registry import Collector

from monitoring.exceptions import MetricsServerError

_log = logging.getLogger("exchange.metrics")


def start_metrics_server(
    port: int, *, addr: str = "127.0.0.1", registry: Collector = REGISTRY
) -> WSGIServer | None:
    """Serve `registry` at http://addr:port/metrics from a daemon thread; port 0 serves nothing.

    Bound to the loopback by default, like every listener of the exchange. Returns the server (so a
    test can `shutdown()` it), or None when disabled. Raises `MetricsServerError` when the port cannot
    be bound: a process whose metrics nobody can scrape should not run unnoticed.
    """
    if not port:
        return None
    try:
        server, _thread = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        raise MetricsServerError(
            f"cannot serve /metrics on {addr}:{port}: {exc}. Another process holds the port: give this "
            "one its own with EXCHANGE_METRICS_PORT (0 turns /metrics off)."
        ) from exc
    _log.info("serving /metrics on http://%s:%d/metrics", addr, port)
    return server
