"""Profile versions into `profiles` (the highest version per subject) and `profile_history` (every version).

A batch's profile rows are first COPYed into a temporary staging table, then moved by three
statements, the last of the batch's transaction. A version is dated by the sink when it is about to
commit (`clock_timestamp()` once the batch's other rows are written: its `valid_from`, and
`updated_at` in `profiles`): from about then on the exchange answers with it, so an as-of query for
an instant answers as a query made at that instant did (exchange.api.evaluation labels a current
answer to match). Dated from when the processor emitted it, a version the sink wrote minutes later (a
lag, a restart) was, for those minutes, one the API had not answered with, yet as-of queries for them
gave it; dated from the start of the sink's transaction, it was so for the second or so a batch takes
to write. What is left is the time these statements and the commit take: a query made then answers
with the version before, and an as-of query for that instant, later, with this one. History rows are
chained: a version's valid_to is the valid_from of the subject's next higher version, so exactly one
version is valid at any instant from the first one on. Only the rows next to the new ones are touched, found
through the primary key, so the cost does not grow with a subject's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from consumers.sink.database import Connection
from consumers.sink.profiles import PROFILE_COLUMNS
from consumers.sink.tables import Row

STAGING = "sink_profile_batch"

# Per connection; emptied by every commit.
CREATE_STAGING = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} (
    subject_key     text        NOT NULL,
    version         bigint      NOT NULL,
    profile         jsonb       NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL
) ON COMMIT DELETE ROWS
"""

_COPY = sql.SQL("COPY {} ({}) FROM STDIN").format(
    sql.Identifier(STAGING), sql.SQL(", ").join(map(sql.Identifier, PROFILE_COLUMNS))
)

# A re-sent version keeps the row first written.
# A version sent twice (a processor's replay re-emits what it had stored) keeps its first copy, the
# lowest offset, also when both copies are in one batch: which one a live sink and a rebuild keep must
# not depend on how the records fell into batches.
_HISTORY = f"""
INSERT INTO profile_history (subject_key, version, profile, valid_from, topic, kafka_partition, kafka_offset)
SELECT DISTINCT ON (subject_key, version)
       subject_key, version, profile, %(dated)s, topic, kafka_partition, kafka_offset
FROM {STAGING}
ORDER BY subject_key, version, kafka_partition, kafka_offset
ON CONFLICT (subject_key, version) DO NOTHING
"""

# The rows whose successor may have changed: the new ones, and the version just below each of them.
_CHAIN = f"""
WITH touched AS (
    SELECT subject_key, version FROM {STAGING}
    UNION
    SELECT below.subject_key, below.version
    FROM {STAGING} AS new
    CROSS JOIN LATERAL (
        SELECT h.subject_key, h.version FROM profile_history AS h
        WHERE h.subject_key = new.subject_key AND h.version < new.version
        ORDER BY h.version DESC LIMIT 1
    ) AS below
), chained AS (
    SELECT t.subject_key, t.version, (
        SELECT n.valid_from FROM profile_history AS n
        WHERE n.subject_key = t.subject_key AND n.version > t.version
        ORDER BY n.version LIMIT 1
    ) AS valid_to
    FROM touched AS t
)
UPDATE profile_history AS h SET valid_to = chained.valid_to
FROM chained
WHERE h.subject_key = chained.subject_key AND h.version = chained.version
  AND h.valid_to IS DISTINCT FROM chained.valid_to
"""

# DISTINCT ON: one command may not update a row twice, and only the batch's highest version matters.
_CURRENT = f"""
INSERT INTO profiles (subject_key, version, profile, updated_at, topic, kafka_partition, kafka_offset)
SELECT DISTINCT ON (subject_key)
       subject_key, version, profile, %(dated)s, topic, kafka_partition, kafka_offset
FROM {STAGING}
ORDER BY subject_key, version DESC, kafka_offset
ON CONFLICT (subject_key) DO UPDATE
SET version = excluded.version, profile = excluded.profile, updated_at = excluded.updated_at,
    topic = excluded.topic, kafka_partition = excluded.kafka_partition,
    kafka_offset = excluded.kafka_offset, sunk_at = now()
WHERE excluded.version > profiles.version
"""


def write_profiles(cursor: psycopg.Cursor[Any], rows: Sequence[Row]) -> None:
    """Stage `rows` (`PROFILE_COLUMNS` order) and fold them into both profile tables, dated now: the last
    writes of a transaction (see the module)."""
    with cursor.copy(_COPY) as copy:
        for row in rows:
            copy.write_row(row)
    dated = cursor.execute("SELECT clock_timestamp()").fetchone()
    assert dated is not None  # a SELECT without FROM returns its row
    cursor.execute(_HISTORY, {"dated": dated[0]})
    cursor.execute(_CHAIN)
    cursor.execute(_CURRENT, {"dated": dated[0]})


# The compression method of profile_history.profile (migration 0004): 'l' lz4, 'p' pglz, '' the default.
_HISTORY_COMPRESSION = """
SELECT attcompression FROM pg_attribute WHERE attrelid = 'profile_history'::regclass AND attname = 'profile'
"""


def create_staging(conn: Connection) -> None:
    """Create this connection's staging table (once per connection), its documents compressed as
    profile_history's are: each is compressed once, here, and moved into both tables as it is."""
    conn.execute(CREATE_STAGING)
    row = conn.execute(_HISTORY_COMPRESSION).fetchone()
    if row is not None and row[0] == "l":
        conn.execute(f"ALTER TABLE {STAGING} ALTER COLUMN profile SET COMPRESSION lz4")
