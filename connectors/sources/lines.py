"""Physical lines of an export file with their byte offsets and line numbers, read in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from connectors.exceptions import ResumeError, SourceFileError

# Larger than any sane record, small enough that a file with no line breaks cannot exhaust memory, and
# well under Kafka's 1 MiB message: the record, or its dead letter carrying it, must be sendable. At
# 1 MiB a rejected record's dead letter was over it, the send failed, and every restart failed on it.
DEFAULT_MAX_RECORD_BYTES = 256 << 10
_COUNT_CHUNK = 1 << 20


class Line(NamedTuple):
    """One physical line: its 1-based number, its byte span, and its bytes including the line ending."""

    number: int
    start: int
    end: int
    data: bytes  # only the first bytes of a line longer than the limit

    @property
    def truncated(self) -> bool:
        """Whether the line was longer than the limit, so `data` is not all of it."""
        return len(self.data) < self.end - self.start


def open_binary(path: Path) -> BinaryIO:
    """Open an export for reading bytes; raise `SourceFileError` naming the file when it cannot be."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise SourceFileError(f"cannot open export {path}: {exc.strerror or exc}") from exc


def read_lines(file: BinaryIO, start: int, number: int, limit: int) -> Iterator[Line]:
    """The lines from byte `start`, which is the start of line `number`; each keeps at most `limit` bytes."""
    file.seek(start)
    readline = file.readline
    while data := readline(limit):
        end = start + len(data)
        if len(data) == limit and not data.endswith(b"\n"):
            end += _skip_rest_of_line(file, limit)
        yield Line(number, start, end, data)
        number += 1
        start = end


def _skip_rest_of_line(file: BinaryIO, limit: int) -> int:
    """Read past the rest of an over-long line in bounded pieces; return how many bytes were skipped."""
    skipped = 0
    while rest := file.readline(limit):
        skipped += len(rest)
        if rest.endswith(b"\n"):
            break
    return skipped


def resume_line_number(file: BinaryIO, offset: int) -> int:
    """The number of the line starting at `offset`, after checking that a line does start there.

    Counting line breaks up to the offset keeps positions — and so the ids of dead-letter records —
    the same whether a file is read from its start or resumed.

    An offset may also be the end of a last line read without its line break (a run to the end of a
    file that did not end in one): then nothing follows it yet, or its line break does, which reads as
    a blank line of that line's number. Refused there, every later run of that file failed.
    """
    size = file.seek(0, 2)
    if offset > size:
        raise ResumeError(
            f"resume offset {offset} is past the end of the file ({size} bytes): was it replaced?"
        )
    if offset > 0:
        file.seek(offset - 1)
        before, after = file.read(1), file.read(2)
        ended = after == b"" or after == b"\r\n" or after.startswith(b"\n")  # nothing, or its line break
        if before != b"\n" and not ended:
            raise ResumeError(
                f"resume offset {offset} is not the start of a line, nor the end of the last one read: "
                "was the file replaced, or its last line written on after it was read?"
            )
    file.seek(0)
    breaks, remaining = 0, offset
    while remaining > 0:
        chunk = file.read(min(_COUNT_CHUNK, remaining))
        breaks += chunk.count(b"\n")
        remaining -= len(chunk)
    return breaks + 1


def last_line_end(path: Path, offset: int, size: int) -> int:
    """The end of the last whole line (through its line break) between `offset` and `size`, or `offset`."""
    with open_binary(path) as file:
        end = size
        while end > offset:
            start = max(offset, end - _TAIL_BYTES)
            file.seek(start)
            found = file.read(end - start).rfind(b"\n")
            if found >= 0:
                return start + found + 1
            end = start
    return offset


_TAIL_BYTES = 64 * 1024
