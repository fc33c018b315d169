"""The file connectors (identity CSV, tax CSV, social JSON Lines): resumable by byte offset."""

from __future__ import annotations

import threading
from pathlib import Path

from connectors.exceptions import ResumeError
from connectors.mappings import MAPPINGS, SOURCES
from connectors.positions import PositionStore
from connectors.publisher import Publisher
from connectors.runner import ChunkPublisher, ProgressCallback, Summary, publish_source_record, stopped


def run_file(
    department: str,
    path: Path,
    *,
    publisher: Publisher,
    positions: PositionStore,
    chunk_records: int,
    follow: bool = False,
    follow_interval: float = 1.0,
    stop: threading.Event | None = None,
    progress: ProgressCallback | None = None,
) -> Summary:
    """Publish `path` from the saved position to its end (and, with `follow`, as it grows)."""
    source_key = str(path.resolve())
    saved = positions.load(department, source_key)
    offset = int(saved.get("offset", 0))
    if path.stat().st_size < offset:
        raise ResumeError(
            f"{path} is shorter ({path.stat().st_size} bytes) than the saved position {offset}: "
            "the export was replaced or cut; remove the position to read it from the start"
        )
    summary = Summary()
    chunk = ChunkPublisher(MAPPINGS[department], publisher, path.name, summary)
    while True:
        offset = _publish_from(
            department, path, offset, chunk, positions, source_key, chunk_records, stop, progress
        )
        if not follow or stopped(stop):
            return summary
        if stop is not None:
            stop.wait(follow_interval)


def _publish_from(
    department: str,
    path: Path,
    offset: int,
    chunk: ChunkPublisher,
    positions: PositionStore,
    source_key: str,
    chunk_records: int,
    stop: threading.Event | None,
    progress: ProgressCallback | None,
) -> int:
    """Publish from `offset` to the end of the file; return the new offset."""
    pending = 0
    for record in SOURCES[department].read(path, offset):
        publish_source_record(chunk, record)
        offset = record.end
        pending += 1
        if pending >= chunk_records:
            _commit(chunk, positions, department, source_key, offset, progress)
            pending = 0
            if stopped(stop):
                return offset
    _commit(chunk, positions, department, source_key, offset, progress)
    return offset


def _commit(
    chunk: ChunkPublisher,
    positions: PositionStore,
    department: str,
    source_key: str,
    offset: int,
    progress: ProgressCallback | None,
) -> None:
    chunk.flush()
    positions.save(department, source_key, {"offset": offset})
    if progress is not None:
        progress(chunk.summary)
