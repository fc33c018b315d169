"""The source side of a connector: reads a department's export file as a stream of `SourceRecord`s."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from connectors.records import Rejection, SourceRecord


class Source(ABC):
    """A reader of one kind of export file; stateless, so one instance serves every file and every run."""

    @abstractmethod
    def read(self, path: Path, start_offset: int = 0) -> Iterator[SourceRecord]:
        """Yield the records of `path` from `start_offset` (0, or the `end` of a record read before).

        Called by the connector once per file and run. A record that cannot be parsed is yielded with its
        `problem` set, never skipped. Raises `SourceFileError` when the file cannot be opened,
        `HeaderError` when its header is wrong (the whole file is refused), and `ResumeError` when
        `start_offset` is not where a record starts.
        """


def position(line: int, start: int) -> str:
    """Where a record is, for people: the line it starts on and its first byte."""
    return f"line {line} (byte {start})"


def rejected(line: int, start: int, end: int, original: bytes, problem: Rejection) -> SourceRecord:
    """A record that a source could not parse."""
    return SourceRecord(position(line, start), start, end, original, None, problem)
