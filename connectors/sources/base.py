"""The source side of a connector: reads a department's export file as a stream of `SourceRecord`s."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from connectors.records import Rejection, SourceRecord
from connectors.sources.lines import Line, last_line_end


@dataclass(frozen=True)
class Scan:
    """A file's records found but not yet parsed: `raws` in file order, `parse` to make one a record.

    Finding where records are is cheap and parsing them is not, so a preparing process can count the
    records of chunks another process prepares and parse only its own.
    """

    raws: Iterator[Line]
    parse: Callable[[Line], SourceRecord]


class Source(ABC):
    """A reader of one kind of export file; stateless, so one instance serves every file and every run."""

    def read(
        self, path: Path, start_offset: int = 0, stop_offset: int | None = None
    ) -> Iterator[SourceRecord]:
        """Yield the records of `path` from `start_offset` (0, or the `end` of a record read before).

        Called by the connector once per file and run. A record that cannot be parsed is yielded with its
        `problem` set, never skipped. Raises `SourceFileError` when the file cannot be opened,
        `HeaderError` when its header is wrong (the whole file is refused), and `ResumeError` when
        `start_offset` is not where a record starts. With `stop_offset`, no record starting at or after
        it is read (one starting before it is read whole).
        """
        scan = self.scan(path, start_offset, stop_offset)
        parse = scan.parse
        for raw in scan.raws:
            yield parse(raw)

    @abstractmethod
    def scan(self, path: Path, start_offset: int = 0, stop_offset: int | None = None) -> Scan:
        """The records `read` yields, unparsed; raises what `read` raises before its first record."""

    def whole_records_end(self, path: Path, offset: int, size: int) -> int:
        """Where the last record wholly written between `offset` (a record's start) and `size` ends, or
        `offset`: how far a file still being written can be read. A record is a line here."""
        return last_line_end(path, offset, size)


def position(line: int, start: int) -> str:
    """Where a record is, for people: the line it starts on and its first byte."""
    return f"line {line} (byte {start})"


def rejected(line: int, start: int, end: int, original: bytes, problem: Rejection) -> SourceRecord:
    """A record that a source could not parse."""
    return SourceRecord(position(line, start), start, end, original, None, problem)
