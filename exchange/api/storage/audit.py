"""The `audit_log` table: chained appends serialised on the chain head, reads for verification and history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from psycopg.types.json import Jsonb

from exchange.api.storage.pool import Connection, Row, fetch_all, fetch_one
from exchange.audit import AuditEntry, chained

_HEAD_FOR_UPDATE = "SELECT last_seq, last_hash FROM audit_chain_head FOR UPDATE"
_INSERT = """
INSERT INTO audit_log (seq, event_id, at, caller, purpose, subject_key, action, outcome, reason, request,
                       response, policy_version, prev_hash, hash)
VALUES (%(seq)s, %(event_id)s, %(at)s, %(caller)s, %(purpose)s, %(subject_key)s, %(action)s, %(outcome)s,
        %(reason)s, %(request)s, %(response)s, %(policy_version)s, %(prev_hash)s, %(hash)s)
"""
_MOVE_HEAD = "UPDATE audit_chain_head SET last_seq = %s, last_hash = %s"
_PAGE = "SELECT * FROM audit_log WHERE seq >= %s ORDER BY seq LIMIT %s"
_HISTORY = """
SELECT at, caller, purpose, action, outcome, reason FROM audit_log
WHERE subject_key = %s ORDER BY seq DESC LIMIT %s
"""


async def append(conn: Connection, entry: AuditEntry) -> dict[str, Any]:
    """Append `entry` to the chain; call inside a transaction. Concurrent appends wait on the head row."""
    head = await fetch_one(conn, _HEAD_FOR_UPDATE)
    if head is None:
        raise LookupError("audit_chain_head has no row: migration 0003 was not applied")
    row = chained(entry, int(head["last_seq"]) + 1, str(head["last_hash"]))
    await conn.execute(_INSERT, {**row, "request": Jsonb(row["request"]), "response": Jsonb(row["response"])})
    await conn.execute(_MOVE_HEAD, (row["seq"], row["hash"]))
    return row


async def head(conn: Connection) -> tuple[int, str] | None:
    """The chain head: the last seq and hash the appends recorded."""
    row = await fetch_one(conn, "SELECT last_seq, last_hash FROM audit_chain_head")
    return None if row is None else (int(row["last_seq"]), str(row["last_hash"]))


async def rows_from(conn: Connection, first_seq: int, page: int = 1000) -> AsyncIterator[Row]:
    """Every row from `first_seq` on, in seq order, a page at a time."""
    next_seq = first_seq
    while True:
        rows = await fetch_all(conn, _PAGE, (next_seq, page))
        for row in rows:
            yield row
        if len(rows) < page:
            return
        next_seq = int(rows[-1]["seq"]) + 1


async def subject_history(conn: Connection, subject_key: str, limit: int = 500) -> list[Row]:
    """Who used a subject's data, for which purpose, when: newest first."""
    return await fetch_all(conn, _HISTORY, (subject_key, limit))
