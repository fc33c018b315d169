"""The per-dataset record tables the sink fills: current rows for proofs, latest versions for supersession."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from exchange.api.storage.pool import Connection, Row, fetch_all

# dataset -> table stem; the sink's migration creates <stem>_records and the view <stem>_current.
TABLES: dict[str, str] = {
    "identity.person": "identity_person",
    "tax.payment": "tax_payment",
    "social.contribution": "social_contribution",
    "property.title": "property_title",
}


async def current_rows(conn: Connection, dataset: str, subject_key: str) -> list[Row]:
    """The current version of each of a subject's records of `dataset` (revoked ones hidden)."""
    query = sql.SQL("SELECT * FROM {} WHERE subject_key = %s ORDER BY source_record_id").format(
        sql.Identifier(f"{TABLES[dataset]}_current")
    )
    return await fetch_all(conn, query, (subject_key,))


_READ_TO = """
SELECT topic, kafka_partition AS partition, max(kafka_offset) AS offset
FROM {} WHERE subject_key = %s GROUP BY topic, kafka_partition ORDER BY topic, kafka_partition
"""


async def read_to(conn: Connection, dataset: str, subject_key: str) -> list[Row]:
    """The offset of the subject's last record version of `dataset` loaded, per topic and partition
    (topic, partition, offset): replayed up to there, the subject's records read as they do now."""
    return await fetch_all(
        conn, sql.SQL(_READ_TO).format(sql.Identifier(f"{TABLES[dataset]}_records")), (subject_key,)
    )


_LOADED_TO = """
SELECT topic, kafka_partition AS partition, next_offset FROM consumer_offsets
WHERE consumer_group = %s AND topic = ANY(%s) ORDER BY topic, kafka_partition
"""


async def loaded_to(conn: Connection, group: str, topics: Sequence[str]) -> list[Row]:
    """How far the sink's `group` has loaded each partition of `topics` (topic, partition, next_offset):
    every record before those offsets is in the tables, and none after (its offsets commit with the
    rows, so one snapshot sees both alike)."""
    return await fetch_all(conn, _LOADED_TO, (group, list(topics)))


# Highest version per record, revocations included: the same order as the views and the profile fold.
_LATEST = """
SELECT DISTINCT ON (source_record_id) source_record_id, source_version, op, event_id
FROM {}
WHERE subject_key = %s AND source_record_id = ANY(%s)
ORDER BY source_record_id, source_version DESC, (op = 'revoke') DESC, kafka_partition, kafka_offset
"""


async def latest_versions(
    conn: Connection, dataset: str, subject_key: str, record_ids: Sequence[str]
) -> dict[str, Row]:
    """Source record id -> its highest version now (source_version, op, event_id)."""
    if not record_ids:
        return {}
    query = sql.SQL(_LATEST).format(sql.Identifier(f"{TABLES[dataset]}_records"))
    rows = await fetch_all(conn, query, (subject_key, list(record_ids)))
    return {row["source_record_id"]: row for row in rows}
