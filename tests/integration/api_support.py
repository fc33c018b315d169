"""Helpers for the API's integration tests: settings isolated for a whole module, the samples through
the real pipeline (connectors, `exchange process`, `exchange sink`), facts folded independently from
the topics, and the app served in-process or as the `exchange api` command."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from kafka import KafkaAdminClient
from psycopg import sql
from psycopg.types.json import Jsonb
from support import exchange_env, free_port, latest_profiles

from consumers.sink.documents import to_json
from consumers.sink.profiles import profile_document
from exchange import profile as aggregate
from exchange.api import create_api
from exchange.facts import FactValue, as_json, compute
from exchange.logs import read_all
from exchange.settings import ExchangeSettings
from exchange.subjects import subject_key
from exchange.topics import Topic

KEYS = {
    "housing-bureau": "dev-housing-key",
    "talent-office": "dev-talent-key",
    "civil-affairs": "dev-civil-affairs-key",
    "citizen-portal": "dev-portal-key",
    "bank": "dev-bank-key",
}
Facts = dict[str, FactValue]


@contextlib.contextmanager
def isolated_settings(base: ExchangeSettings, state: Path) -> Iterator[ExchangeSettings]:
    """Settings with a topic prefix and a database of their own (as conftest's `settings`), for a module."""
    prefix = f"test-{uuid.uuid4().hex[:10]}."
    database = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base.postgres.conninfo(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    settings = base.model_copy(
        update={
            "kafka": base.kafka.model_copy(update={"topic_prefix": prefix}),
            "postgres": base.postgres.model_copy(update={"database": database}),
            "api": base.api.model_copy(update={"signing_key_path": state / "signing-key.pem"}),
        }
    )
    try:
        yield settings
    finally:
        kafka = KafkaAdminClient(bootstrap_servers=base.kafka.bootstrap_servers, request_timeout_ms=30000)
        try:
            mine = [name for name in kafka.list_topics() if name.startswith(prefix)]
            if mine:
                kafka.delete_topics(mine)
        finally:
            kafka.close()
        with psycopg.connect(base.postgres.conninfo(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def api_env(settings: ExchangeSettings, state: Path) -> dict[str, str]:
    """The environment of an `exchange` subprocess with these settings, the API's included."""
    return {
        **exchange_env(settings, state),
        "EXCHANGE_API__SIGNING_KEY_PATH": str(settings.api.signing_key_path),
        "EXCHANGE_API__PORT": str(settings.api.port),
    }


def run(
    settings: ExchangeSettings, state: Path, *args: str, timeout: float = 180, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `exchange ARGS…` to its end with these settings; with `check`, assert that it succeeded."""
    done = subprocess.run(
        [sys.executable, "-m", "exchange", *args],
        env=api_env(settings, state),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert done.returncode == 0, (
            f"exchange {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
        )
    return done


def with_key(settings: ExchangeSettings, state: Path) -> ExchangeSettings:
    """`settings` with the proof signing key in the test's own folder."""
    return settings.model_copy(
        update={"api": settings.api.model_copy(update={"signing_key_path": state / "signing-key.pem"})}
    )


def key_of(settings: ExchangeSettings, citizen_id: str) -> str:
    return subject_key(citizen_id, settings.subject_secret.get_secret_value().encode())


def person_document(
    subject_key: str, citizen_id: str, version: int, status: str | None, offset: int
) -> dict[str, Any]:
    """A profile document as the sink stores it: a subject with one 户籍 record of `status` (none when
    None), version `version`, read at `offset` of identity.person.v1."""
    persons = {}
    if status is not None:
        ref = aggregate.RecordRef(
            f"00000000-0000-0000-0000-{version:012d}",
            aggregate.IDENTITY,
            citizen_id,
            version,
            "identity.person.v1",
            0,
            offset,
        )
        person = aggregate.Person(
            citizen_id, "张三", "male", "01", dt.date(1984, 3, 3), "广州市越秀区", "440104", status
        )
        persons[citizen_id] = aggregate.Entry(ref, person)
    folded = aggregate.Profile(subject_key, version, persons, aggregate.NO_TAX, aggregate.NO_SOCIAL, {})
    at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    record = {**aggregate.to_avro(folded), "updated_at": at, "latest_published_at": at}
    document: dict[str, Any] = json.loads(to_json(profile_document(record)))
    return document


def store_person(settings: ExchangeSettings, citizen_id: str, *, history: bool = False) -> None:
    """Store, as the sink would, one subject with a normal 户籍 record: its profile (version 1, read at
    offset 7 of identity.person.v1), the record itself and, with `history`, the profile's history row."""
    key = key_of(settings, citizen_id)
    document = Jsonb(person_document(key, citizen_id, 1, "normal", offset=7))
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        conn.execute(
            "INSERT INTO profiles (subject_key, version, profile, updated_at, topic, kafka_partition, "
            "kafka_offset) VALUES (%s, 1, %s, '2026-11-01T00:00:00Z', 'profiles', 0, 1)",
            (key, document),
        )
        conn.execute(
            "INSERT INTO identity_person_records (event_id, subject_key, department, source_record_id, "
            "source_version, op, occurred_at, published_at, trace_id, topic, kafka_partition, kafka_offset, "
            "citizen_id, name, sex, ethnicity, birth_date, address, district, household_type, status) VALUES "
            "('00000000-0000-0000-0000-000000000001', %s, 'identity', %s, 1, 'upsert', "
            "'2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z', 't', 'identity.person.v1', 0, 7, %s, '张三', "
            "'male', '01', '1984-03-03', '广州市越秀区', '440104', 'family', 'normal')",
            (key, citizen_id, citizen_id),
        )
        if history:
            conn.execute(
                "INSERT INTO profile_history (subject_key, version, profile, valid_from, topic, "
                "kafka_partition, kafka_offset) "
                "VALUES (%s, 1, %s, '2026-11-01T00:00:00Z', 'profiles', 0, 1)",
                (key, document),
            )


def fold_topics(settings: ExchangeSettings, topics: Iterable[Topic]) -> dict[str, aggregate.Profile]:
    """Every subject's profile folded in-process from the records on `topics` now (not via the processor)."""
    return {key: aggregate.profile_of(ledger) for key, ledger in fold_ledgers(settings, topics).items()}


def fold_ledgers(settings: ExchangeSettings, topics: Iterable[Topic]) -> dict[str, aggregate.Ledger]:
    """Every subject's ledger folded in-process from the records on `topics` now."""
    ledgers: dict[str, aggregate.Ledger] = {}
    for topic in topics:
        for record in read_all(settings.kafka, topic.full_name(settings.kafka)):
            assert record.key is not None
            key = record.key.decode()
            event = aggregate.Event(
                record.schema, record.value, record.topic, record.partition, record.offset
            )
            ledgers[key] = aggregate.apply(ledgers.get(key) or aggregate.empty_ledger(key), event)
    return ledgers


def facts_by_subject(
    settings: ExchangeSettings, profiles: dict[str, aggregate.Profile], subjects: Iterable[str], day: dt.date
) -> dict[str, Facts]:
    """Citizen ID → every fact's value on `day`, from `profiles` keyed by subject key."""
    empty = aggregate.empty_profile("")
    return {
        citizen_id: as_json(compute(profiles.get(key_of(settings, citizen_id), empty), day))
        for citizen_id in subjects
    }


def wait_for_processor(
    settings: ExchangeSettings, expected: dict[str, Facts], day: dt.date, timeout: float = 120
) -> None:
    """Wait until the profiles on the profile topic give exactly the `expected` facts."""
    deadline = time.monotonic() + timeout
    found: dict[str, Facts] = {}
    while time.monotonic() < deadline:
        on_topic = {key.decode(): profile for key, profile in latest_profiles(settings).items()}
        found = facts_by_subject(settings, on_topic, expected, day)
        if found == expected:
            return
        time.sleep(1)
    assert found == expected, "the processor did not fold the records in time"


@contextlib.asynccontextmanager
async def client(settings: ExchangeSettings, caller: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app in-process (lifespan run), authenticated as `caller` if given."""
    app = create_api(settings, relay=False)
    headers = {"X-API-Key": KEYS[caller]} if caller else {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://exchange", headers=headers
        ) as http:
            yield http


@contextlib.contextmanager
def served(settings: ExchangeSettings, state: Path) -> Iterator[str]:
    """`exchange api` as a subprocess on a free port; its base URL once it answers."""
    settings = settings.model_copy(update={"api": settings.api.model_copy(update={"port": free_port()})})
    log = open(state / "api.log", "ab")  # noqa: SIM115 — the child owns it
    process = subprocess.Popen(
        [sys.executable, "-m", "exchange", "api"],
        env=api_env(settings, state),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{settings.api.port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (state / "api.log").read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/v1/keys", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "exchange api did not answer within 60 s"
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
