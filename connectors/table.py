"""The property connector: polls the registry's table `bdc_djb` on its change time `gxsj`.

The position is a keyset watermark — the (gxsj, bdcqzh) of the last row published — plus the owners
last published per title, so that an owner dropped by a later version of a title is revoked. A row
that changes after it was read gets a later `gxsj` and is picked up by the next poll.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import psycopg
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Loader
from psycopg.rows import dict_row
from psycopg.types.datetime import TimestampLoader

from connectors.exceptions import ConnectorError, RecordRejected
from connectors.mappings import MAPPINGS
from connectors.mappings.property import PropertyMapping
from connectors.positions import PositionStore
from connectors.publisher import Publisher
from connectors.runner import ChunkPublisher, ProgressCallback, Summary, stopped
from connectors.sending import account, flush

# The registry's own column names, as the property mapping declares them.
COLUMNS = PropertyMapping.columns
# The watermark's time travels as PostgreSQL's own text for it, so that every value the column can
# hold, 'infinity' and dates BC included, is a watermark PostgreSQL reads back.
_POLL = (
    f"SELECT {', '.join(COLUMNS)} FROM bdc_djb "
    "WHERE gxsj > %(gxsj)s::timestamp OR (gxsj = %(gxsj)s::timestamp AND bdcqzh > %(bdcqzh)s) "
    "ORDER BY gxsj, bdcqzh LIMIT %(limit)s"
)
_BEGINNING = "-infinity"


class _TimestampOrText(Loader):
    """A `timestamp` as a `datetime`, or as PostgreSQL's text where Python has none ('infinity', a date
    BC or after 9999): the mapping then rejects that row (bad_time), rather than the whole poll failing
    at it, every time, with the rows after it unread."""

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        self._timestamp = TimestampLoader(oid, context)

    def load(self, data: Buffer) -> dt.datetime | str:
        try:
            return self._timestamp.load(data)
        except psycopg.DataError:
            return bytes(data).decode()


def run_table(
    dsn: str,
    *,
    publisher: Publisher,
    positions: PositionStore,
    chunk_records: int,
    follow: bool = False,
    follow_interval: float = 1.0,
    stop: threading.Event | None = None,
    progress: ProgressCallback | None = None,
) -> Summary:
    """Publish the rows changed since the saved watermark (and, with `follow`, keep polling)."""
    mapping = MAPPINGS["property"]
    assert isinstance(mapping, PropertyMapping)
    source = "bdc_djb"
    summary = Summary()
    chunk = ChunkPublisher(mapping, publisher, source, Summary())
    try:
        with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
            conn.adapters.register_loader("timestamp", _TimestampOrText)
            while True:
                state = positions.load("property", source)
                rows = conn.execute(_POLL, _watermark(state, chunk_records)).fetchall()
                if rows:
                    chunk.new_chunk()  # stamped when read, not when the poll before it ended
                    chunk.summary = Summary()
                    _publish_rows(rows, mapping, chunk, state)
                    flush(mapping, publisher)
                    positions.save("property", source, state)
                    summary.add(chunk.summary)
                    account(mapping, chunk.summary)
                    if progress is not None:
                        progress(summary)
                if len(rows) < chunk_records and (not follow or stopped(stop)):
                    return summary
                if stopped(stop):
                    return summary
                if len(rows) < chunk_records and stop is not None:
                    stop.wait(follow_interval)
    except psycopg.Error as exc:
        raise ConnectorError(f"cannot poll the registry's table bdc_djb: {exc}") from exc


def _watermark(state: dict[str, Any], limit: int) -> dict[str, Any]:
    return {"gxsj": state.get("gxsj", _BEGINNING), "bdcqzh": state.get("bdcqzh", ""), "limit": limit}


def _publish_rows(
    rows: list[dict[str, Any]], mapping: PropertyMapping, chunk: ChunkPublisher, state: dict[str, Any]
) -> None:
    owners: dict[str, list[str]] = state.setdefault("owners", {})
    for row in rows:
        position = f"bdcqzh={row['bdcqzh']} bbh={row['bbh']}"
        original = json.dumps(row, default=str, ensure_ascii=False).encode()
        converted = chunk.convert(row, position, original)
        if converted:
            previous = owners.get(str(row["bdcqzh"]), [])
            try:
                dropped = mapping.revoke_dropped_owners(
                    row, previous, published_at=chunk.published_at, trace_id=chunk.trace_id
                )
            except RecordRejected as rejected:  # cannot happen after convert succeeded; never drop silently
                chunk.reject(position, rejected.rejection, original)
                continue
            chunk.publish([*converted, *dropped])
            owners[str(row["bdcqzh"])] = [record.subject_id for record in converted]
        gxsj = row["gxsj"]
        state["gxsj"] = gxsj.isoformat() if isinstance(gxsj, dt.datetime) else str(gxsj)
        state["bdcqzh"] = row["bdcqzh"]
