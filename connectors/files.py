"""The file connectors (identity CSV, tax CSV, social JSON Lines): resumable by byte offset.

Two halves: preparing processes read, convert, validate and encode the export a chunk ahead
(`connectors.preparing`), and this process sends each chunk, waits until the broker acknowledged
all of it, and only then stores the position just past it.

Preparing costs more than sending, so a large export is prepared by `PREPARING_WORKERS` processes
taking the chunks in turn (chunk i by process i mod n), which this process takes back in turn: the
chunks, and so every record, dead letter, event id and stored position, are exactly the ones a
single process prepares. Each pass reads the file up to the size it had when the pass began, so the
processes agree on where it ends even while it grows; following, the next pass reads what it grew by.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import BinaryIO

from connectors.exceptions import ConnectorError, ResumeError
from connectors.mappings import MAPPINGS, SOURCES
from connectors.moves import MOVABLE
from connectors.positions import PositionStore
from connectors.preparing import PreparedChunk, prepare_file
from connectors.publisher import Publisher
from connectors.runner import ProgressCallback, Summary, stopped
from connectors.sending import account, flush
from connectors.sent import Moving
from connectors.sources.lines import open_binary
from connectors.worker import in_worker

# Below this many bytes left to read, preparing in a worker process (about a second to start) is not
# worth it.
WORKER_MIN_BYTES = 4 << 20
# Preparing processes of a large export. Preparing a record costs about twice what sending it does,
# so one process leaves the sender waiting; with two, the sender and the preparing share both cores.
PREPARING_WORKERS = 2

Chunks = Generator[PreparedChunk, None, None]


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
    workers: int = PREPARING_WORKERS,
) -> Summary:
    """Publish `path` from the saved position to its end (and, with `follow`, as it grows).

    Following, each pass reads up to the end of the last whole record (a last line without a line
    break is read by a run that does not follow), and a file replaced or cut meanwhile stops the run
    with `ResumeError`.

    When at least `worker_min_bytes` are left to read, records are prepared in a process of their
    own; a smaller rest — a small export, or what a followed file grew by — is prepared in this one
    (the same steps on one core), where starting an interpreter would cost more than it saves.
    `workers` processes share a large export.
    """
    # The export as opened now: the positions' digests are of its bytes, and a file put in its place
    # meanwhile stops the run rather than have a position of the one read stored for it.
    source_key = str(path.resolve())
    with open_binary(path) as held, positions.held(department, source_key):
        source = SOURCES[department]
        saved = positions.load(department, source_key)
        offset = int(saved.get("offset", 0))
        followed = _identity(os.fstat(held.fileno()))
        if path.stat().st_size < offset:
            raise ResumeError(
                f"{path} is shorter ({path.stat().st_size} bytes) than the saved position {offset}: "
                "the export was replaced or cut; remove the position to read it from the start"
            )
        if "before" in saved and saved["before"] != _before(held, offset):
            raise ResumeError(
                f"{path} does not hold, before the saved position {offset}, the bytes read up to it: the "
                "export was replaced by another; remove the position to read the new one from the start"
            )
        summary = Summary()
        first = True
        read_before = _before(held, offset)  # as checked above, or the start
        while True:
            status = path.stat()
            if _identity(status) != followed or status.st_size < offset:
                raise ResumeError(
                    f"{path} was replaced or cut while being followed (now {status.st_size} bytes, read up "
                    f"to byte {offset}): its records after that byte are not this export's; remove the "
                    "position to read the new file from its start"
                )
            # Rewritten in place (`cp new.csv identity.csv` keeps the file, and a corrected re-export of
            # the same length keeps every offset): read on from the old position, its head went unread.
            # As on a restart, the 4 KiB before the position are compared (`_before`): a rewrite that
            # keeps those bytes, all of them before it, is not seen.
            if _before(held, offset) != read_before:
                raise ResumeError(
                    f"{path} was rewritten while being followed: the bytes just before byte {offset}, read "
                    "up to there, are no longer the ones read; remove the position to read the new export "
                    "from its start"
                )
            # Following, a record still being written waits for its end: read now, it would be cut.
            size = source.whole_records_end(path, offset, status.st_size) if follow else status.st_size
            # Following, a file that did not grow is not read again (nor a preparing process started).
            if size > offset or (first and not follow):
                chunks = _prepared(
                    department, path, offset, size, chunk_records, publisher, worker_min_bytes, workers
                )
                offset = _send(
                    department,
                    path,
                    held,
                    chunks,
                    offset,
                    publisher,
                    positions,
                    source_key,
                    summary,
                    stop,
                    progress,
                )
                read_before = _before(held, offset)
                first = False
            if not follow or stopped(stop):
                return summary
            if stop is not None:
                stop.wait(follow_interval)


# How much of what comes before a position its digest covers (`_before`).
_BEFORE_BYTES = 4096


def _before(file: BinaryIO, offset: int) -> str:
    """A digest of the bytes of `file` just before `offset`, stored with the position: an export
    replaced by another one at least as long is told apart from the one read, rather than read from the
    middle. (`pread`: the file's own position is left alone.)"""
    start = max(0, offset - _BEFORE_BYTES)
    return hashlib.sha256(os.pread(file.fileno(), offset - start, start)).hexdigest()


def _identity(status: os.stat_result) -> tuple[int, int]:
    """The file a path names (device, inode): another one after a rotation or a replacement."""
    return status.st_dev, status.st_ino


def _prepared(
    department: str,
    path: Path,
    offset: int,
    size: int,
    chunk_records: int,
    publisher: Publisher,
    worker_min_bytes: int,
    workers: int,
) -> Chunks:
    """The chunks of `path` from `offset` up to `size`: prepared here, in a process, or in several."""
    arguments = (department, path, offset, chunk_records, publisher.encoder, size)
    if size - offset < worker_min_bytes:
        return prepare_file(*arguments)
    name = f"{department} connector's preparing"
    if workers <= 1:
        return in_worker(prepare_file, *arguments, name=name)
    return _in_turn(
        [
            in_worker(prepare_file, *arguments, (k, workers), name=f"{name} process {k + 1} of {workers}")
            for k in range(workers)
        ]
    )


def _in_turn(workers: Sequence[Chunks]) -> Chunks:
    """Chunk 0 from the first worker, 1 from the second… in turn, until the one whose turn it is ends.

    The others must end there too; a worker that fails or dies fails this (`in_worker`), and closing
    this closes (ends) them all.
    """
    try:
        for turn in itertools.count():
            chunk = next(workers[turn % len(workers)], None)
            if chunk is None:
                break
            yield chunk
        for worker in workers:
            if next(worker, None) is not None:
                raise ConnectorError("the preparing processes disagree on where the export's chunks end")
    finally:
        for worker in workers:
            worker.close()


def _send(
    department: str,
    path: Path,
    held: BinaryIO,
    chunks: Chunks,
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
    moving = Moving(mapping, publisher.encoder, positions.folder) if mapping.dataset in MOVABLE else None
    try:
        for chunk in chunks:
            publisher.send_all(chunk.messages)
            if moving is not None:
                moving.revoke(chunk, publisher)
            flush(mapping, publisher)
            if moving is not None:
                moving.acknowledged()  # what was sent, saved before the position
            if _identity(path.stat()) != _identity(os.fstat(held.fileno())):
                raise ResumeError(
                    f"{path} was replaced while being read (read up to byte {chunk.end}): its position is "
                    "not stored, and the file now there is refused from it; remove the position to read it "
                    "from its start"
                )
            positions.save(department, source_key, {"offset": chunk.end, "before": _before(held, chunk.end)})
            offset = summary.position = chunk.end
            summary.add(chunk.summary)
            account(mapping, chunk.summary)
            if progress is not None:
                progress(summary)
            if stopped(stop):
                break
    finally:
        chunks.close()
        if moving is not None:
            moving.close()
    return offset
