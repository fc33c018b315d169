"""The audit relay: audit rows onto exchange.audit.v1, in chain order, none lost (a transactional outbox).

The log in PostgreSQL is the source; `audit_relay.next_seq` is how far the topic has it. A pass
locks that row (SKIP LOCKED: of several API processes one relays at a time), sends the rows from
there, waits for the broker's acknowledgements and moves the position in the same transaction. A
crash between the two re-sends a few rows with the same event ids and seq: at least once. All rows
share one key, so the topic keeps them in chain order and can be verified as the table is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from psycopg_pool import AsyncConnectionPool

from exchange.api.storage.pool import Connection, fetch_all, fetch_one, transaction
from exchange.exceptions import ExchangeError
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings
from exchange.topics import AUDIT

KEY = b"audit-chain"
_log = logging.getLogger("exchange.api.relay")


def audit_record(row: dict[str, Any]) -> dict[str, Any]:
    """The `AccessAudited` record (schemas/audit.avsc) of an audit_log row."""
    record = {name: row[name] for name in ("seq", "at", "caller", "purpose", "subject_key", "action")}
    record.update({name: row[name] for name in ("outcome", "reason", "policy_version", "prev_hash", "hash")})
    record["event_id"] = str(row["event_id"])
    for name in ("request", "response"):
        record[name] = json.dumps(row[name], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
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
                bootstrap_servers=self._settings.kafka.bootstrap_servers, acks="all", enable_idempotence=True
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
                "SELECT * FROM audit_log WHERE seq >= %s ORDER BY seq LIMIT %s",
                (position["next_seq"], page),
            )
            sent = [
                await producer.send(self._topic, self._codec.encode("audit", audit_record(row)), key=KEY)
                for row in rows
            ]
            await asyncio.gather(*sent)
            if rows:
                await conn.execute("UPDATE audit_relay SET next_seq = %s", (int(rows[-1]["seq"]) + 1,))
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; Kafka or PostgreSQL trouble is logged and retried, never fatal."""
        interval = self._settings.api.audit_relay_interval_seconds
        while not stop.is_set():
            try:
                while await self.publish_pending():
                    pass
            except (KafkaError, ExchangeError, OSError) as exc:
                _log.warning("audit relay: %s; retrying", type(exc).__name__)
                interval = min(interval * 2, 30.0)
            else:
                interval = self._settings.api.audit_relay_interval_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def close(self) -> None:
        """Stop the producer (its buffered records were already acknowledged)."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
