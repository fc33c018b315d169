"""JSON Lines exports (人社): one JSON object per line, UTF-8; empty lines are skipped."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from connectors.records import Rejection, SourceRecord
from connectors.sources.base import Scan, Source, position, rejected
from connectors.sources.lines import (
    DEFAULT_MAX_RECORD_BYTES,
    Line,
    open_binary,
    read_lines,
    resume_line_number,
)

_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false"}


class JsonlSource(Source):
    """One JSON object per line; its keys and values are yielded as they are, for the mapping to check."""

    def __init__(self, *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        self.max_record_bytes = max_record_bytes

    def scan(self, path: Path, start_offset: int = 0, stop_offset: int | None = None) -> Scan:
        """One record per non-empty line from `start_offset`."""
        file = open_binary(path)
        try:
            number = resume_line_number(file, start_offset)
        except BaseException:
            file.close()
            raise
        return Scan(self._raws(file, start_offset, number, stop_offset), self._record)

    def _raws(self, file: BinaryIO, offset: int, number: int, stop: int | None) -> Iterator[Line]:
        with file:
            for line in read_lines(file, offset, number, self.max_record_bytes):
                if stop is not None and line.start >= stop:
                    return
                if line.data.strip():
                    yield line

    def _record(self, line: Line) -> SourceRecord:
        if line.truncated:
            problem = Rejection(
                "record_too_large", None, f"the line is longer than {self.max_record_bytes} bytes"
            )
            return rejected(line.number, line.start, line.end, line.data, problem)
        try:
            fields = parse_object(line.data)
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start : exc.end].hex(" ")
            message = (
                f"the line is not valid UTF-8: byte(s) {bad} at byte {line.start + exc.start} do not decode"
            )
            return rejected(
                line.number, line.start, line.end, line.data, Rejection("bad_encoding", None, message)
            )
        except ValueError as exc:  # json.JSONDecodeError is one
            problem = Rejection("unparseable", None, f"the line is not a JSON object: {exc}")
            return rejected(line.number, line.start, line.end, line.data, problem)
        return SourceRecord(position(line.number, line.start), line.start, line.end, line.data, fields, None)


def parse_object(data: bytes) -> dict[str, Any]:
    """The JSON object on one line of UTF-8; raise `ValueError` for anything else.

    Decoded explicitly because `json.loads` would also guess UTF-16 and UTF-32 from bytes; repeated keys
    and NaN or Infinity are refused because the format has no meaning for them. So are an escape that
    stands for half a character (`\\ud800` alone: `json` takes it, but no text can be encoded with it)
    and nesting deeper than the parser goes: both would otherwise fail later, the connector with them.
    """
    text = data.decode("utf-8")
    try:
        value = json.loads(text, object_pairs_hook=_object_without_repeats, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError(f"it is {_TYPES.get(type(value), 'null')}")
    if _SURROGATE_ESCAPE.search(text) is not None:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                "a \\u escape in it stands for half of a character (a lone surrogate), which no text holds"
            ) from None
    return value


# A \uD800–\uDFFF escape: half of a surrogate pair, or a lone one (which `json.loads` lets through).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        repeated = sorted(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
        raise ValueError(f"key {', '.join(repeated)} appears more than once")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
