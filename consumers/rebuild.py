"""`exchange rebuild`: the views again from the topics — the log is the system of record.

Empties the record tables, profiles and profile history and the sink's stored offsets in one
transaction, then runs the sink until it has read every partition to its end. Run it with the live
sink stopped (it would otherwise keep writing into the tables being rebuilt).
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

VIEW_TABLES = (*(table.name for table in RECORD_TABLES), "profiles", "profile_history")


def rebuild(settings: ExchangeSettings) -> SinkSummary:
    """Empty the views and re-sink every topic from its first offset."""
    database.migrate(settings.postgres)
    try:
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, VIEW_TABLES))))
            group = sink_group(settings.kafka)
            conn.execute("DELETE FROM consumer_offsets WHERE consumer_group = %s", (group,))
    except psycopg.Error as exc:
        raise StorageError(f"cannot empty the views for a rebuild: {exc}") from exc
    return Sink(settings).run(until_idle=True)
