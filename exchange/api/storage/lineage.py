"""The records behind a profile's months, read from `tax_payment_records` and
`social_contribution_records`.

The profile keeps months as ranges and the positions it was folded up to (`Tax.read_to`,
`Social.read_to`); the subject's current versions among the records read up to there, in the fold's
own order (higher version, then a revoke over an upsert, then the earlier position), are exactly the
records it counted. The sink loads the record tables and the profiles from different topics, so a
profile can be visible a moment before its last records are: then the read waits for them, briefly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from exchange.api.exceptions import StorageUnavailableError
from exchange.api.storage.pool import Connection, Row, fetch_all, fetch_one
from exchange.facts import Fact, Facts, Line, Voucher, spans, with_records
from exchange.profile import SOCIAL, TAX, Position, RecordRef

_BOUNDS = """
WITH bounds (topic, kafka_partition, kafka_offset) AS (
    SELECT * FROM unnest(%(topics)s::text[], %(partitions)s::integer[], %(offsets)s::bigint[])
)
"""
# {columns} of the current, live versions of {table} read up to the bounds, for which {where} holds.
_CURRENT = (
    _BOUNDS
    + """
SELECT event_id, source_record_id, source_version, topic, kafka_partition, kafka_offset, {columns}
FROM (
    SELECT DISTINCT ON (r.source_record_id) r.*
    FROM {table} r
    JOIN bounds b ON r.topic = b.topic AND r.kafka_partition = b.kafka_partition
                 AND r.kafka_offset <= b.kafka_offset
    WHERE r.subject_key = %(subject_key)s
    ORDER BY r.source_record_id, r.source_version DESC, (r.op = 'revoke') DESC,
             r.topic, r.kafka_partition, r.kafka_offset
) AS current
WHERE op = 'upsert' AND {where}
"""
)
_LINES = _CURRENT.format(
    columns="insurance_type, month, status", table="social_contribution_records", where="status = 'paid'"
)
_VOUCHERS = _CURRENT.format(
    columns="period_start, period_end, tax_paid", table="tax_payment_records", where="true"
)
# Whether the record at each bound is loaded: the sink writes a partition in offset order, so then
# every record before it is too.
_LOADED = (
    _BOUNDS
    + """
SELECT count(*) AS loaded
FROM {table} r
JOIN bounds b ON r.topic = b.topic AND r.kafka_partition = b.kafka_partition
             AND r.kafka_offset = b.kafka_offset
WHERE r.subject_key = %(subject_key)s
"""
)
# How long a read waits for lines the profile counted but the sink has not loaded yet.
WAIT_SECONDS = 2.0
_POLL_SECONDS = 0.05


def _params(subject_key: str, read_to: Sequence[Position]) -> dict[str, object]:
    return {
        "subject_key": subject_key,
        "topics": [position.topic for position in read_to],
        "partitions": [position.partition for position in read_to],
        "offsets": [position.offset for position in read_to],
    }


async def _loaded(
    conn: Connection, table: str, params: Mapping[str, object], bounds: int, wait: float
) -> None:
    """Return once the record at each bound is in `table`; `StorageUnavailableError` after `wait` s."""
    waited = 0.0
    while True:
        found = await fetch_one(conn, _LOADED.format(table=table), params)
        if found is not None and found["loaded"] >= bounds:
            return
        if waited >= wait:
            raise StorageUnavailableError(
                f"the records in {table} behind subject {params['subject_key']}'s profile are not loaded yet"
            )
        await asyncio.sleep(_POLL_SECONDS)
        waited += _POLL_SECONDS


def _ref(dataset: str, row: Row) -> RecordRef:
    return RecordRef(
        str(row["event_id"]),
        dataset,
        row["source_record_id"],
        row["source_version"],
        row["topic"],
        row["kafka_partition"],
        row["kafka_offset"],
    )


async def current_lines(
    conn: Connection, subject_key: str, read_to: Sequence[Position], wait: float = WAIT_SECONDS
) -> list[Line]:
    """The subject's received (paid, not revoked) current lines among those read up to `read_to`.

    Raises `StorageUnavailableError` when the lines are still not loaded after `wait` seconds.
    """
    params = _params(subject_key, read_to)
    await _loaded(conn, "social_contribution_records", params, len(read_to), wait)
    rows = await fetch_all(conn, _LINES, params)
    return [Line(_ref(SOCIAL, row), row["insurance_type"], row["month"], row["status"]) for row in rows]


async def current_vouchers(
    conn: Connection, subject_key: str, read_to: Sequence[Position], wait: float = WAIT_SECONDS
) -> list[Voucher]:
    """The subject's current (not revoked) payments among those read up to `read_to`.

    Raises `StorageUnavailableError` when they are still not loaded after `wait` seconds.
    """
    params = _params(subject_key, read_to)
    await _loaded(conn, "tax_payment_records", params, len(read_to), wait)
    rows = await fetch_all(conn, _VOUCHERS, params)
    return [Voucher(_ref(TAX, row), row["period_start"], row["period_end"], row["tax_paid"]) for row in rows]


async def resolve(conn: Connection, subject_key: str, facts: Mapping[str, Fact]) -> Facts:
    """`facts` with the lineage of their month spans read from the record tables (a query per dataset
    a span names, none when no fact has a span)."""
    read_to = spans(facts)
    if not read_to:
        return dict(facts)
    lines = await current_lines(conn, subject_key, read_to[SOCIAL]) if SOCIAL in read_to else []
    vouchers = await current_vouchers(conn, subject_key, read_to[TAX]) if TAX in read_to else []
    return with_records(facts, lines, vouchers)
