"""The contribution lines behind a profile's social months, read from `social_contribution_records`.

The profile keeps months as ranges and the positions it was folded up to (`Social.read_to`); the
subject's current line versions among the records read up to there, in the fold's own order (higher
version, then a revoke over an upsert, then the earlier position), are exactly the lines it counted.
The sink loads the record tables and the profiles from different topics, so a profile can be visible
a moment before its last lines are: then the read waits for them, briefly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from exchange.api.exceptions import StorageUnavailableError
from exchange.api.storage.pool import Connection, fetch_all, fetch_one
from exchange.facts import Fact, Facts, Line, spans, with_lines
from exchange.profile import SOCIAL, Position, RecordRef

_BOUNDS = """
WITH bounds (topic, kafka_partition, kafka_offset) AS (
    SELECT * FROM unnest(%(topics)s::text[], %(partitions)s::integer[], %(offsets)s::bigint[])
)
"""
_LINES = (
    _BOUNDS
    + """
SELECT event_id, source_record_id, source_version, topic, kafka_partition, kafka_offset,
       insurance_type, month, status
FROM (
    SELECT DISTINCT ON (r.source_record_id) r.*
    FROM social_contribution_records r
    JOIN bounds b ON r.topic = b.topic AND r.kafka_partition = b.kafka_partition
                 AND r.kafka_offset <= b.kafka_offset
    WHERE r.subject_key = %(subject_key)s
    ORDER BY r.source_record_id, r.source_version DESC, (r.op = 'revoke') DESC,
             r.topic, r.kafka_partition, r.kafka_offset
) AS current
WHERE op = 'upsert' AND status = 'paid'
"""
)
# Whether the record at each bound is loaded: the sink writes a partition in offset order, so then
# every record before it is too.
_LOADED = (
    _BOUNDS
    + """
SELECT count(*) AS loaded
FROM social_contribution_records r
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


async def current_lines(
    conn: Connection, subject_key: str, read_to: Sequence[Position], wait: float = WAIT_SECONDS
) -> list[Line]:
    """The subject's received (paid, not revoked) current lines among those read up to `read_to`.

    Raises `StorageUnavailableError` when the lines are still not loaded after `wait` seconds.
    """
    params = _params(subject_key, read_to)
    waited = 0.0
    while True:
        found = await fetch_one(conn, _LOADED, params)
        if found is not None and found["loaded"] >= len(read_to):
            break
        if waited >= wait:
            raise StorageUnavailableError(
                f"the contribution records behind subject {subject_key}'s profile are not loaded yet"
            )
        await asyncio.sleep(_POLL_SECONDS)
        waited += _POLL_SECONDS
    rows = await fetch_all(conn, _LINES, params)
    return [
        Line(
            RecordRef(
                str(row["event_id"]),
                SOCIAL,
                row["source_record_id"],
                row["source_version"],
                row["topic"],
                row["kafka_partition"],
                row["kafka_offset"],
            ),
            row["insurance_type"],
            row["month"],
            row["status"],
        )
        for row in rows
    ]


async def resolve(conn: Connection, subject_key: str, facts: Mapping[str, Fact]) -> Facts:
    """`facts` with the lineage of their month spans read from the record table (one query, and none
    when no fact has a span)."""
    read_to = spans(facts)
    if not read_to:
        return dict(facts)
    return with_lines(facts, await current_lines(conn, subject_key, read_to))
