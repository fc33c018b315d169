"""CSV exports with a header row, in one encoding: 公安 (UTF-8 with a byte-order mark) and 税务 (GB18030)."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from connectors.exceptions import HeaderError, ResumeError
from connectors.records import Rejection, SourceRecord
from connectors.sources.base import Scan, Source, position, rejected
from connectors.sources.csvrecords import parse_fields, split_records, whole_records_end
from connectors.sources.lines import (
    DEFAULT_MAX_RECORD_BYTES,
    Line,
    open_binary,
    read_lines,
    resume_line_number,
)

_BLANK = (b"\n", b"\r\n")


class CsvSource(Source):
    """RFC 4180 CSV whose header must be exactly `columns`; fields are yielded as native name → text."""

    def __init__(
        self,
        columns: Sequence[str],
        *,
        encoding: str,
        bom: bool = False,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        self.columns = tuple(columns)
        self.encoding = codecs.lookup(encoding).name
        # Whether the format requires a UTF-8 byte-order mark; a file without one has every record rejected.
        self.bom = bom
        self.max_record_bytes = max_record_bytes

    def scan(self, path: Path, start_offset: int = 0, stop_offset: int | None = None) -> Scan:
        """The records after the header from `start_offset`; the header is checked on every read."""
        file = open_binary(path)
        try:
            header_end, has_bom = self._check_header(file)
            if 0 < start_offset < header_end:
                raise ResumeError(f"resume offset {start_offset} of {path} is inside the header")
            offset = max(start_offset, header_end)
            number = resume_line_number(file, offset)
        except BaseException:
            file.close()
            raise
        missing_bom = self.bom and not has_bom

        def parse(raw: Line) -> SourceRecord:
            return self._record(raw, missing_bom)

        return Scan(self._raws(file, offset, number, stop_offset), parse)

    def whole_records_end(self, path: Path, offset: int, size: int) -> int:
        """As `Source.whole_records_end`, where a quoted field can hold a line break (RFC 4180)."""
        with open_binary(path) as file:
            lines = read_lines(file, offset, 1, self.max_record_bytes)
            return whole_records_end(lines, offset, size, self.max_record_bytes)

    def _raws(self, file: BinaryIO, offset: int, number: int, stop: int | None) -> Iterator[Line]:
        with file:
            lines = read_lines(file, offset, number, self.max_record_bytes)
            for raw in split_records(lines, self.max_record_bytes):
                if stop is not None and raw.start >= stop:
                    return
                if raw.data not in _BLANK:
                    yield raw

    def _record(self, raw: Line, missing_bom: bool) -> SourceRecord:
        number, start, end, data = raw
        if missing_bom or raw.truncated:
            return rejected(number, start, end, data, self._unparsed(missing_bom))
        try:
            values = parse_fields(data.decode(self.encoding))
        except UnicodeDecodeError as exc:
            message = f"the record is not {_undecodable(exc, start, self.encoding)}"
            return rejected(number, start, end, data, Rejection("bad_encoding", None, message))
        except csv.Error as exc:
            message = f"the record is not valid RFC 4180 CSV: {exc}"
            return rejected(number, start, end, data, Rejection("bad_quoting", None, message))
        if len(values) != len(self.columns):
            message = f"the record has {len(values)} fields, the header {len(self.columns)}"
            return rejected(number, start, end, data, Rejection("column_count", None, message))
        fields = dict(zip(self.columns, values, strict=False))  # lengths checked; strict costs a µs
        return SourceRecord(position(number, start), start, end, data, fields, None)

    def _unparsed(self, missing_bom: bool) -> Rejection:
        """Why a record was not even parsed: the file has no byte-order mark, or the record is too long."""
        if missing_bom:
            message = "the file does not start with the UTF-8 byte-order mark the format requires"
            return Rejection("missing_bom", None, message)
        message = f"the record is longer than {self.max_record_bytes} bytes"
        return Rejection("record_too_large", None, message)

    def _check_header(self, file: BinaryIO) -> tuple[int, bool]:
        """Check the header row; return where it ends and whether the file starts with a byte-order mark."""
        header = next(
            split_records(read_lines(file, 0, 1, self.max_record_bytes), self.max_record_bytes), None
        )
        if header is None:
            raise HeaderError("the file is empty: a header row is required")
        data = header.data
        has_bom = data.startswith(codecs.BOM_UTF8)
        skipped = len(codecs.BOM_UTF8) if self.bom and has_bom else 0
        try:
            found = parse_fields(data[skipped:].decode(self.encoding))
        except UnicodeDecodeError as exc:
            raise HeaderError(f"the header row is not {_undecodable(exc, skipped, self.encoding)}") from exc
        except csv.Error as exc:
            raise HeaderError(f"the header row is not valid CSV: {exc}") from exc
        check_columns(found, self.columns)
        return header.end, has_bom


def check_columns(found: Sequence[str], expected: Sequence[str]) -> None:
    """Raise `HeaderError` saying exactly how a header differs from the expected columns."""
    if list(found) == list(expected):
        return
    missing = [name for name in expected if name not in found]
    unexpected = [repr(name) for name in found if name not in expected]
    repeated = sorted({name for name in found if found.count(name) > 1})
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected " + ", ".join(unexpected))
    if repeated:
        problems.append("repeated " + ", ".join(repeated))
    reason = "; ".join(problems) or "the columns are in a different order"
    raise HeaderError(f"the header is not the expected columns ({reason}); expected: {','.join(expected)}")


def _undecodable(exc: UnicodeDecodeError, offset: int, encoding: str) -> str:
    bad = exc.object[exc.start : exc.end]
    return f"valid {encoding}: byte(s) {bad.hex(' ')} at byte {offset + exc.start} do not decode"
