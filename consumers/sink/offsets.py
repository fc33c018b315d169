"""The consumer offsets in PostgreSQL (migration 0001): where each partition resumes, written with the rows.

Saving is fenced: a partition's offset moves only from the value this consumer started its batch
from. If another consumer of the group wrote it meanwhile (a rebalance moved the partition while a
batch was in flight; a commit whose acknowledgement was lost and is now retried), the save fails
and the whole transaction with it, so no row is written twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from kafka import TopicPartition

from consumers.exceptions import OffsetConflictError

_LOAD = """
SELECT topic, kafka_partition, next_offset FROM consumer_offsets
WHERE consumer_group = %s AND topic = ANY(%s)
"""

# `expected` is null for a partition with no stored offset yet: that one is inserted, never updated.
_SAVE = """
WITH batch (topic, kafka_partition, expected, next_offset) AS (
    SELECT * FROM unnest(%(topics)s::text[], %(partitions)s::integer[], %(expected)s::bigint[],
                         %(next)s::bigint[])
), moved AS (
    UPDATE consumer_offsets AS stored
    SET next_offset = batch.next_offset, updated_at = now()
    FROM batch
    WHERE stored.consumer_group = %(group)s AND stored.topic = batch.topic
      AND stored.kafka_partition = batch.kafka_partition AND stored.next_offset = batch.expected
    RETURNING 1
), started AS (
    INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset)
    SELECT %(group)s, topic, kafka_partition, next_offset FROM batch WHERE expected IS NULL
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved) + (SELECT count(*) FROM started)
"""


def load_offsets(
    conn: psycopg.Connection[Any], group: str, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    """The stored next offset of each of `partitions` that has one."""
    wanted = set(partitions)
    rows = conn.execute(_LOAD, (group, sorted({partition.topic for partition in wanted}))).fetchall()
    stored = {TopicPartition(topic, number): offset for topic, number, offset in rows}
    return {partition: offset for partition, offset in stored.items() if partition in wanted}


def save_offsets(
    conn: psycopg.Connection[Any],
    group: str,
    next_offsets: Mapping[TopicPartition, int],
    expected: Mapping[TopicPartition, int | None],
) -> None:
    """Store `next_offsets`, each only if its stored value is still `expected`; else `OffsetConflictError`.

    Call inside the transaction that writes the rows the offsets cover.
    """
    partitions = sorted(next_offsets)
    row = conn.execute(
        _SAVE,
        {
            "group": group,
            "topics": [partition.topic for partition in partitions],
            "partitions": [partition.partition for partition in partitions],
            "expected": [expected.get(partition) for partition in partitions],
            "next": [next_offsets[partition] for partition in partitions],
        },
    ).fetchone()
    saved = row[0] if row else 0
    if saved != len(partitions):
        raise OffsetConflictError(
            f"consumer group {group}: the stored offsets of {len(partitions) - saved} of "
            f"{len(partitions)} partitions moved under this batch (another consumer wrote them); "
            "the batch was rolled back and the sink resumes from the stored offsets"
        )
