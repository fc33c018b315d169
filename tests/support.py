"""Helpers for integration tests: the samples through the real connectors, exchange processes as
subprocesses with the test's own settings, and the latest profile per subject from the topic."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg

from connectors.files import run_file
from connectors.positions import PositionStore
from connectors.publisher import Publisher
from connectors.table import run_table
from exchange import profile as aggregate
from exchange.logs import read_all
from exchange.settings import ExchangeSettings
from exchange.topics import PROFILE

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"
FILES = {"identity": "identity.csv", "tax": "tax.csv", "social": "social.jsonl"}


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load_registry(dsn: str, *files: Path) -> None:
    """Run the registry's SQL files (create, fill, update `bdc_djb`) against `dsn`."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for file in files:
            conn.execute(file.read_text(encoding="utf-8").encode())


def publish_folder(settings: ExchangeSettings, folder: Path, state: Path, *, registry_dsn: str) -> None:
    """Publish the four exports of `folder` (files, then the registry table) through the connectors."""
    positions = PositionStore(state)
    publisher = Publisher(settings, client_id="test-connectors")
    try:
        for department, name in FILES.items():
            run_file(department, folder / name, publisher=publisher, positions=positions, chunk_records=5000)
        load_registry(registry_dsn, folder / "property.sql")
        run_table(registry_dsn, publisher=publisher, positions=positions, chunk_records=5000)
        load_registry(registry_dsn, folder / "property_update.sql")
        run_table(registry_dsn, publisher=publisher, positions=positions, chunk_records=5000)
    finally:
        publisher.close()


def exchange_env(settings: ExchangeSettings, state: Path) -> dict[str, str]:
    """The environment that makes an `exchange` subprocess use this test's settings."""
    return {
        **os.environ,
        "EXCHANGE_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "EXCHANGE_POSTGRES__DATABASE": settings.postgres.database,
        "EXCHANGE_CONNECTORS__STATE_DIR": str(state / "connectors"),
        "EXCHANGE_PROCESSOR__DATADIR": str(state / "processor"),
        "EXCHANGE_PROCESSOR__WEB_PORT": str(free_port()),
    }


def start(
    settings: ExchangeSettings, state: Path, *args: str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `exchange ARGS…` as a subprocess with this test's settings."""
    out = open(log or state / f"{args[0]}.log", "ab")  # noqa: SIM115 — the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "exchange", *args],
        env=exchange_env(settings, state),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def latest_profiles(settings: ExchangeSettings) -> dict[bytes, aggregate.Profile]:
    """The highest version of each subject's profile on the profile topic now."""
    latest: dict[bytes, tuple[int, dict[str, object]]] = {}
    for record in read_all(settings.kafka, PROFILE.full_name(settings.kafka)):
        assert record.key is not None
        version = int(record.value["version"])  # type: ignore[call-overload]
        if record.key not in latest or latest[record.key][0] < version:
            latest[record.key] = (version, record.value)
    return {key: aggregate.from_avro(value) for key, (_, value) in latest.items()}
