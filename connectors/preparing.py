"""The preparing half of a file connector: read, convert, validate and encode an export in chunks.

Each `PreparedChunk` holds the ready messages of up to `chunk_records` native records (canonical
records and dead letters, in file order), the byte offset just past them — the position to store
once the broker acknowledged all of them — and what they count for the connector's summary. The
sending half (`connectors.files`) sends each chunk, waits for the acknowledgements, then stores
its position; this half runs in a process of its own (`connectors.worker`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from connectors.mappings import MAPPINGS, SOURCES
from connectors.messages import Message, MessageEncoder, Outbox
from connectors.runner import ChunkPublisher, Summary, publish_source_record


@dataclass(frozen=True)
class PreparedChunk:
    """A chunk ready to send: its messages, where the file is read up to, and its counts."""

    end: int
    messages: list[Message]
    summary: Summary


def prepare_file(
    department: str, path: Path, offset: int, chunk_records: int, encoder: MessageEncoder
) -> Generator[PreparedChunk, None, None]:
    """The chunks of `path` from `offset` to its current end; the last one may be empty."""
    outbox = Outbox(encoder)
    chunk = ChunkPublisher(MAPPINGS[department], outbox, path.name, Summary())
    pending = 0
    for record in SOURCES[department].read(path, offset):
        publish_source_record(chunk, record)
        offset = record.end
        pending += 1
        if pending >= chunk_records:
            yield PreparedChunk(offset, outbox.take(), chunk.summary)
            chunk.summary = Summary()
            chunk.new_chunk()
            pending = 0
    yield PreparedChunk(offset, outbox.take(), chunk.summary)
