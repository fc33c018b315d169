"""Metrics on the real stack: what the connectors count is what they published, the processor's /metrics
counts every event it folded, and consumer lag (in-process, from `exchange lag-exporter`, in `exchange
top`) reaches zero once the processor has caught up; the audit relay's position, read and exported."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from prometheus_client import REGISTRY
from support import SAMPLES, exchange_env, free_port, publish_folder

from exchange import admin, database
from exchange.api.relay import AuditRelay
from exchange.api.storage import audit as audit_table
from exchange.api.storage.pool import create_pool, transaction
from exchange.audit import AuditEntry
from exchange.lag import KafkaOffsets, LagCollector, partition_lags
from exchange.relay_lag import RelayPosition, relay_position
from exchange.settings import ExchangeSettings
from exchange.topics import DATASET_TOPICS
from monitoring.scrape import Samples, fetch

DATASETS = {"identity": "identity.person", "tax": "tax.payment", "social": "social.contribution"}
SAMPLE_RECORDS = {"social": 842, "identity": 19, "tax": 80}
T = TypeVar("T")


def _published(department: str, dataset: str) -> float:
    labels = {"department": department, "dataset": dataset}
    return REGISTRY.get_sample_value("exchange_connector_records_published_total", labels) or 0.0


def _published_now() -> dict[str, float]:
    counts = {department: _published(department, dataset) for department, dataset in DATASETS.items()}
    counts["property"] = _published("property", "property.title")
    return counts


def _until(what: str, probe: Callable[[], T | None], seconds: float = 120) -> T:
    """Poll `probe` until it returns something other than None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")


def _start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 — the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "exchange", *args], env=env, stdout=out, stderr=subprocess.STDOUT
    )


def _stop(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]


def _total(samples: Samples, name: str, **match: str) -> float:
    return sum(
        value
        for (found, labels), value in samples.items()
        if found == name and all(dict(labels).get(key) == want for key, want in match.items())
    )


