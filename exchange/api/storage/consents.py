"""The `consents` table: consent and delegation in force, materialised from exchange.consent.v1."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exchange.api.storage.pool import Connection, fetch_all
from exchange.consent import NO_DELEGATE

_IN_FORCE = (
    "SELECT delegate_key, granted FROM consents WHERE subject_key = %s AND caller = %s AND purpose = %s"
)

# A later change wins; events of one subject share a partition, so the offset breaks a tie in time.
_APPLY = """
INSERT INTO consents (subject_key, caller, purpose, delegate_key, granted, event_id, occurred_at, topic,
                      kafka_partition, kafka_offset)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (subject_key, caller, purpose, delegate_key) DO UPDATE
SET granted = excluded.granted, event_id = excluded.event_id, occurred_at = excluded.occurred_at,
    topic = excluded.topic, kafka_partition = excluded.kafka_partition, kafka_offset = excluded.kafka_offset
WHERE (excluded.occurred_at, excluded.kafka_offset) > (consents.occurred_at, consents.kafka_offset)
"""


async def in_force(conn: Connection, subject_key: str, caller: str, purpose: str) -> dict[str, bool]:
    """Delegate key ('' for the subject's own consent) -> whether it is granted now."""
    rows = await fetch_all(conn, _IN_FORCE, (subject_key, caller, purpose))
    return {row["delegate_key"]: row["granted"] for row in rows}


async def apply_event(
    conn: Connection, event: Mapping[str, Any], topic: str, partition: int, offset: int
) -> None:
    """Fold one ConsentChanged event into the table; replaying it changes nothing."""
    await conn.execute(
        _APPLY,
        (
            event["subject_key"],
            event["caller"],
            event["purpose"],
            event["delegate_key"] or NO_DELEGATE,
            event["op"] == "grant",
            event["event_id"],
            event["occurred_at"],
            topic,
            partition,
            offset,
        ),
    )
