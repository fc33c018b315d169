"""The preparing half of a file connector: read, convert, validate and encode an export in chunks.

Each `PreparedChunk` holds the ready messages of up to `chunk_records` native records (canonical
records and dead letters, in file order), the byte offset just past them — the position to store
once the broker acknowledged all of them — and what they count for the connector's summary. The
sending half (`connectors.files`) sends each chunk, waits for the acknowledgements, then stores
its position; this half runs in a process of its own (`connectors.worker`).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.mappings import MAPPINGS, SOURCES
from connectors.messages import MessageEncoder, Outbox, RawMessage, SourceOf
from connectors.moves import MOVABLE
from connectors.runner import ChunkPublisher, Summary, publish_source_record


@dataclass(frozen=True)
class PreparedChunk:
    """A chunk ready to send: its messages, where the file is read up to, and its counts.

    Its messages cross to the sending process as plain (topic, partition, key, value) tuples: a
    `Message` costs about four times as much to pickle and unpickle, in both processes.
    """

    end: int
    messages: Sequence[RawMessage]
    summary: Summary
    sources: Sequence[SourceOf] = ()  # of the canonical messages, for connectors.moves

    def __reduce__(self) -> tuple[Any, ...]:
        return (PreparedChunk, (self.end, list(map(tuple, self.messages)), self.summary, self.sources))


def prepare_file(
    department: str,
    path: Path,
    offset: int,
    chunk_records: int,
    encoder: MessageEncoder,
    stop: int | None = None,
    share: tuple[int, int] = (0, 1),
) -> Generator[PreparedChunk, None, None]:
    """The chunks of `path` from `offset` to its current end (or `stop`); the last one may be empty.

    With `share` (k, n), only chunks k, k + n, k + 2n… are prepared and yielded: n processes given
    the same arguments but k = 0…n-1 prepare, between them, exactly the chunks one process prepares
    alone, each with the same records and end. Every one of them still finds every record (cheap), so
    all agree where the chunks end; only its own are parsed, converted and encoded (dear). When `stop`
    is given they also agree where the file ends, even if it grows meanwhile.
    """
    mine, every = share
    scan = SOURCES[department].scan(path, offset, stop)
    parse = scan.parse
    outbox = Outbox(encoder, track_sources=MAPPINGS[department].dataset in MOVABLE)
    chunk = ChunkPublisher(MAPPINGS[department], outbox, path.name, Summary(), origin=str(path.resolve()))
    pending = 0
    index = 0
    own = mine == 0
    for raw in scan.raws:
        if own:
            publish_source_record(chunk, parse(raw))
            offset = raw.end
        pending += 1
        if pending >= chunk_records:
            offset = raw.end
            if own:
                yield _ready(offset, outbox, chunk.summary)
            pending = 0
            index += 1
            own = index % every == mine
            if own:
                chunk.summary = Summary()
                chunk.new_chunk()
    if own:
        yield _ready(offset, outbox, chunk.summary)


def _ready(end: int, outbox: Outbox, summary: Summary) -> PreparedChunk:
    messages, sources = outbox.take()
    return PreparedChunk(end, messages, summary, sources)
