"""The property connector: polls the registry's table `bdc_djb` on its change time `gxsj`.

The position is a keyset watermark — the (gxsj, bdcqzh) of the last row published — plus the owners
last published per title, so that an owner dropped by a later version of a title is revoked. The
owners a poll is about to publish are saved, with the watermark before it, before it sends anything:
a crash after its sends and before its position was saved left the owners of the poll before, so an
owner it had published and a later version then dropped was never revoked, and kept the title. A row
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
from connectors.mappings.times import SHANGHAI
from connectors.positions import PositionStore
from connectors.publisher import Publisher
from connectors.records import Converted, Rejection
from connectors.runner import ChunkPublisher, ProgressCallback, Summary, stopped
from connectors.sending import account, flush

# The registry's own column names, as the property mapping declares them.
COLUMNS = PropertyMapping.columns
# The registry's clock, in the departments' local time as gxsj is written.
_NOW = "(now() AT TIME ZONE 'Asia/Shanghai')"
# A change time the watermark may reach: one of our era, and not after the registry's clock (a change
# stamped a little ahead of it is read once its time has come). Past a row with another time (none,
# 'infinity', a date BC, a mistyped year such as 2206), the watermark could never again be passed by a
# real change: a row with no time of our era, or a time more than a day ahead, is dead-lettered once
# (`_UNUSABLE`), and read again once corrected (`_CORRECTED`), whatever the watermark.
#
# And a change is read only once it is `settle_seconds` old on the registry's clock: the registry stamps
# gxsj when its transaction starts (now()) and the row is seen once that commits, so a poll in between
# could pass its time, by another row committed sooner, and the row was never read. Waiting covers
# every registry transaction shorter than that.
_USABLE = f"gxsj >= '0001-01-01' AND gxsj <= {_NOW} - make_interval(secs => %(settle)s)"
# The watermark's time travels as PostgreSQL's own text for it (the default, '-infinity', included).
_AFTER = "(gxsj > %(gxsj)s::timestamp OR (gxsj = %(gxsj)s::timestamp AND bdcqzh > %(bdcqzh)s))"
_POLL = (
    f"SELECT {', '.join(COLUMNS)} FROM bdc_djb WHERE {_USABLE} AND {_AFTER} "
    "ORDER BY gxsj, bdcqzh LIMIT %(limit)s"
)
_UNUSABLE = (
    f"SELECT {', '.join(COLUMNS)} FROM bdc_djb "
    f"WHERE gxsj IS NULL OR gxsj < '0001-01-01' OR gxsj > {_NOW} + interval '1 day' "
    "ORDER BY bdcqzh, bbh LIMIT %(limit)s"
)
# Rows dead-lettered for their time and since corrected to one the watermark has passed already (a
# corrected time after it is the poll's to read).
_CORRECTED = (
    f"SELECT {', '.join(COLUMNS)} FROM bdc_djb WHERE bdcqzh = ANY(%(corrected)s) AND {_USABLE} "
    f"AND NOT {_AFTER} ORDER BY gxsj, bdcqzh"
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
    settle_seconds: float = 5.0,
    stop: threading.Event | None = None,
    progress: ProgressCallback | None = None,
) -> Summary:
    """Publish the rows changed since the saved watermark, at least `settle_seconds` before the registry's
    clock (and, with `follow`, keep polling)."""
    mapping = MAPPINGS["property"]
    assert isinstance(mapping, PropertyMapping)
    source = "bdc_djb"
    summary = Summary()
    chunk = ChunkPublisher(mapping, publisher, source, Summary())
    try:
        with (
            positions.held("property", source),
            psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn,
        ):
            conn.adapters.register_loader("timestamp", _TimestampOrText)
            while True:
                state = positions.load("property", source)
                before = {**state, "owners": dict(state.get("owners", {}))}  # as saved, before this poll
                watermark = _watermark(state, chunk_records, settle_seconds)
                odd = conn.execute(_UNUSABLE, {"limit": _UNUSABLE_ROWS}).fetchall()
                unusable, corrected = _unusable(odd, state)
                again = (
                    conn.execute(_CORRECTED, {**watermark, "corrected": corrected}).fetchall()
                    if corrected
                    else []
                )
                rows = conn.execute(_POLL, watermark).fetchall()
                if rows or unusable or again:
                    chunk.new_chunk()  # stamped when read, not when the poll before it ended
                    chunk.summary = Summary()
                    _reject_unusable(unusable, chunk)
                    outgoing = _converted_rows(again, mapping, chunk, state, advance=False)
                    outgoing += _converted_rows(rows, mapping, chunk, state)
                    positions.save("property", source, _owners_ahead(before, state))
                    for records in outgoing:
                        chunk.publish(records)
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


def _unusable(rows: list[dict[str, Any]], state: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Of the rows with an unusable change time, those not dead-lettered yet; and the titles of those
    dead-lettered before that no longer have one (corrected). `state` keeps the rows' keys, so a row
    changed back to an unusable time is dead-lettered again."""
    seen = set(state.get("unusable", []))
    keys = [f"{row['bdcqzh']}|{row['bbh']}|{row['gxsj']}" for row in rows]
    state["unusable"] = keys
    still = {str(row["bdcqzh"]) for row in rows}
    corrected = sorted({key.split("|", 1)[0] for key in seen} - still)
    return [row for row, key in zip(rows, keys, strict=True) if key not in seen], corrected


