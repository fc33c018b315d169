"""`exchange top` (a live terminal view of the exchange's figures) and `exchange lag-exporter`.

`top` scrapes every process's /metrics and reads consumer lag (and how far the audit relay is behind,
`exchange.relay_lag`) itself, so it works with nothing else running; the lag exporter serves both to
Prometheus from one small process of its own, so lag stays visible while the consumers it measures are
down, and the brokers are asked once per scrape rather than once per process.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import REGISTRY
from rich.console import Console, Group
from rich.live import Live

from exchange.lag import LagCollector, PartitionLag, lag_collector, partition_lags
from exchange.relay_lag import RelayLagCollector, RelayPosition, relay_lag_collector
from exchange.settings import ExchangeSettings
from monitoring import view
from monitoring.figures import window
from monitoring.scrape import Scrape, scrape_all
from monitoring.serve import start_metrics_server

_console = Console()
_log = logging.getLogger("exchange.lag")


def register(commands: Any) -> None:
    """Add the operator commands."""
    top = commands.add_parser("top", help="a live view of throughput, lag, freshness and errors")
    top.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="a /metrics endpoint to scrape, added to (or replacing by name) the default ones",
    )
    top.add_argument("--only", action="store_true", help="scrape the --target endpoints only")
    top.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    top.add_argument("--once", action="store_true", help="print one snapshot (totals, no rates) and exit")
    top.add_argument(
        "--no-lag",
        action="store_true",
        help="read neither consumer lag (Kafka) nor the audit relay's position (PostgreSQL)",
    )
    top.set_defaults(run=_top)

    exporter = commands.add_parser("lag-exporter", help="serve consumer lag as kafka_exporter's metrics")
    exporter.add_argument(
        "--port", type=int, help="port of /metrics (default: EXCHANGE_METRICS_PORT, or 9308)"
    )
    exporter.add_argument(
        "--no-postgres",
        action="store_true",
        help="Kafka's committed offsets only: neither the sink's stored ones nor the audit relay's position",
    )
    exporter.set_defaults(run=_lag_exporter)


def default_targets(settings: ExchangeSettings) -> dict[str, str]:
    """Every process's /metrics at the ports monitoring/prometheus.yml scrapes."""
    ports = settings.monitoring
    targets = {
        "processor": f"http://127.0.0.1:{settings.processor.web_port}/metrics",
        "api": f"http://{settings.api.host}:{settings.api.port}/metrics",
    }
    for department, port in ports.connector_ports.items():
        targets[f"connect {department}"] = f"http://127.0.0.1:{port}/metrics"
    targets["sink"] = f"http://127.0.0.1:{ports.sink_port}/metrics"
    targets["approvals"] = f"http://127.0.0.1:{ports.approvals_port}/metrics"
    return targets


def parse_targets(specs: Sequence[str], base: dict[str, str]) -> dict[str, str]:
    """`base` with each NAME=URL of `specs` added or replacing the target of that name."""
    targets = dict(base)
    for spec in specs:
        name, sep, url = spec.partition("=")
        if not sep or not name or not url:
            raise SystemExit(f"exchange top: --target wants NAME=URL, got {spec!r}")
        targets[name] = url
    return targets


class Top:
    """One scrape after another, each drawn with the rates since the one before."""

    def __init__(self, settings: ExchangeSettings, args: argparse.Namespace) -> None:
        self.targets = parse_targets(args.target, {} if args.only else default_targets(settings))
        self.timeout = settings.monitoring.scrape_timeout_seconds
        self.lag: LagCollector | None = None
        self.relay: RelayLagCollector | None = None
        if not args.no_lag:
            timeout = settings.monitoring.lag_timeout_seconds
            self.lag = lag_collector(settings.kafka, settings.postgres, timeout)
            self.relay = relay_lag_collector(settings.postgres, timeout)
        self.previous: Scrape | None = None

    def frame(self) -> Group:
        """Scrape now and draw it."""
        current = scrape_all(self.targets, self.timeout)
        lags: list[PartitionLag] | None = None
        if self.lag is not None:
            offsets = self.lag.read()
            lags = None if offsets is None else partition_lags(offsets)
        relay: RelayPosition | None = None if self.relay is None else self.relay.read()
        up = {name: samples is not None for name, samples in current.targets.items()}
        drawn = view.screen(
            window(self.previous, current),
            self.targets,
            up,
            lags,
            relay,
            show_lag=self.lag is not None,
            relay_failed=self.relay is not None and self.relay.failed,
        )
        self.previous = current
        return drawn


def _top(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    # The view says when Kafka does not answer; log lines about it would only scribble over the view.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    _log.setLevel(logging.ERROR)
    top = Top(settings, args)
    if args.once:
        _console.print(top.frame())
        return 0
    try:
        with Live(console=_console, auto_refresh=False, screen=False) as live:
            while True:
                started = time.monotonic()
                live.update(top.frame(), refresh=True)
                time.sleep(max(args.interval - (time.monotonic() - started), 0.1))
    except KeyboardInterrupt:
        return 0


def _lag_exporter(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    port = args.port or settings.metrics_port or settings.monitoring.lag_exporter_port
    postgres = None if args.no_postgres else settings.postgres
    timeout = settings.monitoring.lag_timeout_seconds
    REGISTRY.register(lag_collector(settings.kafka, postgres, timeout))
    if postgres is not None:
        REGISTRY.register(relay_lag_collector(postgres, timeout))
    server = start_metrics_server(port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    _log.info("consumer lag of the groups prefixed %r on port %d", settings.kafka.topic_prefix, port)
    stop.wait()
    if server is not None:
        server.shutdown()
    return 0
