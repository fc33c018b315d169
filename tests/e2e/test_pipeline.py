"""End to end on the real stack: generated departments through connectors, processor and sink give
exactly the generator's expected facts — also when processor and sink are SIGKILLed mid-run, with two
of each in the same groups, and after `exchange rebuild`."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support import exchange_env, publish_folder

from connectors.deadletters import read_deadletters
from connectors.synth import generate
from consumers.rebuild import VIEW_TABLES
from exchange import admin, database
from exchange.demo import Progress, check_views
from exchange.settings import ExchangeSettings

PEOPLE = 600


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("exports")
    generate(PEOPLE, 7, folder, bad_rate=0.03)
    return folder


def _start(
    settings: ExchangeSettings, state: Path, name: str, *args: str, port_offset: int = 0
) -> subprocess.Popen[bytes]:
    env = exchange_env(settings, state)
    out = (state / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "exchange", *args], env=env, stdout=out, stderr=subprocess.STDOUT
    )


def _wait_complete(settings: ExchangeSettings, published_done: threading.Event, timeout: float = 300) -> None:
    progress = Progress(settings)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            now = progress.snapshot()
            if published_done.is_set() and now["folded"] >= now["published"] and now["sink_behind"] == 0:
                return
            time.sleep(1)
        raise AssertionError(f"the pipeline did not complete: {progress.snapshot()}")
    finally:
        progress.close()


def _publish_in_background(
    settings: ExchangeSettings, exports: Path, state: Path
) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            publish_folder(settings, exports, state / "connectors", registry_dsn=settings.postgres.conninfo())
        except BaseException as exc:  # surfaced by the test through `failure`
            failure.append(exc)
            raise
        finally:
            done.set()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, done


def _expected(exports: Path) -> dict[str, Any]:
    return json.loads((exports / "expected.json").read_text(encoding="utf-8"))


def _assert_exact(settings: ExchangeSettings, exports: Path) -> None:
    expected = _expected(exports)
    matched, mismatched = asyncio.run(check_views(settings, expected))
    assert mismatched == [], f"{len(mismatched)} subjects differ, e.g. {mismatched[:3]}"
    assert matched == len(expected["subjects"])
    letters = read_deadletters(settings)
    assert len(letters) == sum(expected["bad_rows"].values())


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def test_processor_and_sink_killed_at_random_moments_still_give_exact_views(
    settings: ExchangeSettings, exports: Path, tmp_path: Path
) -> None:
    admin.ensure_topics(settings.kafka)
    database.migrate(settings.postgres)
    chance = random.Random(1)
    processor = _start(settings, tmp_path, "process", "process")
    sink = _start(settings, tmp_path, "sink", "sink")
    publisher, published = _publish_in_background(settings, exports, tmp_path)
    try:
        for _ in range(3):
            time.sleep(chance.uniform(1.0, 4.0))
            victim = chance.choice(["process", "sink"])
            process = processor if victim == "process" else sink
            process.send_signal(signal.SIGKILL)
            process.wait()
            if victim == "process":
                processor = _start(settings, tmp_path, "process", "process")
            else:
                sink = _start(settings, tmp_path, "sink", "sink")
        publisher.join(timeout=300)
        _wait_complete(settings, published)
        assert processor.poll() is None and sink.poll() is None
    finally:
        _stop(processor)
        _stop(sink)
    _assert_exact(settings, exports)


def _snapshot(settings: ExchangeSettings) -> dict[str, list[tuple[Any, ...]]]:
    """Every view table's rows, without the sink's own write time, in a stable order."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        for table in VIEW_TABLES:
            columns = [
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = %s AND column_name <> 'sunk_at' ORDER BY ordinal_position",
                    (table,),
                )
            ]
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            tables[table] = sorted(rows, key=repr)
    return tables


def test_two_processors_and_two_sinks_share_the_work_and_rebuild_equals_live(
    settings: ExchangeSettings, exports: Path, tmp_path: Path
) -> None:
    admin.ensure_topics(settings.kafka)
    database.migrate(settings.postgres)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    workers = [
        _start(settings, tmp_path / "a", "process", "process"),
        _start(settings, tmp_path / "b", "process", "process"),
        _start(settings, tmp_path / "a", "sink", "sink"),
        _start(settings, tmp_path / "b", "sink", "sink"),
    ]
    publisher, published = _publish_in_background(settings, exports, tmp_path)
    try:
        publisher.join(timeout=300)
        _wait_complete(settings, published)
        assert all(worker.poll() is None for worker in workers)
    finally:
        for worker in workers:
            _stop(worker)
    _assert_exact(settings, exports)

    live = _snapshot(settings)
    rebuild = subprocess.run(
        [sys.executable, "-m", "exchange", "rebuild"],
        env=exchange_env(settings, tmp_path),
        capture_output=True,
    )
    assert rebuild.returncode == 0, rebuild.stderr.decode()[-2000:]
    rebuilt = _snapshot(settings)
    assert rebuilt.keys() == live.keys()
    for table in live:
        assert rebuilt[table] == live[table], table
