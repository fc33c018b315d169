"""The `proofs` table: every proof issued, with its signed payload and the records it used."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from exchange.api.storage.pool import Connection, Row, fetch_one

_INSERT = """
INSERT INTO proofs (proof_id, proof_type, caller, purpose, subject_key, issued_at, payload_sha256, jws,
                    document, sources, policy_version)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


async def insert_proof(
    conn: Connection,
    *,
    document: Mapping[str, Any],
    subject_key: str,
    issued_at: dt.datetime,
    payload_sha256: str,
    jws: str,
    sources: Sequence[Mapping[str, Any]],
) -> None:
    """Store an issued proof."""
    await conn.execute(
        _INSERT,
        (
            document["proof_id"],
            document["proof_type"],
            document["caller"],
            document["purpose"],
            subject_key,
            issued_at,
            payload_sha256,
            jws,
            Jsonb(document),
            Jsonb(list(sources)),
            document["policy_version"],
        ),
    )


async def get_proof(conn: Connection, proof_id: str) -> Row | None:
    """The stored proof, or None."""
    return await fetch_one(conn, "SELECT * FROM proofs WHERE proof_id = %s", (proof_id,))
