"""`exchange rebuild`: the views again from the topics — the log is the system of record.

Empties the record tables, `profiles` and the sink's stored offsets in one transaction, then runs the
sink until it has read every partition to its end. Run it with the live sink stopped (it would
otherwise keep writing into the tables being rebuilt).

`profile_history` is kept, and the topic's versions are added to it: the profile topic is compacted,
so once the log cleaner has run it holds only each subject's latest profile, and the history is the one
full record of what the exchange knew at each instant (as-of queries read it). Emptied, it came back
with one version per subject. A version already in it keeps its row, as the live sink keeps the first
copy of a version it meets. `profiles` is then set from each subject's highest version in the
history, which is the row the live sink keeps too: the copy compaction leaves (the last one a
processor's replay sent) may differ from the first in its instant and offset.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from consumers.sink import Sink, SinkSummary
from consumers.sink.consumer import sink_group
from consumers.sink.tables import RECORD_TABLES
from exchange import database
from exchange.exceptions import StorageError
from exchange.settings import ExchangeSettings

REBUILT_TABLES = (*(table.name for table in RECORD_TABLES), "profiles")
VIEW_TABLES = (*REBUILT_TABLES, "profile_history")

_PROFILES_FROM_HISTORY = """
INSERT INTO profiles (subject_key, version, profile, updated_at, topic, kafka_partition, kafka_offset)
SELECT DISTINCT ON (subject_key)
       subject_key, version, profile, valid_from, topic, kafka_partition, kafka_offset
FROM profile_history
ORDER BY subject_key, version DESC
ON CONFLICT (subject_key) DO UPDATE
SET version = excluded.version, profile = excluded.profile, updated_at = excluded.updated_at,
    topic = excluded.topic, kafka_partition = excluded.kafka_partition,
    kafka_offset = excluded.kafka_offset, sunk_at = now()
WHERE (profiles.version, profiles.updated_at, profiles.kafka_partition, profiles.kafka_offset)
      IS DISTINCT FROM
      (excluded.version, excluded.updated_at, excluded.kafka_partition, excluded.kafka_offset)
"""


def rebuild(settings: ExchangeSettings) -> SinkSummary:
    """Empty the views the topics hold in full, re-sink every topic from its first offset, and set each
    subject's current profile from its history (see the module)."""
    database.migrate(settings.postgres)
    try:
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            tables = sql.SQL(", ").join(map(sql.Identifier, REBUILT_TABLES))
            conn.execute(sql.SQL("TRUNCATE {}").format(tables))
            group = sink_group(settings.kafka)
            conn.execute("DELETE FROM consumer_offsets WHERE consumer_group = %s", (group,))
    except psycopg.Error as exc:
        raise StorageError(f"cannot empty the views for a rebuild: {exc}") from exc
    summary = Sink(settings).run(until_idle=True)
    try:
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            conn.execute(_PROFILES_FROM_HISTORY)
    except psycopg.Error as exc:
        raise StorageError(f"cannot set the current profiles from their history: {exc}") from exc
    return summary
