"""RFC 4180 records from physical lines: where a record ends, and its fields.

Records are found on bytes, before decoding: in UTF-8 and in GB18030 the bytes of `"`, `,` and the
line break never occur inside a multi-byte character, so splitting first and decoding each record
afterwards is exact, and a record that does not decode can be rejected on its own.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from connectors.sources.lines import Line

_QUOTE = ord('"')


def split_records(lines: Iterable[Line], limit: int) -> Iterator[Line]:
    """Join physical lines into records: a line break inside a quoted field does not end a record.

    Only a quote that begins a field opens a quoted field (RFC 4180); one inside an unquoted field, as in
    `大道230"号`, is a character of that field, so that record ends at its line break and is judged on
    its own, not joined with the records after it. A record is cut after `limit` bytes — a quote left
    open by mistake must not swallow the rest of a multi-gigabyte file — and then fails to parse on its
    own.
    """
    pending: list[Line] = []
    size = 0
    quoted = False
    for line in lines:
        if quoted or _QUOTE in line.data:
            quoted = _open_at_end(line.data, quoted)
        if not pending and not quoted:
            yield line  # the common case: a whole record on one line
            continue
        pending.append(line)
        size += len(line.data)
        if not quoted or line.truncated or size >= limit:
            yield _joined(pending)
            pending, size, quoted = [], 0, False
    if pending:
        yield _joined(pending)


def whole_records_end(lines: Iterable[Line], start: int, size: int, limit: int) -> int:
    """Where the last record among `lines` (from byte `start`, where one begins) that ends by byte
    `size` ends, or `start`: a record ends at a line break outside a quoted field, or where
    `split_records` cuts one (`limit`). A line break inside a quoted field ends no record, so a record
    still being written is not taken for a whole one."""
    end, pending, quoted = start, 0, False
    for line in lines:
        if line.end > size:
            break
        if quoted or _QUOTE in line.data:
            quoted = _open_at_end(line.data, quoted)
        pending += len(line.data)
        # An over-long line is whole once something follows it (its line break was passed unseen).
        whole_line = line.data.endswith(b"\n") or (line.truncated and line.end < size)
        if whole_line and (not quoted or line.truncated or pending >= limit):
            end, pending, quoted = line.end, 0, False
    return end


def _open_at_end(data: bytes, quoted: bool) -> bool:
    """Whether a quoted field is open at the end of `data`, one line of a record, which begins inside a
    quoted field when `quoted`. Jumps from quote to comma with `find`: no loop over characters."""
    at = 0
    while True:
        if quoted:
            closing = data.find(b'"', at)
            if closing < 0:
                return True
            if data[closing + 1 : closing + 2] == b'"':  # a doubled quote: one quote character
                at = closing + 2
                continue
            quoted = False
            at = closing + 1
        elif data[at : at + 1] == b'"':  # `at` begins a field: this quote opens it
            quoted = True
            at += 1
            continue
        comma = data.find(b",", at)  # the next field begins after it
        if comma < 0:
            return False
        at = comma + 1


def _joined(lines: list[Line]) -> Line:
    """One record from the lines it spans (truncated, by its length, when any of them was)."""
    return Line(lines[0].number, lines[0].start, lines[-1].end, b"".join(line.data for line in lines))


def parse_fields(text: str) -> list[str]:
    """The fields of a record's text, line ending or not; raise `csv.Error` unless it is one record."""
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    if '"' not in text and "\r" not in text:
        # No quoting, so the csv module would split exactly here; this is the hot path.
        return text.split(",")
    rows = list(csv.reader((text,), strict=True))
    if len(rows) != 1:
        raise csv.Error("a line break outside a quoted field splits the record")
    return rows[0]
