"""End to end on the real stack: generated departments through connectors, processor and sink give
exactly the generator's expected facts — also when processor and sink are SIGKILLed mid-run, with two
of each in the same groups, and after `exchange rebuild` — and every subject's 秒批 applications,
decided by `exchange approvals`, exactly its expected decisions."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaProducer
from support import exchange_env, publish_folder

from connectors.deadletters import read_deadletters
from connectors.synth import generate
from consumers.rebuild import VIEW_TABLES
from exchange import admin, consent, database
from exchange.demo import Progress, check_views
from exchange.logs import read_all
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings
from exchange.subjects import subject_key
from exchange.topics import APPLICATIONS, DECISIONS

PEOPLE = 600


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("exports")
    generate(PEOPLE, 7, folder, bad_rate=0.03)
    return folder


def _start(
    settings: ExchangeSettings, state: Path, name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {**exchange_env(settings, state), **(env or {})}
    out = (state / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "exchange", *args], env=env, stdout=out, stderr=subprocess.STDOUT
    )


def _wait_complete(
    settings: ExchangeSettings, published: threading.Event | None, timeout: float = 300
) -> None:
    """Wait until the connectors are done (`published` set; None: done before) and every record published
    is folded and in PostgreSQL."""
    progress = Progress(settings)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            now = progress.snapshot()
            if (
                (published is None or published.is_set())
                and now["folded"] >= now["published"]
                and now["sink_behind"] == 0
            ):
                return
            time.sleep(1)
        raise AssertionError(f"the pipeline did not complete: {progress.snapshot()}")
    finally:
        progress.close()


def _publish_in_background(
    settings: ExchangeSettings, exports: Path, state: Path
) -> tuple[threading.Thread, threading.Event, list[BaseException]]:
    """Publish the exports in a thread; the list holds what it raised, if anything."""
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
    return thread, done, failure


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


# The shares of their work at which processes are killed (and the sink started): well below the end, so
# that each kill lands with work left (the processor commits about once a second, over 10% of this run).
KILL_SHARES = (0.1, 0.6)
# The processor under the kills commits in small steps (its defaults: 5,000 events a batch, a commit a
# second), so that a kill moment, a share of its commits, falls with work left: restarted with the
# defaults, it folded the rest of the run before its first commit was seen.
KILLED_PROCESSOR = {
    "process": {
        "EXCHANGE_PROCESSOR__BATCH_EVENTS": "500",
        "EXCHANGE_PROCESSOR__COMMIT_INTERVAL_SECONDS": "0.2",
    }
}
CALLER_OF = {
    "talent-green-card": "talent-office",
    "public-rental-housing": "housing-bureau",
    "longevity-allowance": "civil-affairs",
}


def _seed() -> int:
    """A new seed each run (printed, so a failure can be replayed with EXCHANGE_TEST_SEED)."""
    seed = int(os.environ.get("EXCHANGE_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"EXCHANGE_TEST_SEED={seed}")
    return seed


class _Workers:
    """The processor and the sink under test, each started again after it is killed."""

    def __init__(self, settings: ExchangeSettings, state: Path) -> None:
        self.settings, self.state = settings, state
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        self.running[name] = _start(self.settings, self.state, name, name, env=KILLED_PROCESSOR.get(name))

    def kill(self, name: str) -> None:
        self.running[name].send_signal(signal.SIGKILL)
        self.running[name].wait()
        self.start(name)

    def alive(self) -> bool:
        return all(process.poll() is None for process in self.running.values())

    def stop(self) -> None:
        for process in self.running.values():
            _stop(process)


def _kill_mid_work(settings: ExchangeSettings, workers: _Workers, seed: int) -> list[dict[str, Any]]:
    """Run the processor over the published records and SIGKILL it twice, each time once its commits
    pass a random share of the records (and it has committed since it was started); start the sink at a
    random share too, and SIGKILL it once it has written a random share of the backlog it found.
    Returns the pipeline's progress at each kill."""
    chance = random.Random(seed)
    moments = sorted(
        [
            *((chance.uniform(*KILL_SHARES), "process") for _ in range(2)),
            (chance.uniform(*KILL_SHARES), "start sink"),
        ]
    )
    sink_share = chance.uniform(*KILL_SHARES)
    progress = Progress(settings)
    kills: list[dict[str, Any]] = []
    workers.start("process")
    since_start = 0  # what the processor had committed when it was last started
    backlog = None  # what the sink had to write when it started
    deadline = time.monotonic() + 180
    try:
        while moments or len(kills) < 3:
            now = progress.snapshot()
            assert workers.alive(), "a worker exited on its own; see its log in the test's folder"
            assert time.monotonic() < deadline, f"the kills did not all happen: {now}, {kills}, seed {seed}"
            if moments and now["folded"] >= moments[0][0] * now["published"]:
                share, what = moments[0]
                if what == "start sink":
                    workers.start("sink")
                    backlog = now["sink_behind"]
                    moments.pop(0)
                elif now["folded"] > since_start:
                    workers.kill("process")
                    kills.append({"victim": "process", "share": round(share, 3), **now})
                    since_start = now["folded"]
                    moments.pop(0)
            sink_killed = any(kill["victim"] == "sink" for kill in kills)
            if (
                backlog is not None
                and not sink_killed
                and 0 < now["sink_behind"] <= (1 - sink_share) * backlog
            ):
                workers.kill("sink")
                kills.append({"victim": "sink", "share": round(sink_share, 3), "backlog": backlog, **now})
            time.sleep(0.05)
    finally:
        progress.close()
    return kills


