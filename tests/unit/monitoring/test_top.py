"""`exchange top` against real /metrics endpoints on the loopback: figures, rates, and "down"."""

from __future__ import annotations

import argparse
import io
import re
import socket
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from rich.console import Console

from exchange.cli import main
from exchange.cli.top import Top, default_targets, parse_targets
from exchange.settings import ExchangeSettings
from monitoring.serve import start_metrics_server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Processor:
    """A registry shaped like the processor's, served on a port of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter("exchange_processor_events_total", "e", ["dataset"], registry=self.registry)
        self.fold = Histogram(
            "exchange_processor_fold_seconds", "f", buckets=(0.01, 0.1, 1.0), registry=self.registry
        )
        self.port = _free_port()


@pytest.fixture
def processor() -> Iterator[Processor]:
    served = Processor()
    server = start_metrics_server(served.port, registry=served.registry)
    assert server is not None
    yield served
    server.shutdown()
    server.server_close()


def _render(top: Top) -> str:
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(top.frame())
    return out.getvalue()


def _args(*targets: str) -> argparse.Namespace:
    return argparse.Namespace(target=list(targets), only=True, no_lag=True)


def test_figures_rates_and_a_down_process(processor: Processor) -> None:
    processor.events.labels("social.contribution").inc(842)
    processor.fold.observe(0.05)
    down = f"http://127.0.0.1:{_free_port()}/metrics"
    top = Top(
        ExchangeSettings(), _args(f"processor=http://127.0.0.1:{processor.port}/metrics", f"sink={down}")
    )

    first = _render(top)
    assert re.search(r"│ processor +│ \S+ +│ up +│", first)
    assert re.search(r"│ sink +│ \S+ +│ down +│", first)
    # One scrape: totals, no rate yet.
    assert re.search(r"│ social\.contribution +│ +842 │ +– │", first)

    processor.events.labels("social.contribution").inc(158)
    second = _render(top)
    assert re.search(r"│ social\.contribution +│ +1,000 │ +[\d,]+\.\d/s │", second)


def test_once_prints_a_snapshot_and_exits(processor: Processor, capsys: pytest.CaptureFixture[str]) -> None:
    processor.events.labels("tax.payment").inc(80)
    url = f"http://127.0.0.1:{processor.port}/metrics"
    assert main(["top", "--once", "--only", "--no-lag", "--target", f"processor={url}"]) == 0
    out = capsys.readouterr().out
    assert "tax.payment" in out and "80" in out


def test_targets_default_to_the_settings_ports_and_can_be_replaced() -> None:
    settings = ExchangeSettings()
    targets = default_targets(settings)
    assert targets["processor"] == f"http://127.0.0.1:{settings.processor.web_port}/metrics"
    assert targets["connect social"] == "http://127.0.0.1:9103/metrics"
    assert targets["sink"] == "http://127.0.0.1:9105/metrics"
    replaced = parse_targets(["sink=http://127.0.0.1:1/metrics", "extra=http://x/metrics"], targets)
    assert replaced["sink"] == "http://127.0.0.1:1/metrics" and "extra" in replaced
    with pytest.raises(SystemExit, match="NAME=URL"):
        parse_targets(["nonsense"], targets)


def test_the_api_table_shows_the_audit_commit_time_and_failed_batches() -> None:
    registry = CollectorRegistry()
    requests = Histogram(
        "exchange_api_request_seconds",
        "r",
        ["route", "method", "status"],
        buckets=(0.01, 0.1),
        registry=registry,
    )
    commit = Histogram(
        "exchange_api_audit_commit_seconds", "c", ["outcome"], buckets=(0.001, 0.01, 0.1), registry=registry
    )
    requests.labels("/v1/verifications", "POST", "200").observe(0.005)
    for _ in range(9):
        commit.labels("committed").observe(0.004)
    commit.labels("failed").observe(0.05)
    commit.labels("failed").observe(0.05)
    port = _free_port()
    server = start_metrics_server(port, registry=registry)
    assert server is not None
    try:
        shown = _render(Top(ExchangeSettings(), _args(f"api=http://127.0.0.1:{port}/metrics")))
    finally:
        server.shutdown()
        server.server_close()
    # Committed batches' p50 and p99 fall in the (1 ms, 10 ms] bucket; two batches failed.
    assert re.search(r"│ audit commit +│ +│ +│ +│ +[\d.]+ ms │ +[\d.]+ ms │ +2 │", shown), shown