def _reject_unusable(rows: list[dict[str, Any]], chunk: ChunkPublisher) -> None:
    for row in rows:
        position = f"bdcqzh={row['bdcqzh']} bbh={row['bbh']}"
        chunk.summary.read += 1
        message = (
            f"gxsj {row['gxsj']} is not a time of change the watermark can pass (none, not of our era, "
            "or more than a day after the registry's clock): correct it and the row is read again"
        )
        original = json.dumps(row, default=str, ensure_ascii=False).encode()
        chunk.reject(position, Rejection("bad_time", "gxsj", message), original)


def _watermark(state: dict[str, Any], limit: int, settle_seconds: float) -> dict[str, Any]:
    """The poll's parameters: the stored watermark, the rows' limit and the settle time. A watermark an
    earlier version stored past any real change ('infinity', a mistyped year) is dropped: the titles are
    read again from the start (the same events, sent again) rather than never."""
    gxsj, bdcqzh = state.get("gxsj", _BEGINNING), state.get("bdcqzh", "")
    if gxsj != _BEGINNING and not _passable(gxsj):
        gxsj, bdcqzh = _BEGINNING, ""
    return {"gxsj": gxsj, "bdcqzh": bdcqzh, "limit": limit, "settle": settle_seconds}


def _passable(gxsj: str) -> bool:
    """Whether a stored watermark is a time of our era no more than a day ahead of this host's clock."""
    try:
        stored = dt.datetime.fromisoformat(gxsj)
    except ValueError:
        return False
    local_now = dt.datetime.now(SHANGHAI).replace(tzinfo=None)
    return stored.tzinfo is None and stored <= local_now + dt.timedelta(days=1)


def _owners_ahead(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The position `before` a poll, each title's owners joined with those `after` it: saved before the
    poll sends, it names every owner the poll may have published should it not get to save `after`."""
    owners: dict[str, list[str]] = dict(before.get("owners", {}))
    for title, published in after.get("owners", {}).items():
        owners[title] = list(dict.fromkeys([*owners.get(title, []), *published]))
    return {**before, "owners": owners}


def _converted_rows(
    rows: list[dict[str, Any]],
    mapping: PropertyMapping,
    chunk: ChunkPublisher,
    state: dict[str, Any],
    *,
    advance: bool = True,
) -> list[list[Converted]]:
    """The records to publish for `rows` (the titles' owners, and revokes of the owners they dropped),
    each title's owners remembered in `state`; `advance`: the watermark moves to each row."""
    outgoing: list[list[Converted]] = []
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
            outgoing.append([*converted, *dropped])
            owners[str(row["bdcqzh"])] = [record.subject_id for record in converted]
        if advance:  # a usable time (`_USABLE`): one Python holds
            state["gxsj"] = row["gxsj"].isoformat()
            state["bdcqzh"] = row["bdcqzh"]
    return outgoing
