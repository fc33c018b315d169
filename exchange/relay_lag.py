"""How far the audit relay is behind the audit log, for `exchange lag-exporter` and `exchange top`.

The relay (exchange.api.relay) publishes audit_log to exchange.audit.v1 from a position it keeps in
PostgreSQL (`audit_relay.next_seq`, a transactional outbox), not as a Kafka consumer group, so consumer
lag does not show it. Were it to stop (Kafka unreachable, no API process running its relay), the rows
would wait in audit_log, safe but unseen by whoever reads the topic (the supervision, 电子监察). The
collector reads the relay's position and the chain head on each scrape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg
from prometheus_client.core import GaugeMetricFamily, Metric

from exchange.database import bounded_connection
from exchange.settings import PostgresSettings
from monitoring import metrics

_log = logging.getLogger("exchange.lag")

CHAIN_LAST_SEQ = "exchange_audit_chain_last_seq"
RELAY_NEXT_SEQ = "exchange_audit_relay_next_seq"
RELAY_BEHIND = "exchange_audit_relay_behind_rows"
EXPORTED_NAMES = (CHAIN_LAST_SEQ, RELAY_NEXT_SEQ, RELAY_BEHIND)

# Plain reads: neither waits for the row locks appends and relay passes take.
_POSITION = (
    "SELECT head.last_seq, relay.next_seq FROM audit_chain_head AS head CROSS JOIN audit_relay AS relay"
)


@dataclass(frozen=True)
class RelayPosition:
    """The seq of the chain's last row, and the seq of the next row the relay will publish."""

    last_seq: int
    next_seq: int

    @property
    def behind(self) -> int:
        """Rows appended and not yet on exchange.audit.v1; never negative (the two are read together)."""
        return max(self.last_seq + 1 - self.next_seq, 0)


def relay_position(postgres: PostgresSettings, timeout_seconds: float) -> RelayPosition | None:
    """The relay's position now; None where the API's tables do not exist (its migration not applied)."""
    with bounded_connection(postgres, timeout_seconds) as conn:
        try:
            row = conn.execute(_POSITION).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return None if row is None else RelayPosition(int(row[0]), int(row[1]))


def families(position: RelayPosition | None) -> list[Metric]:
    """The three gauges of `position` (no samples for None)."""
    last = GaugeMetricFamily(CHAIN_LAST_SEQ, "The seq of the last row appended to audit_log")
    relayed = GaugeMetricFamily(
        RELAY_NEXT_SEQ, "The seq of the next audit_log row the audit relay will publish to exchange.audit.v1"
    )
    behind = GaugeMetricFamily(RELAY_BEHIND, "Rows of audit_log not yet published to exchange.audit.v1")
    if position is not None:
        last.add_metric([], position.last_seq)
        relayed.add_metric([], position.next_seq)
        behind.add_metric([], position.behind)
    return [last, relayed, behind]


class RelayLagCollector:
    """A prometheus_client collector of the relay's position, read on each scrape by `read_position`.

    A failed read yields no series for that scrape and counts in
    `exchange_lag_scrape_errors_total{source="postgres"}`; it never raises into the scrape.
    """

    def __init__(self, read_position: Callable[[], RelayPosition | None]) -> None:
        self._read_position = read_position
        self._lock = threading.Lock()
        self.failed = False  # whether the last read failed (None then means "unknown", not "no tables")

    def read(self) -> RelayPosition | None:
        """The position now, or None (no tables, or the read failed: see `failed`)."""
        with self._lock:
            try:
                position = self._read_position()
            except Exception as exc:  # a scrape must never fail: count it, log it, report nothing
                metrics.LAG_SCRAPE_ERRORS.labels(source="postgres").inc()
                _log.warning("reading the audit relay's position from PostgreSQL failed: %s", exc)
                self.failed = True
                return None
            self.failed = False
            return position

    def collect(self) -> Iterable[Metric]:
        """Called by prometheus_client on each scrape."""
        return families(self.read())

    def describe(self) -> Iterable[Metric]:
        """The families' names without reading anything."""
        return families(None)


def relay_lag_collector(postgres: PostgresSettings, timeout_seconds: float) -> RelayLagCollector:
    """The collector reading the exchange database named by `postgres`."""
    return RelayLagCollector(lambda: relay_position(postgres, timeout_seconds))