@pytest.fixture
def processor(settings: ExchangeSettings, tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """`exchange process` with this test's settings; yields its environment and its /metrics URL."""
    env = exchange_env(settings, tmp_path)
    log = tmp_path / "process.log"
    process = _start(env, log, "process")
    yield env, f"http://127.0.0.1:{env['EXCHANGE_PROCESSOR__WEB_PORT']}/metrics"
    assert process.poll() is None, log.read_text()[-3000:]
    _stop(process, log)


def test_counters_and_lag_agree_with_what_was_published(
    settings: ExchangeSettings, tmp_path: Path, processor: tuple[dict[str, str], str]
) -> None:
    env, processor_url = processor
    admin.ensure_topics(settings.kafka)
    before = _published_now()
    publish_folder(settings, SAMPLES, tmp_path, registry_dsn=settings.postgres.conninfo())
    published = {department: count - before[department] for department, count in _published_now().items()}
    for department, expected in SAMPLE_RECORDS.items():
        assert published[department] == expected, department

    # What the counters say was published is what the dataset topics hold.
    reader = KafkaOffsets(settings.kafka, timeout_seconds=5)
    dataset_topics = {topic.full_name(settings.kafka) for topic in DATASET_TOPICS}
    on_broker = sum(end for partition, end in reader.ends().items() if partition.topic in dataset_topics)
    events = int(sum(published.values()))
    assert on_broker == events

    # The processor's /metrics counts every event folded, once.
    def folded() -> Samples | None:
        samples = fetch(processor_url, 2.0)
        done = samples is not None and _total(samples, "exchange_processor_events_total") >= events
        return samples if done else None

    samples = _until("the processor to fold every event", folded)
    assert _total(samples, "exchange_processor_events_total") == events
    assert _total(samples, "exchange_processor_events_total", dataset="social.contribution") == 842

    # Lag of the processor's group reaches zero once it committed everything it folded.
    group = f"{settings.kafka.topic_prefix}{settings.processor.app_id}"
    collector = LagCollector(KafkaOffsets(settings.kafka, timeout_seconds=5))

    def caught_up() -> bool | None:
        offsets = collector.read()
        if offsets is None:
            return None
        mine = [item for item in partition_lags(offsets) if item.group == group]
        done = sum(item.committed for item in mine) == events and all(item.lag == 0 for item in mine)
        return True if done else None

    _until(f"consumer group {group} to commit every offset", caught_up)
    _the_lag_exporter_reports_zero(env, tmp_path, group, events)
    _top_shows_the_processor(env, processor_url)


@contextlib.contextmanager
def _lag_exporter(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`exchange lag-exporter` on a free port, answering; yields its /metrics URL and its log."""
    port = free_port()
    log = tmp_path / "lag-exporter.log"
    exporter = _start(env, log, "lag-exporter", "--port", str(port))
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        _until("the lag exporter's /metrics", lambda: fetch(url, 5.0), seconds=30)
        yield url, log
    finally:
        _stop(exporter, log)


def _the_lag_exporter_reports_zero(env: dict[str, str], tmp_path: Path, group: str, events: int) -> None:
    with _lag_exporter(env, tmp_path) as (url, log):
        samples = fetch(url, 5.0)
        assert samples is not None
        assert _total(samples, "kafka_consumergroup_current_offset", consumergroup=group) == events
        assert _total(samples, "kafka_consumergroup_lag", consumergroup=group) == 0
        assert _total(samples, "kafka_consumergroup_lag_sum", consumergroup=group) == 0
        assert _total(samples, "exchange_lag_scrape_errors_total") == 0, log.read_text()


def _top_shows_the_processor(env: dict[str, str], processor_url: str) -> None:
    down = f"http://127.0.0.1:{free_port()}/metrics"
    targets = ["--target", f"processor={processor_url}", "--target", f"sink={down}"]
    shown = subprocess.run(
        [sys.executable, "-m", "exchange", "top", "--once", "--only", *targets],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any("processor" in line and " up " in line for line in lines), shown.stdout
    assert any("sink" in line and " down " in line for line in lines), shown.stdout
    assert any("social.contribution" in line and "842" in line for line in lines), shown.stdout
    assert any("social.contribution.v1" in line and "exchange-processor" in line for line in lines), (
        shown.stdout
    )


def test_the_audit_relays_position_is_read_exported_and_shown(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    assert relay_position(settings.postgres, 5.0) is None  # no API tables yet: nothing to report
    database.migrate(settings.postgres)
    admin.ensure_topics(settings.kafka)
    assert relay_position(settings.postgres, 5.0) == RelayPosition(last_seq=0, next_seq=1)
    asyncio.run(_append_then_relay(settings, appended=7, relay=False))
    assert relay_position(settings.postgres, 5.0) == RelayPosition(last_seq=7, next_seq=1)

    env = exchange_env(settings, tmp_path)
    with _lag_exporter(env, tmp_path) as (url, log):
        samples = fetch(url, 5.0)
        assert samples is not None
        assert _total(samples, "exchange_audit_relay_behind_rows") == 7
        assert _total(samples, "exchange_audit_relay_next_seq") == 1
        assert _total(samples, "exchange_audit_chain_last_seq") == 7
        shown = _top_once(env)
        assert any(line.startswith("audit relay") for line in shown), shown
        assert any(re.search(r"│\s+7\s+│\s+1\s+│\s+7\s+│", line) for line in shown), shown

        asyncio.run(_append_then_relay(settings, appended=2, relay=True))  # one pass publishes all 9
        samples = fetch(url, 5.0)
        assert samples is not None
        assert _total(samples, "exchange_audit_relay_behind_rows") == 0
        assert _total(samples, "exchange_audit_relay_next_seq") == 10
        assert _total(samples, "exchange_lag_scrape_errors_total") == 0, log.read_text()


async def _append_then_relay(settings: ExchangeSettings, *, appended: int, relay: bool) -> None:
    entries = [
        AuditEntry(caller="housing-bureau", action="verification", outcome="allowed", policy_version="test")
        for _ in range(appended)
    ]
    pool = create_pool(settings)
    await pool.open(wait=True)
    audit_relay = AuditRelay(settings, pool)
    try:
        async with transaction(pool) as conn:
            await audit_table.append_batch(conn, entries)
        if relay:
            await audit_relay.publish_pending()
    finally:
        await audit_relay.close()
        await pool.close()


def _top_once(env: dict[str, str]) -> list[str]:
    """`exchange top --once` with no process to scrape: its lag and audit relay sections, as lines."""
    shown = subprocess.run(
        [sys.executable, "-m", "exchange", "top", "--once", "--only"],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.splitlines()
