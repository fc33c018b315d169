"""The batched audit appender (group commit) on the real PostgreSQL: concurrent appends are committed
together, two processes' appenders interleave into one gapless verifiable chain, a failed batch
fails every request in it and leaves no row of it behind, and every batch is measured."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from api_support import client, with_key
from prometheus_client import REGISTRY
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from exchange import database
from exchange.api import appender as appender_module
from exchange.api.appender import AuditAppender
from exchange.api.context import Services
from exchange.api.storage import audit as audit_table
from exchange.api.storage.pool import Connection, create_pool, transaction
from exchange.audit import AuditEntry, verify
from exchange.exceptions import StorageError
from exchange.policy import load_policy
from exchange.settings import ExchangeSettings

SUBJECT = "440103198403037020"
CLAIM = {"fact": "identity.status", "operator": "eq", "value": "normal"}


def _entry(number: int, caller: str = "housing-bureau") -> AuditEntry:
    return AuditEntry(
        caller=caller,
        action="verification",
        outcome="allowed",
        policy_version="test",
        purpose="public-rental-housing",
        request={"n": number},
    )


@asynccontextmanager
async def _pool(settings: ExchangeSettings) -> AsyncIterator[AsyncConnectionPool[Connection]]:
    pool = create_pool(settings)
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


def _measured() -> dict[str, float]:
    """The appender's metrics now: batches and rows, and batches committed and failed."""
    value = REGISTRY.get_sample_value
    return {
        "batches": value("exchange_api_audit_batch_rows_count") or 0.0,
        "rows": value("exchange_api_audit_batch_rows_sum") or 0.0,
        "committed": value("exchange_api_audit_commit_seconds_count", {"outcome": "committed"}) or 0.0,
        "failed": value("exchange_api_audit_commit_seconds_count", {"outcome": "failed"}) or 0.0,
    }


def _since(before: dict[str, float]) -> dict[str, float]:
    return {name: value - before[name] for name, value in _measured().items()}


def _chain(settings: ExchangeSettings) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    with psycopg.connect(settings.postgres.conninfo(), row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM audit_log ORDER BY seq").fetchall()
        head = conn.execute("SELECT last_seq, last_hash FROM audit_chain_head").fetchone()
    assert head is not None
    return rows, (int(head["last_seq"]), str(head["last_hash"]))


def _count_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch written from now on, in order."""
    batches: list[int] = []
    append_batch, append_batch_after = audit_table.append_batch, audit_table.append_batch_after

    async def counted(conn: Connection, entries: Sequence[AuditEntry]) -> list[dict[str, Any]]:
        batches.append(len(entries))
        return await append_batch(conn, entries)

    async def counted_after(
        conn: Connection, entries: Sequence[AuditEntry], head: tuple[int, str]
    ) -> tuple[int, str] | None:
        batches.append(len(entries))
        return await append_batch_after(conn, entries, head)

    monkeypatch.setattr(audit_table, "append_batch", counted)
    monkeypatch.setattr(audit_table, "append_batch_after", counted_after)
    return batches


async def test_concurrent_appends_are_committed_in_one_batch(
    settings: ExchangeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.migrate(settings.postgres)
    batches = _count_batches(monkeypatch)
    before = _measured()
    async with _pool(settings) as pool:
        appender = AuditAppender(pool)
        await asyncio.gather(*(appender.append(_entry(n)) for n in range(40)))
        await appender.append(_entry(40))  # alone: a batch of one
    rows, head = _chain(settings)
    assert batches == [40, 1]
    assert _since(before) == {"batches": 2, "rows": 41, "committed": 2, "failed": 0}
    assert [row["request"]["n"] for row in rows] == list(range(41))
    assert verify(rows, head) is None


class _Clock:
    """The appender's clock and sleep, set by the test: a pause is recorded, moves the clock on, and
    ends when the test says (`release`), or at once once released."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []
        self.released = asyncio.Event()

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(round(seconds, 6))
        await self.released.wait()
        self.now += seconds


async def _until(condition: Any, what: str) -> None:
    """Let the event loop run until `condition()` holds; fail, saying `what`, if it never does."""
    deadline = asyncio.get_running_loop().time() + 30
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0)