def _decide_every_application(settings: ExchangeSettings, expected: dict[str, Any], state: Path) -> None:
    """Every subject's application for every service item through `exchange approvals` (the subjects'
    consent given where the grant requires it) is decided as `expected.json` says."""
    secret = settings.subject_secret.get_secret_value().encode()
    consent.publish(
        settings,
        [
            consent.consent_event(subject_key(s, secret), "talent-office", "talent-green-card", "grant")
            for s in expected["decisions"]
        ],
    )
    reference = dt.date.fromisoformat(expected["reference_date"])
    applications = {
        str(uuid.uuid4()): (citizen_id, item, caller)
        for citizen_id in expected["decisions"]
        for item, caller in CALLER_OF.items()
    }
    codec = AvroCodec()
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", linger_ms=5)
    try:
        for application_id, (citizen_id, item, caller) in applications.items():
            value = {
                "application_id": application_id,
                "caller": caller,
                "purpose": None,
                "service_item": item,
                "subject_id": citizen_id,
                "applicant_id": None,
                "reference_date": reference,
                "submitted_at": dt.datetime.now(dt.UTC),
                "trace_id": uuid.uuid4().hex,
            }
            producer.send(
                APPLICATIONS.full_name(settings.kafka),
                key=uuid.UUID(application_id).bytes,
                value=codec.encode("application", value),
            )
        producer.flush(60)
    finally:
        producer.close()
    env = {**exchange_env(settings, state), "EXCHANGE_API__SIGNING_KEY_PATH": str(state / "signing-key.pem")}
    done = subprocess.run(
        [sys.executable, "-m", "exchange", "approvals", "--until-idle"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    decided: dict[str, dict[str, str]] = {}
    for record in read_all(settings.kafka, DECISIONS.full_name(settings.kafka)):
        citizen_id, item, _ = applications[record.value["application_id"]]
        decided.setdefault(citizen_id, {})[item] = record.value["outcome"]
    assert len(decided) == len(expected["decisions"])
    differing = [s for s, wanted in expected["decisions"].items() if decided.get(s) != wanted]
    assert differing == [], f"{len(differing)} subjects decided otherwise, e.g. {differing[:3]}"


def test_processor_and_sink_killed_mid_work_still_give_exact_facts_and_decisions(
    settings: ExchangeSettings, exports: Path, tmp_path: Path
) -> None:
    admin.ensure_topics(settings.kafka)
    database.migrate(settings.postgres)
    seed = _seed()
    # Everything is published first, so that a share of the records is a moment in the processor's run.
    publish_folder(settings, exports, tmp_path / "connectors", registry_dsn=settings.postgres.conninfo())
    workers = _Workers(settings, tmp_path)
    try:
        kills = _kill_mid_work(settings, workers, seed)
        _wait_complete(settings, published=None)
        assert workers.alive()
    finally:
        workers.stop()
    for kill in kills:  # each kill fell mid-run, with records left for the process killed
        if kill["victim"] == "process":
            assert 0 < kill["folded"] < kill["published"], (seed, kills)
        else:
            assert 0 < kill["sink_behind"] < kill["backlog"], (seed, kills)
    _assert_exact(settings, exports)
    _decide_every_application(settings, _expected(exports), tmp_path)


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
    publisher, published, failure = _publish_in_background(settings, exports, tmp_path)
    try:
        publisher.join(timeout=300)
        assert not publisher.is_alive(), "the connectors did not finish in 300 s"
        assert failure == [], f"publishing failed: {failure!r}"
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
