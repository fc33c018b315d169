"""电子监察: the tamper-evident audit log of every access and decision, as a SHA-256 hash chain.

Each row carries the hash of the previous row (`prev_hash`) and its own `hash`: SHA-256 of the
canonical JSON of all its other columns (sorted keys, no spaces, UTF-8, the instant in UTC with
microseconds). Altering a row changes its hash; inserting or deleting one breaks the next row's link
or the gapless `seq`; dropping rows from the end is caught by the chain head, which the append
updates in the same transaction. This module is the pure part: building chained rows and
verifying a sequence of them. Storage and publication live at the edges (exchange.api.storage).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64

# The hashed columns, in the table's order; `hash` is computed over these.
HASHED: tuple[str, ...] = (
    "seq",
    "event_id",
    "at",
    "caller",
    "purpose",
    "subject_key",
    "action",
    "outcome",
    "reason",
    "request",
    "response",
    "policy_version",
    "prev_hash",
)
Row = Mapping[str, Any]


def storable(text: str) -> str:
    """`text` as PostgreSQL can keep it: text and jsonb hold neither NUL nor lone surrogates, so
    whatever a caller sent is kept with those characters replaced rather than the entry failing."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(key)): _scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def plain_json(value: Any) -> Any:
    """`value` as it reads back from a jsonb column: JSON types only, tuples as lists, storable text."""
    try:
        return _plain(value, 0)
    except _NotPlain:
        return _scrub(json.loads(json.dumps(value, ensure_ascii=False, default=str)))


class _NotPlain(Exception):
    """A value the direct copy does not take (another type, a non-text key, too deep): use the round trip."""


_MAX_DEPTH = 64
_SCALARS = (int, float, bool, type(None))
# A verification's request names its reference date and instant: the exact types, as `str` writes them.
_INSTANTS = (dt.date, dt.datetime)


def _plain(value: Any, depth: int) -> Any:
    # What the JSON round trip returns, built directly for JSON's own types (the exact types only:
    # a subclass such as an enum is whatever its JSON encoding makes it, so it takes the round trip).
    kind = type(value)
    if kind is str:
        return _storable_fast(value)
    if kind in _SCALARS:
        return value
    if kind in _INSTANTS:
        return _storable_fast(str(value))  # as the round trip's `default=str` writes it
    if depth >= _MAX_DEPTH:
        raise _NotPlain
    if kind is dict:
        copied = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            copied[_storable_fast(key)] = _plain(item, depth + 1)
        return copied
    if kind is list or kind is tuple:
        return [_plain(item, depth + 1) for item in value]
    raise _NotPlain


def _storable_fast(text: str) -> str:
    # `storable` without the copies for text that has neither NUL nor a lone surrogate (almost all).
    if text.isascii():
        return text if "\x00" not in text else text.replace("\x00", "\ufffd")
    return storable(text)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One access or decision: who, for what purpose, about whom (subject key only), what, which result."""

    caller: str
    action: str
    outcome: str  # allowed, refused or failed
    policy_version: str
    purpose: str | None = None
    subject_key: str | None = None
    reason: str | None = None
    request: Mapping[str, Any] = field(default_factory=dict)
    response: Mapping[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def _instant(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return str(value)


def canonical(row: Row) -> bytes:
    """The canonical JSON of a row's hashed columns: the bytes its hash is taken over."""
    document = {name: row[name] for name in HASHED}
    document["at"] = _instant(document["at"])
    document["event_id"] = str(document["event_id"])
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_hash(row: Row) -> str:
    """SHA-256 (hex) of a row's canonical JSON."""
    return hashlib.sha256(canonical(row)).hexdigest()


def chained(entry: AuditEntry, seq: int, prev_hash: str) -> dict[str, Any]:
    """The row of `entry` appended after a row with sequence `seq - 1` and hash `prev_hash`."""
    row: dict[str, Any] = {
        "seq": seq,
        "event_id": entry.event_id,
        "at": entry.at,
        "caller": entry.caller,
        "purpose": None if entry.purpose is None else storable(entry.purpose),
        "subject_key": entry.subject_key,
        "action": entry.action,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "request": plain_json(entry.request),
        "response": plain_json(entry.response),
        "policy_version": entry.policy_version,
        "prev_hash": prev_hash,
    }
    row["hash"] = row_hash(row)
    return row


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first row where the chain does not hold: its sequence number and what is wrong."""

    seq: int
    kind: str  # altered, broken_link, sequence_gap, truncated
    message: str


class ChainVerifier:
    """Checks rows one at a time, in seq order, so a long log is verified without holding it in memory."""

    def __init__(self) -> None:
        self.rows = 0
        self._expected_seq = 1
        self._prev = GENESIS
        self.problem: ChainProblem | None = None

    def feed(self, row: Row) -> ChainProblem | None:
        """Check the next row; the first problem found (then and after), or None."""
        if self.problem is None:
            self.problem = self._check(row)
            self.rows += 1
        return self.problem

    def _check(self, row: Row) -> ChainProblem | None:
        seq = int(row["seq"])
        if seq != self._expected_seq:
            return ChainProblem(
                seq,
                "sequence_gap",
                f"row {seq} follows row {self._expected_seq - 1}: rows were deleted or inserted",
            )
        if row["prev_hash"] != self._prev:
            return ChainProblem(
                seq,
                "broken_link",
                f"row {seq} does not link to the row before it: a row was removed or inserted",
            )
        if row_hash(row) != row["hash"]:
            return ChainProblem(
                seq, "altered", f"row {seq} was altered: its content no longer matches its hash"
            )
        self._expected_seq, self._prev = seq + 1, str(row["hash"])
        return None

    def finish(self, head: tuple[int, str] | None) -> ChainProblem | None:
        """The first problem, including rows missing at the end against the chain head (last seq, hash)."""
        if self.problem is not None:
            return self.problem
        last_seq, last_hash = head if head is not None else (0, GENESIS)
        if (self._expected_seq - 1, self._prev) != (last_seq, last_hash):
            return ChainProblem(
                self._expected_seq,
                "truncated",
                f"the chain head records row {last_seq} but the log ends at row {self._expected_seq - 1}: "
                "rows at the end were removed or the head was altered",
            )
        return None


def verify(rows: Iterable[Row], head: tuple[int, str] | None) -> ChainProblem | None:
    """The first problem in `rows` (in seq order) against the chain head, or None when the chain holds."""
    verifier = ChainVerifier()
    for row in rows:
        if verifier.feed(row) is not None:
            break
    return verifier.finish(head)
