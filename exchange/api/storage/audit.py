"""The `audit_log` table: chained appends serialised on the chain head, reads for verification and history.

An append takes a batch: the head is locked once, the entries are chained after it and inserted in
one statement, and the head moves to the last of them, all in the caller's transaction. Of
several processes appending at once, each batch waits for the head row, so the chain stays gapless.
`append_batch_after` does the same in one statement when the caller knows the head (its own last
batch): it writes nothing if the head has moved since.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from exchange.api.storage.pool import Connection, Row, fetch_all, fetch_one
from exchange.audit import AuditEntry, chained_canonical, chained_text

_HEAD_FOR_UPDATE = "SELECT last_seq, last_hash FROM audit_chain_head FOR UPDATE"
# One statement per batch: the rows travel as one JSON array (one parameter, encoded in one call) rather
# than fourteen adapted parameters a row; PostgreSQL turns it back into typed columns.
_INSERT = """
INSERT INTO audit_log (seq, event_id, at, caller, purpose, subject_key, action, outcome, reason, request,
                       response, policy_version, prev_hash, hash)
SELECT seq, event_id, at, caller, purpose, subject_key, action, outcome, reason, request,
       response, policy_version, prev_hash, hash
FROM jsonb_to_recordset(%s::jsonb) AS batch(
    seq bigint, event_id uuid, at timestamptz, caller text, purpose text, subject_key text, action text,
    outcome text, reason text, request jsonb, response jsonb, policy_version text, prev_hash text, hash text
)
"""
_MOVE_HEAD = "UPDATE audit_chain_head SET last_seq = %s, last_hash = %s"
# The batch after a head the appender believes current, in one statement (autocommit: one round trip
# instead of BEGIN, lock, insert, move, COMMIT): the head moves only if it is still that one, and the
# rows are inserted only if it moved. A head moved by another process since matches no row (a waiting
# UPDATE re-checks its condition on the committed row), so nothing is written.
_APPEND_AFTER = f"""
WITH head AS (
    UPDATE audit_chain_head SET last_seq = %(last_seq)s, last_hash = %(last_hash)s
    WHERE last_seq = %(after_seq)s AND last_hash = %(after_hash)s
    RETURNING last_seq
)
{_INSERT.strip()}
WHERE EXISTS (SELECT FROM head)
""".replace("jsonb_to_recordset(%s::jsonb)", "jsonb_to_recordset(%(rows)s::jsonb)")
_PAGE = "SELECT * FROM audit_log WHERE seq >= %s ORDER BY seq LIMIT %s"
_HISTORY = """
SELECT seq, at, caller, purpose, action, outcome, reason FROM audit_log
WHERE subject_key = %(subject_key)s AND (%(before)s::bigint IS NULL OR seq < %(before)s)
ORDER BY seq DESC LIMIT %(limit)s
"""


async def append(conn: Connection, entry: AuditEntry) -> dict[str, Any]:
    """Append one entry to the chain; call inside a transaction (see `append_batch`)."""
    (row,) = await append_batch(conn, [entry])
    return row


async def append_batch(conn: Connection, entries: Sequence[AuditEntry]) -> list[dict[str, Any]]:
    """Append `entries`, in order, to the chain; call inside a transaction. Concurrent appends wait on
    the head row. The rows as chained, or `LookupError` when the chain head is missing."""
    if not entries:
        return []
    head = await fetch_one(conn, _HEAD_FOR_UPDATE)
    if head is None:
        raise LookupError("audit_chain_head has no row: migration 0003 was not applied")
    rows, document = _chain(entries, int(head["last_seq"]), str(head["last_hash"]))
    await conn.execute(_INSERT, (document,))
    await conn.execute(_MOVE_HEAD, (rows[-1]["seq"], rows[-1]["hash"]))
    return rows


async def append_batch_after(
    conn: Connection, entries: Sequence[AuditEntry], head: tuple[int, str]
) -> tuple[int, str] | None:
    """Append `entries` after the chain head `head` (last seq, last hash) in one statement, on a
    connection in autocommit mode; the new head, or None (nothing written) when the head is no longer
    `head`: then append with `append_batch` in a transaction."""
    if not entries:
        return head
    seq, prev_hash = head
    documents: list[bytes] = []
    for entry in entries:  # no rows built: the appender needs only the new head
        seq += 1
        prev_hash, text = chained_text(entry, seq, prev_hash)
        documents.append(_document(text, prev_hash))
    async with conn.cursor() as cursor:
        await cursor.execute(
            _APPEND_AFTER,
            {
                "rows": _array(documents),
                "last_seq": seq,
                "last_hash": prev_hash,
                "after_seq": head[0],
                "after_hash": head[1],
            },
        )
        written = cursor.rowcount
    if written == 0:
        return None
    if written != len(documents):  # cannot happen: the insert is all of the batch or nothing
        raise LookupError(f"{written} of a batch of {len(documents)} audit rows were inserted")
    return seq, prev_hash


def _chain(entries: Sequence[AuditEntry], last_seq: int, last_hash: str) -> tuple[list[dict[str, Any]], str]:
    """The rows of `entries` chained after (`last_seq`, `last_hash`), and the JSON array `_INSERT` reads.

    The array is made of each row's canonical JSON (exchange.audit.canonical), the very text its hash
    was taken over, with the hash added: every column is stored from what was hashed (the instant with
    its offset and microseconds, so timestamptz keeps exactly that instant), and no row is encoded twice.
    """
    rows: list[dict[str, Any]] = []
    documents: list[bytes] = []
    seq, prev_hash = last_seq, last_hash
    for entry in entries:
        seq += 1
        row, text = chained_canonical(entry, seq, prev_hash)
        prev_hash = row["hash"]
        rows.append(row)
        documents.append(_document(text, prev_hash))
    return rows, _array(documents)


def _document(text: bytes, row_hash: str) -> bytes:
    # `text` is one JSON object: its closing brace gives way to the hash column.
    return b'%s,"hash":"%s"}' % (text[:-1], row_hash.encode())


def _array(documents: list[bytes]) -> str:
    return (b"[" + b",".join(documents) + b"]").decode()


async def head(conn: Connection) -> tuple[int, str] | None:
    """The chain head: the last seq and hash the appends recorded."""
    row = await fetch_one(conn, "SELECT last_seq, last_hash FROM audit_chain_head")
    return None if row is None else (int(row["last_seq"]), str(row["last_hash"]))


async def relay_position(conn: Connection) -> int | None:
    """The relay's position: the first seq it has not published to exchange.audit.v1 (None: no row)."""
    row = await fetch_one(conn, "SELECT next_seq FROM audit_relay")
    return None if row is None else int(row["next_seq"])


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


async def subject_history(
    conn: Connection, subject_key: str, limit: int | None = 500, before: int | None = None
) -> list[Row]:
    """Who used a subject's data, for which purpose, when: newest first; the newest `limit` (None: all)
    of the entries before the entry `before` (its seq; None: from the newest)."""
    return await fetch_all(conn, _HISTORY, {"subject_key": subject_key, "limit": limit, "before": before})