async def test_batches_in_quick_succession_wait_out_the_interval_and_gather_the_entries_meanwhile(
    settings: ExchangeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.migrate(settings.postgres)
    batches = _count_batches(monkeypatch)
    clock = _Clock()
    async with _pool(settings) as pool:
        appender = AuditAppender(pool, min_interval=0.5, clock=clock.time, sleep=clock.sleep)
        await appender.append(_entry(0))  # after a quiet spell: written at once, alone
        assert clock.pauses == []

        # 0.1 s after the first batch started: the next one waits out the rest of the interval, and the
        # entries that come meanwhile go with it.
        clock.now = 0.1
        waiting = [asyncio.create_task(appender.append(_entry(1)))]
        await _until(lambda: clock.pauses, "the next batch pauses")
        waiting += [asyncio.create_task(appender.append(_entry(n))) for n in (2, 3)]
        await _until(lambda: len(appender._waiting) == 3, "three entries wait")
        clock.released.set()
        await asyncio.gather(*waiting)
    rows, head = _chain(settings)
    assert clock.pauses == [0.4]
    assert batches == [1, 3]
    assert [row["request"]["n"] for row in rows] == [0, 1, 2, 3] and verify(rows, head) is None


async def test_an_entry_after_a_quiet_spell_does_not_wait_for_the_interval(
    settings: ExchangeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.migrate(settings.postgres)
    batches = _count_batches(monkeypatch)
    clock = _Clock()
    clock.released.set()
    async with _pool(settings) as pool:
        appender = AuditAppender(pool, min_interval=0.5, clock=clock.time, sleep=clock.sleep)
        await appender.append(_entry(0))
        clock.now = 0.6  # a quiet spell longer than the interval

        # Entry 1 is written at once, alone; entry 2, 30 ms later while that batch is written, is within
        # the interval since then and goes in the next batch, after the rest of the interval. Had entry 1
        # waited out an interval, the two would have gone together.
        first = asyncio.create_task(appender.append(_entry(1)))
        await _until(lambda: len(batches) == 2, "the second batch is written")
        clock.now = 0.63
        await asyncio.gather(first, appender.append(_entry(2)))
    assert batches == [1, 1, 1]
    assert clock.pauses == [0.47]


async def test_a_batch_after_the_appenders_own_commits_in_one_statement_without_a_transaction(
    settings: ExchangeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.migrate(settings.postgres)
    transactions = 0
    opened = appender_module.transaction

    def counted(pool: AsyncConnectionPool[Connection]) -> Any:
        nonlocal transactions
        transactions += 1
        return opened(pool)

    monkeypatch.setattr(appender_module, "transaction", counted)
    async with _pool(settings) as pool:
        appender = AuditAppender(pool)
        await appender.append(_entry(0))  # the head is not known yet: locked and read in a transaction
        assert transactions == 1
        for n in range(1, 4):
            await asyncio.gather(*(appender.append(_entry(n * 10 + k)) for k in range(3)))
        assert transactions == 1  # three more batches, each one statement after the head it left
    rows, head = _chain(settings)
    assert [row["request"]["n"] for row in rows] == [0, 10, 11, 12, 20, 21, 22, 30, 31, 32]
    assert verify(rows, head) is None


async def test_a_head_moved_by_another_appender_writes_nothing_then_the_batch_takes_the_lock(
    settings: ExchangeSettings,
) -> None:
    database.migrate(settings.postgres)
    async with _pool(settings) as first, _pool(settings) as second:
        mine, other = AuditAppender(first), AuditAppender(second)
        await mine.append(_entry(1, "first"))
        await mine.append(_entry(2, "first"))  # the one-statement path
        await other.append(_entry(3, "second"))  # the head moves under `mine`
        async with first.connection() as conn:
            stale = (2, _chain(settings)[0][1]["hash"])
            assert await audit_table.append_batch_after(conn, [_entry(99)], stale) is None
        assert len(_chain(settings)[0]) == 3  # nothing written after a stale head
        await mine.append(_entry(4, "first"))  # misses, then appends under the lock after row 3
        await other.append(_entry(5, "second"))
        await mine.append(_entry(6, "first"))
    rows, head = _chain(settings)
    assert [(row["seq"], row["request"]["n"]) for row in rows] == [(n, n) for n in range(1, 7)]
    assert verify(rows, head) is None


async def test_two_processes_appenders_make_one_gapless_chain(settings: ExchangeSettings) -> None:
    database.migrate(settings.postgres)
    # Two pools, two appenders: as two API processes, each batch waits for the other's head lock.
    async with _pool(settings) as first, _pool(settings) as second:
        appenders = (AuditAppender(first, max_batch=7), AuditAppender(second, max_batch=5))

        async def burst(appender: AuditAppender, caller: str) -> None:
            for round_ in range(6):
                await asyncio.gather(*(appender.append(_entry(round_ * 100 + n, caller)) for n in range(20)))

        await asyncio.gather(burst(appenders[0], "first"), burst(appenders[1], "second"))
    rows, head = _chain(settings)
    assert [row["seq"] for row in rows] == list(range(1, 241))
    assert sorted(row["caller"] for row in rows) == ["first"] * 120 + ["second"] * 120
    assert verify(rows, head) is None


async def test_a_failed_batch_fails_every_append_in_it_and_leaves_no_row(settings: ExchangeSettings) -> None:
    database.migrate(settings.postgres)
    async with _pool(settings) as pool:
        appender = AuditAppender(pool)
        first = _entry(0)
        await appender.append(first)
        before = _chain(settings)
        measured = _measured()
        # The last entry reuses an event id (unique in audit_log): the batch's insert fails.
        batch = [*(_entry(n) for n in range(1, 10)), dataclasses.replace(_entry(10), event_id=first.event_id)]
        outcomes = await asyncio.gather(*(appender.append(entry) for entry in batch), return_exceptions=True)
        assert all(isinstance(outcome, StorageError) for outcome in outcomes), outcomes
        assert _chain(settings) == before
        assert _since(measured) == {"batches": 1, "rows": 10, "committed": 0, "failed": 1}
        await appender.append(_entry(11))  # the appender goes on after a failed batch
    rows, head = _chain(settings)
    assert [row["request"]["n"] for row in rows] == [0, 11] and verify(rows, head) is None


async def test_a_request_cancelled_while_its_entry_waits_still_has_it_appended(
    settings: ExchangeSettings,
) -> None:
    database.migrate(settings.postgres)
    async with _pool(settings) as pool:
        appender = AuditAppender(pool)
        await appender.append(_entry(0))  # a head known: the next batch is one statement
        # One request cancelled (its client gone) while its entry waits in the queue, one while its
        # batch is being written: neither cancels the batch nor keeps its entry out of the chain.
        waiting = [asyncio.create_task(appender.append(_entry(n))) for n in range(1, 5)]
        await asyncio.sleep(0)  # every append queued; the batch not yet taken
        waiting[0].cancel()
        while appender._flushing is not None and appender._waiting:
            await asyncio.sleep(0)  # the batch taken: being written
        waiting[1].cancel()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert [isinstance(outcome, asyncio.CancelledError) for outcome in outcomes] == [
            True,
            True,
            False,
            False,
        ]
        await appender.append(_entry(5))  # the appender goes on
        await appender.close()
    rows, head = _chain(settings)
    assert [row["request"]["n"] for row in rows] == [0, 1, 2, 3, 4, 5] and verify(rows, head) is None


async def test_requests_whose_audit_cannot_be_written_get_no_data(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    settings = with_key(settings, tmp_path)
    database.migrate(settings.postgres)
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit refused for the test'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
        )
    body = {"subject": SUBJECT, "purpose": "public-rental-housing", "claims": [CLAIM]}
    async with client(settings, "housing-bureau") as housing, client(settings, "bank") as bank:
        sent = [(housing, bank)[n % 2].post("/v1/verifications", json=body) for n in range(12)]
        responses = await asyncio.gather(*sent)
    assert {response.status_code for response in responses} == {500}
    assert all("results" not in response.json() for response in responses)
    rows, head = _chain(settings)
    assert rows == [] and head[0] == 0


async def test_a_batch_keeps_every_column_exactly_as_hashed(settings: ExchangeSettings) -> None:
    # The batch travels as one JSON document: text beyond ASCII, scrubbed NULs, big and negative
    # numbers, nested values, nulls and an instant with microseconds at another offset all come back
    # as they were chained, and the chain verifies.
    database.migrate(settings.postgres)
    shanghai = dt.timezone(dt.timedelta(hours=8))
    entries = [
        AuditEntry(
            caller="housing-bureau",
            action="verification",
            outcome="refused",
            policy_version="v-测试",
            purpose="公租房\x00",
            subject_key="ab" * 32,
            reason="consent_missing",
            request={"名": "数据跑腿 😀", "nul": "a\x00b", "big": 10**30, "neg": -7, "nested": [{"x": None}]},
            response={"ok": False, "n": 1.5, "list": [1, "二", True]},
            at=dt.datetime(2026, 11, 15, 8, 30, 1, 123456, tzinfo=shanghai),
        ),
        AuditEntry(caller="public", action="proof.verify", outcome="allowed", policy_version="v1"),
    ]
    async with _pool(settings) as pool, transaction(pool) as conn:
        chained_rows = await audit_table.append_batch(conn, entries)
    rows, head = _chain(settings)
    assert rows == [{**row, "event_id": uuid.UUID(row["event_id"])} for row in chained_rows]
    assert rows[0]["at"] == entries[0].at and rows[0]["request"]["nul"] == "a\ufffdb"
    assert verify(rows, head) is None


def _services(settings: ExchangeSettings) -> Services:
    signer: Any = None  # nothing here signs
    return Services(settings, load_policy(), create_pool(settings), signer)


async def test_an_audit_batch_is_written_while_requests_hold_every_pooled_connection(
    settings: ExchangeSettings,
) -> None:
    # The appender has a connection of its own: a batch never waits for one of the requests' pool,
    # whose connections a burst of reads can hold all at once (as here, for longer than the pool's
    # timeout: had the batch queued for one, the append would fail with the database "unavailable").
    database.migrate(settings.postgres)
    api = settings.api.model_copy(update={"pool_max": 2, "pool_timeout_seconds": 1.0})
    services = _services(settings.model_copy(update={"api": api}))
    await services.open()
    try:
        held = [await services.pool.getconn() for _ in range(api.pool_max)]
        try:
            await asyncio.gather(*(services.audit.append(_entry(n)) for n in range(3)))
        finally:
            for conn in held:
                await services.pool.putconn(conn)
    finally:
        await services.close()
    rows, head = _chain(settings)
    assert [row["request"]["n"] for row in rows] == [0, 1, 2] and verify(rows, head) is None


async def test_services_whose_audit_connection_cannot_open_close_the_requests_pool_again(
    settings: ExchangeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = _services(settings)

    async def refused(*args: Any, **kwargs: Any) -> None:
        raise PoolTimeout("no audit connection")

    monkeypatch.setattr(services.audit_pool, "open", refused)
    with pytest.raises(PoolTimeout):
        await services.open()
    assert services.pool.closed
