"""The audit relay: audit rows onto exchange.audit.v1, in chain order, none lost (a transactional outbox).

The log in PostgreSQL is the source; `audit_relay.next_seq` is how far the topic has it. A pass
locks that row (SKIP LOCKED: of several API processes one relays at a time), sends the rows from
there, waits for the broker's acknowledgements and moves the position in the same transaction. A
crash between the two re-sends a few rows with the same event ids and seq: at least once. All rows
share one key, so the topic keeps them in chain order and can be verified as the table is.

A pass's rows go out as produce batches built directly (`create_batch`, `send_batch`) on the partition
the shared key hashes to, as `send(key=KEY)` would pick it: one metadata wait, partitioner call and
future per batch rather than per row (the per-row sends were most of the relay's CPU, which the
API's requests share the machine with).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from psycopg_pool import AsyncConnectionPool

from exchange.api.storage.pool import Connection, fetch_all, fetch_one, transaction
from exchange.audit import sorted_json
from exchange.exceptions import ExchangeError
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings
from exchange.topics import AUDIT

KEY = b"audit-chain"
# A produce batch's byte limit: a pass of verification rows (about 0.5 kB each) in a few batches, well
# under the broker's default message.max.bytes (1 MiB).
MAX_BATCH_BYTES = 512 * 1024
_log = logging.getLogger("exchange.api.relay")
# The event id as text: the record carries it as a string, and a uuid.UUID a row only to print it back.
# The JSON columns as text too: the record carries them as canonical JSON text (`sorted_json`), which is
# written from the text without psycopg's parse in between.
_PENDING = """
SELECT seq, event_id::text AS event_id, at, caller, purpose, subject_key, action, outcome, reason,
       request::text AS request, response::text AS response, policy_version, prev_hash, hash
FROM audit_log WHERE seq >= %s ORDER BY seq LIMIT %s
"""


def audit_record(row: dict[str, Any]) -> dict[str, Any]:
    """The `AccessAudited` record (schemas/audit.avsc) of an audit_log row."""
    record = {name: row[name] for name in ("seq", "at", "caller", "purpose", "subject_key", "action")}
    record.update({name: row[name] for name in ("outcome", "reason", "policy_version", "prev_hash", "hash")})
    record["event_id"] = str(row["event_id"])
    for name in ("request", "response"):
        value = row[name]
        # As the canonical JSON writes the column: from its text (as `_PENDING` reads it), or its value.
        record[name] = (
            sorted_json(value)
            if isinstance(value, str)
            else json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        )
    return record


class AuditRelay:
    """Publishes audit rows not yet on the topic; `run` loops until stopped, `publish_pending` is one pass."""

    def __init__(self, settings: ExchangeSettings, pool: AsyncConnectionPool[Connection]) -> None:
        self._settings = settings
        self._pool = pool
        self._topic = AUDIT.full_name(settings.kafka)
        self._codec = AvroCodec()
        self._producer: AIOKafkaProducer | None = None

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._settings.kafka.bootstrap_servers,
                acks="all",
                enable_idempotence=True,
                max_batch_size=MAX_BATCH_BYTES,
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def publish_pending(self, page: int = 500) -> int:
        """One pass: publish the rows after the relay's position; how many it published."""
        producer = await self._started()
        async with transaction(self._pool) as conn:
            position = await fetch_one(conn, "SELECT next_seq FROM audit_relay FOR UPDATE SKIP LOCKED")
            if position is None:
                return 0  # another process is relaying
            rows = await fetch_all(
                conn,
                _PENDING,
                (position["next_seq"], page),
            )
            if rows:
                await self._send(producer, [self._codec.encode("audit", audit_record(row)) for row in rows])
                await conn.execute("UPDATE audit_relay SET next_seq = %s", (int(rows[-1]["seq"]) + 1,))
        return len(rows)

    async def _send(self, producer: AIOKafkaProducer, values: list[bytes]) -> None:
        """Send `values` in order, keyed `KEY`, and wait for the broker's acknowledgement of every one.

        Batches of one partition are sent in order (and, idempotent, without reordering on a retry). A
        record bigger than `MAX_BATCH_BYTES` goes alone in a batch of its own; should an empty batch
        ever refuse one, it goes through `send`, which sends or refuses it as it always did."""
        partitions = sorted(await producer.partitions_for(self._topic))
        partition = DefaultPartitioner()(KEY, partitions, partitions)
        acknowledged: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        for value in values:
            if batch.append(key=KEY, value=value, timestamp=None) is not None:
                continue
            if batch.record_count():  # full: send it and start the next one with this record
                acknowledged.append(await producer.send_batch(batch, self._topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=KEY, value=value, timestamp=None) is None:
                acknowledged.append(await producer.send(self._topic, value, key=KEY, partition=partition))
                batch = producer.create_batch()
        if batch.record_count():
            acknowledged.append(await producer.send_batch(batch, self._topic, partition=partition))
        await asyncio.gather(*acknowledged)

    async def run(self, stop: asyncio.Event, page: int = 500) -> None:
        """Relay until `stop` is set; Kafka or PostgreSQL trouble is logged and retried, never fatal.

        A pass that found a full page goes on at once (the relay is behind); one that found less has
        caught up, and the next pass waits for the interval: while requests keep coming, each pass
        takes the rows of a whole interval rather than the few appended during the pass before (a
        pass's round trips and its wait for the broker cost the same for one row as for hundreds).
        """
        interval = self._settings.api.audit_relay_interval_seconds
        while not stop.is_set():
            if await self.catch_up(page):
                interval = self._settings.api.audit_relay_interval_seconds
            else:
                interval = min(interval * 2, 30.0)
            await self._pause(stop, interval)

    async def catch_up(self, page: int = 500) -> bool:
        """Publish passes until one finds less than a full page; False when Kafka or PostgreSQL trouble
        stopped it (logged: the rows stay in the log, and the next call publishes them)."""
        try:
            while await self.publish_pending(page) == page:
                pass
        except (KafkaError, ExchangeError, OSError) as exc:
            _log.warning("audit relay: %s; retrying", type(exc).__name__)
            return False
        return True

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        """Wait `seconds` before the next pass, or less if `stop` is set."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    async def close(self) -> None:
        """Stop the producer (its buffered records were already acknowledged)."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
