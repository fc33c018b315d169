"""What a file connector sent each subject, per source record id (`connectors.moves.Sent`), kept in
SQLite beside the positions: one file per department, shared by all its exports, so that a correction in
a later export finds what an earlier one sent.

Saved only after the broker acknowledged the chunk it covers (and before the chunk's position): a
connector killed before the save sends the chunk's records and revokes again, with the same event ids.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from collections.abc import Mapping as Map
from pathlib import Path
from typing import TYPE_CHECKING

from connectors.exceptions import ConnectorError
from connectors.mappings import Mapping
from connectors.messages import MessageEncoder
from connectors.moves import Sent, revoke_record, revokes
from connectors.records import Converted
from exchange.serialization import AvroCodec

if TYPE_CHECKING:
    from connectors.preparing import PreparedChunk
    from connectors.publisher import Publisher

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    source_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (source_id, subject)
) WITHOUT ROWID
"""
_UPSERT = """
INSERT INTO sent (source_id, subject, version) VALUES (?, ?, ?)
ON CONFLICT (source_id, subject) DO UPDATE SET version = max(version, excluded.version)
"""
# How long a connector waits for another connector of its department to finish its chunk.
_WAIT_SECONDS = 600.0
# Source ids looked up per statement: well under SQLite's limit on a statement's parameters.
_LOOKUP_BATCH = 900


class SentStore:
    """The `Sent` of every source record id a department's file connector sent."""

    def __init__(self, folder: Path, department: str, wait_seconds: float = _WAIT_SECONDS) -> None:
        self.path = folder / f"{department}-sent.sqlite3"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # Another connector of the department holds the store while a chunk of its is in flight.
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=wait_seconds)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConnectorError(f"cannot open {self.path}: {exc}; remove it to start over") from exc

    def begin(self) -> None:
        """Hold the store until `save` (or `rollback`): a second connector of the department waits, so
        that it never works out its revokes from what the first is about to change."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise ConnectorError(f"cannot lock {self.path}: {exc}") from exc

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.rollback()

    def load(self, source_ids: Iterable[str]) -> dict[str, Sent]:
        """What was sent for each of `source_ids` (an id never sent: no entry)."""
        ids = list(dict.fromkeys(source_ids))
        found: dict[str, Sent] = {}
        for start in range(0, len(ids), _LOOKUP_BATCH):
            batch = ids[start : start + _LOOKUP_BATCH]
            marks = ",".join("?" * len(batch))
            query = f"SELECT source_id, subject, version FROM sent WHERE source_id IN ({marks})"
            for source_id, subject, version in self._db.execute(query, batch):
                found.setdefault(source_id, {})[subject] = version
        return found

    def save(self, sent: Map[str, Sent]) -> None:
        """Record `sent` (a version never goes down), durably, and release the store (`begin`)."""
        rows = [
            (source_id, subject, version) for source_id, by in sent.items() for subject, version in by.items()
        ]
        try:
            if not self._db.in_transaction:
                self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(_UPSERT, rows)
            self._db.commit()
        except sqlite3.Error as exc:
            self.rollback()
            raise ConnectorError(f"cannot save to {self.path}: {exc}") from exc

    def close(self) -> None:
        self.rollback()
        self._db.close()


class Moving:
    """The sending side of `connectors.moves` for one department's file connector: the revokes a
    prepared chunk's records call for, and what was sent, kept in the department's `SentStore`."""

    def __init__(self, mapping: Mapping, encoder: MessageEncoder, folder: Path) -> None:
        self.mapping = mapping
        self.encoder = encoder
        self.store = SentStore(folder, mapping.department)
        self._codec = AvroCodec()
        self._sent: dict[str, Sent] = {}  # of the chunk in flight

    def revoke(self, chunk: PreparedChunk, publisher: Publisher) -> None:
        """Queue the revokes `chunk` calls for, after its own messages; `acknowledged` once the broker
        acknowledged them all."""
        self.store.begin()  # held until `acknowledged`: across the chunk's flush
        sent = self.store.load(source for _, source, _, _ in chunk.sources)
        queued = []
        for index, source, version, subject in chunk.sources:
            known = sent.get(source)
            if known is None:  # the common case: an id never sent, nothing to revoke
                sent[source] = {subject: version}
                continue
            for other, at in revokes(known, subject, version):
                # The record as encoded (rare: decoding it here costs less than carrying every record).
                _, record = self._codec.decode(chunk.messages[index][3])
                revoke = revoke_record(Converted(subject, record), other, at)
                queued.append(self.encoder.record(self.mapping.topic, self.mapping.dataset, revoke))
        publisher.send_all(queued)
        chunk.summary.published += len(queued)
        self._sent = sent

    def acknowledged(self) -> None:
        """Save what the chunk sent (before its position: a crash in between sends it again, the same)."""
        self.store.save(self._sent)
        self._sent = {}

    def close(self) -> None:
        self.store.close()
