"""The values that pass between a connector's stages: source → converter → validator → publisher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record cannot be accepted: a stable reason code, the native field at fault, a clerk's message."""

    reason: str
    field: str | None
    message: str


# SourceRecord and Converted are built once per record on the hot path, where a frozen dataclass costs
# three times as much to construct; treat them as immutable all the same.
@dataclass(slots=True)
class SourceRecord:
    """One record as a source read it, with the exact bytes and where they are, so a reader can resume.

    `fields` is set when the record parsed (native field name → value), `problem` when it did not;
    exactly one of the two is set. `end` is where the next record starts: reading again from `end`
    yields exactly the records after this one.
    """

    position: str  # for people, e.g. "line 12 (byte 3456)"
    start: int  # byte offset of the record's first byte in the file
    end: int  # byte offset just past the record, its line ending included
    original: bytes
    fields: dict[str, Any] | None
    problem: Rejection | None


@dataclass(slots=True)
class Converted:
    """A canonical record, keyed by the subject it concerns, ready to encode with its dataset's schema."""

    subject_id: str  # the normalised citizen ID the record is keyed by
    record: dict[str, Any]
