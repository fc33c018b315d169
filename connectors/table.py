"""The property connector: polls the registry's table `bdc_djb` on its change time `gxsj`.

The position is a keyset watermark — the (gxsj, bdcqzh) of the last row published — plus the owners
last published per title, so that an owner dropped by a later version of a title is revoked. A row
that changes after it was read gets a later `gxsj` and is picked up by the next poll. A row whose
`gxsj` the watermark must not reach (none, not of our era, or past the registry's clock) is
dead-lettered once, and read when corrected.
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
from connectors.records import Rejection
from connectors.runner import ChunkPublisher, ProgressCallback, Summary, stopped
from connectors.sending import account, flush

# The registry's own column names, as the property mapping declares them.
COLUMNS = PropertyMapping.columns
# A change time the watermark may reach: one of our era, and not later than a day past the registry's
# own clock. Past a row with another time (none, 'infinity', a date BC, a mistyped year such as 2206),
# the watermark could never again be passed by a real change: such a row is dead-lettered once
# (`_UNUSABLE`), and read as any changed row once corrected.
_USABLE = "gxsj >= '0001-01-01' AND gxsj <= (now() AT TIME ZONE 'Asia/Shanghai') + interval '1 day'"
# The watermark's time travels as PostgreSQL's own text for it (the default, '-infinity', included).
_POLL = (
    f"SELECT {', '.join(COLUMNS)} FROM bdc_djb WHERE {_USABLE} "
    "AND (gxsj > %(gxsj)s::timestamp OR (gxsj = %(gxsj)s::timestamp AND bdcqzh > %(bdcqzh)s)) "
    "ORDER BY gxsj, bdcqzh LIMIT %(limit)s"
)
_UNUSABLE = (
    f"SELECT {', '.join(COLUMNS)} FROM bdc_djb WHERE gxsj IS NULL OR NOT ({_USABLE}) "
    "ORDER BY bdcqzh, bbh LIMIT %(limit)s"
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
                unusable = _unusable(conn.execute(_UNUSABLE, {"limit": _UNUSABLE_ROWS}).fetchall(), state)
                rows = conn.execute(_POLL, _watermark(state, chunk_records)).fetchall()
                if rows or unusable:
                    chunk.new_chunk()  # stamped when read, not when the poll before it ended
                    chunk.summary = Summary()
                    _reject_unusable(unusable, chunk)
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


# The most rows with an unusable change time kept track of (each dead-lettered once).
_UNUSABLE_ROWS = 10_000


def _unusable(rows: list[dict[str, Any]], state: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows with an unusable change time not dead-lettered yet; `state` keeps those of `rows` (a
    row corrected since drops out, and a row changed back to an unusable time is dead-lettered again)."""
    seen = set(state.get("unusable", []))
    keys = [f"{row['bdcqzh']}|{row['bbh']}|{row['gxsj']}" for row in rows]
    state["unusable"] = keys
    return [row for row, key in zip(rows, keys, strict=True) if key not in seen]


def _reject_unusable(rows: list[dict[str, Any]], chunk: ChunkPublisher) -> None:
    for row in rows:
        position = f"bdcqzh={row['bdcqzh']} bbh={row['bbh']}"
        chunk.summary.read += 1
        message = (
            f"gxsj {row['gxsj']} is not a time of change the watermark can pass (none, not of our era, "
            "or later than the registry's clock): correct it and the row is read again"
        )
        original = json.dumps(row, default=str, ensure_ascii=False).encode()
        chunk.reject(position, Rejection("bad_time", "gxsj", message), original)


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
