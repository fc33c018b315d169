"""The audit relay's position: the arithmetic, the collector's series, a failed read, `exchange top`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from rich.console import Console

from exchange.relay_lag import EXPORTED_NAMES, RelayLagCollector, RelayPosition
from monitoring import metrics, view


def _samples(collector: RelayLagCollector) -> dict[str, float]:
    return {sample.name: sample.value for family in collector.collect() for sample in family.samples}


def _errors() -> float:
    return float(metrics.LAG_SCRAPE_ERRORS.labels(source="postgres")._value.get())


def test_behind_is_the_rows_after_the_relays_position_never_negative() -> None:
    assert RelayPosition(last_seq=0, next_seq=1).behind == 0  # an empty chain
    assert RelayPosition(last_seq=40, next_seq=1).behind == 40
    assert RelayPosition(last_seq=40, next_seq=38).behind == 3
    assert RelayPosition(last_seq=40, next_seq=41).behind == 0
    assert RelayPosition(last_seq=40, next_seq=45).behind == 0  # cannot be read (one snapshot), but never < 0


def test_the_collector_exports_the_position_and_the_rows_behind() -> None:
    collector = RelayLagCollector(lambda: RelayPosition(last_seq=120, next_seq=101))
    assert _samples(collector) == {
        "exchange_audit_chain_last_seq": 120,
        "exchange_audit_relay_next_seq": 101,
        "exchange_audit_relay_behind_rows": 20,
    }
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    for name in EXPORTED_NAMES:
        assert f"# TYPE {name} gauge" in text


def test_no_tables_no_series_and_registering_reads_nothing() -> None:
    reads: list[int] = []

    def read() -> RelayPosition | None:
        reads.append(1)
        return None

    collector = RelayLagCollector(read)
    CollectorRegistry().register(collector)
    assert reads == []
    assert _samples(collector) == {}


def test_a_failed_read_counts_an_error_reports_nothing_and_is_told_apart_from_no_tables() -> None:
    position: list[RelayPosition | None] = [None]

    def flaky() -> RelayPosition | None:
        if position[0] is None:
            raise OSError("connection refused")
        return position[0]

    collector = RelayLagCollector(flaky)
    before = _errors()
    assert _samples(collector) == {}
    assert _errors() == before + 1
    assert collector.failed
    position[0] = RelayPosition(last_seq=3, next_seq=4)
    assert collector.read() == RelayPosition(last_seq=3, next_seq=4) and not collector.failed


def test_top_shows_the_rows_behind_only_when_read_and_says_when_it_could_not() -> None:
    assert view.relay(None) is None
    failed = view.relay(None, failed=True)
    assert failed is not None and "PostgreSQL did not answer" in str(failed)
    table = view.relay(RelayPosition(last_seq=1_250, next_seq=1_001))
    assert table is not None
    console = Console(width=80, record=True)
    console.print(table)
    text = console.export_text()
    assert "audit relay" in text
    assert "250" in text and "1,001" in text and "1,250" in text
