"""The file connectors (identity CSV, tax CSV, social JSON Lines): resumable by byte offset.

Two halves: a preparing process reads, converts, validates and encodes the export a chunk ahead
(`connectors.preparing`), and this process sends each chunk, waits until the broker acknowledged
all of it, and only then stores the position just past it.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from pathlib import Path

from connectors.exceptions import ResumeError
from connectors.mappings import MAPPINGS
from connectors.positions import PositionStore
from connectors.preparing import PreparedChunk, prepare_file
from connectors.publisher import Publisher
from connectors.runner import ProgressCallback, Summary, account, flush, stopped
from connectors.worker import in_worker

# Below this many bytes left to read, preparing in a worker process (about a second to start) is not
# worth it.
WORKER_MIN_BYTES = 4 << 20


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
    worker_min_bytes: int = WORKER_MIN_BYTES,
) -> Summary:
    """Publish `path` from the saved position to its end (and, with `follow`, as it grows).

    When at least `worker_min_bytes` are left to read, records are prepared in a process of their
    own; a smaller rest — a small export, or what a followed file grew by — is prepared in this one
    (the same steps on one core), where starting an interpreter would cost more than it saves.
    """
    source_key = str(path.resolve())
    saved = positions.load(department, source_key)
    offset = int(saved.get("offset", 0))
    if path.stat().st_size < offset:
        raise ResumeError(
            f"{path} is shorter ({path.stat().st_size} bytes) than the saved position {offset}: "
            "the export was replaced or cut; remove the position to read it from the start"
        )
    summary = Summary()
    first = True
    while True:
        # Following, a file that did not grow is not read again (nor a preparing process started).
        if first or path.stat().st_size > offset:
            arguments = (department, path, offset, chunk_records, publisher.encoder)
            chunks: Generator[PreparedChunk, None, None] = (
                in_worker(prepare_file, *arguments, name=f"{department} connector's preparing")
                if path.stat().st_size - offset >= worker_min_bytes
                else prepare_file(*arguments)
            )
            offset = _send(
                department, chunks, offset, publisher, positions, source_key, summary, stop, progress
            )
            first = False
        if not follow or stopped(stop):
            return summary
        if stop is not None:
            stop.wait(follow_interval)


def _send(
    department: str,
    chunks: Generator[PreparedChunk, None, None],
    offset: int,
    publisher: Publisher,
    positions: PositionStore,
    source_key: str,
    summary: Summary,
    stop: threading.Event | None,
    progress: ProgressCallback | None,
) -> int:
    """Send every prepared chunk, storing the position after each; return the last position."""
    mapping = MAPPINGS[department]
    try:
        for chunk in chunks:
            publisher.send_all(chunk.messages)
            flush(mapping, publisher)
            positions.save(department, source_key, {"offset": chunk.end})
            offset = summary.position = chunk.end
            summary.add(chunk.summary)
            account(mapping, chunk.summary)
            if progress is not None:
                progress(summary)
            if stopped(stop):
                break
    finally:
        chunks.close()
    return offset
