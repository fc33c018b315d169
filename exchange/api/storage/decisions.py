"""The `decisions` table: one decision per application id, whichever channel it came by."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Jsonb

from exchange.api.storage.pool import Connection, Row, fetch_one

COLUMNS: tuple[str, ...] = (
    "application_id",
    "decision_id",
    "channel",
    "caller",
    "purpose",
    "service_item",
    "subject_key",
    "outcome",
    "reasons",
    "facts_used",
    "reference_date",
    "profile_version",
    "policy_version",
    "decided_at",
    "trace_id",
)
_INSERT = (
    f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
    "ON CONFLICT (application_id) DO NOTHING RETURNING *"
)


async def get_decision(conn: Connection, application_id: str) -> Row | None:
    """The decision on an application, or None."""
    return await fetch_one(conn, "SELECT * FROM decisions WHERE application_id = %s", (application_id,))


async def insert_decision(conn: Connection, decision: Mapping[str, Any]) -> tuple[Row, bool]:
    """Store a decision: the row stored and True; or, when a decision on the same application id is
    stored already (a concurrent request got there first), that decision and False."""
    values = [
        Jsonb(decision[name]) if name in ("reasons", "facts_used") else decision[name] for name in COLUMNS
    ]
    inserted = await fetch_one(conn, _INSERT, values)
    if inserted is not None:
        return inserted, True
    stored = await get_decision(conn, str(decision["application_id"]))
    if stored is None:
        raise LookupError("a decision that conflicted on insert is not there")
    return stored, False
