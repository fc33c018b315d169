"""电子监察: the tamper-evident audit log of every access and decision, as a SHA-256 hash chain.

Each row carries the hash of the previous row (`prev_hash`) and its own `hash`: SHA-256 of the
canonical JSON of all its other columns (sorted keys, no spaces, UTF-8, the instant in UTC with
microseconds). Altering a row changes its hash; inserting or deleting one breaks the next row's link
or the gapless `seq`; dropping rows from the end is caught by the chain head, which the append
updates in the same transaction.

The hash is unkeyed, so whoever can write the database can rewrite rows, hashes and head together
and the chain still holds in itself. The relay's copy on exchange.audit.v1 (kept forever) is the
anchor outside it: verification also holds the chain to every (seq, hash) published there
(`PublishedChain`), and to the relay's position. This module is the pure part: building chained rows
and verifying a sequence of them. Storage and publication live at the edges (exchange.api.storage,
exchange.api.relay).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

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
    return _plain_json(value)[0]


def _plain_json(value: Any) -> tuple[Any, bool]:
    """`plain_json(value)`, and whether it holds neither a float nor an integer beyond 64 bits (then
    orjson writes it exactly as `json.dumps` does: see `_encoded`)."""
    exact = [True]
    try:
        return _plain(value, 0, exact), exact[0]
    except _NotPlain:
        return _scrub(json.loads(json.dumps(value, ensure_ascii=False, default=str))), False


class _NotPlain(Exception):
    """A value the direct copy does not take (another type, a non-text key, too deep): use the round trip."""


_MAX_DEPTH = 64
_SCALARS = (int, float, bool, type(None))
_INT64 = (-(2**63), 2**63 - 1)
# A verification's request names its reference date and instant: the exact types, as `str` writes them.
_INSTANTS = (dt.date, dt.datetime)


def _plain(value: Any, depth: int, exact: list[bool]) -> Any:
    # What the JSON round trip returns, built directly for JSON's own types (the exact types only:
    # a subclass such as an enum is whatever its JSON encoding makes it, so it takes the round trip).
    # `exact[0]` is cleared at a float or an integer orjson does not write as `json.dumps` does.
    kind = type(value)
    if kind is str:
        return _storable_fast(value)
    if kind in _SCALARS:
        if (kind is float) or (kind is int and not _INT64[0] <= value <= _INT64[1]):
            exact[0] = False
        return value
    if kind in _INSTANTS:
        return _storable_fast(str(value))  # as the round trip's `default=str` writes it
    if depth >= _MAX_DEPTH:
        raise _NotPlain
    # Text and the constants in a container are copied in place rather than by a call each (most of
    # an entry's leaves); `_storable_fast` inlined.
    if kind is dict:
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            if not key.isascii() or "\x00" in key:
                key = _storable_fast(key)
            if type(item) is str:
                copied[key] = item if item.isascii() and "\x00" not in item else _storable_fast(item)
            elif item is None or item is True or item is False:
                copied[key] = item
            else:
                copied[key] = _plain(item, depth + 1, exact)
        return copied
    if kind is list or kind is tuple:
        return [_plain(item, depth + 1, exact) for item in value]
    raise _NotPlain


def _storable_fast(text: str) -> str:
    # `storable` without the copies for text that has neither NUL nor a lone surrogate (almost all).
    if text.isascii():
        return text if "\x00" not in text else text.replace("\x00", "\ufffd")
    return storable(text)


def new_event_id() -> str:
    """A random (version 4) UUID as text, as `str(uuid.uuid4())` writes it, formatted directly (a
    `uuid.UUID` is built only to be printed)."""
    digits = os.urandom(16).hex()
    # The version nibble is 4; the variant's two high bits are 10 (RFC 9562), the rest stays random.
    variant = _VARIANT[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


_VARIANT = "89ab"


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
    event_id: str = field(default_factory=lambda: new_event_id())
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def _instant(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return str(value)


def canonical(row: Row) -> bytes:
    """The canonical JSON of a row's hashed columns: the bytes its hash is taken over."""
    return _encoded(_document(row), exact=False)


def _document(row: Row) -> dict[str, Any]:
    document = {name: row[name] for name in HASHED}
    document["at"] = _instant(document["at"])
    document["event_id"] = str(document["event_id"])
    return document


_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME


def _encoded(document: dict[str, Any], *, exact: bool) -> bytes:
    """`json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` in UTF-8.

    `exact`: the document holds JSON's own types only (`_plain`), and neither a float nor an integer
    beyond 64 bits; then orjson writes the very same bytes (its escapes and its key order, by code
    point, are those of `json`; only floats, which it writes in its own notation, and big integers,
    which it refuses, differ), about ten times faster. Anything orjson refuses (a lone surrogate, a
    type it does not take) is written by `json` as before.
    """
    if exact:
        try:
            return orjson.dumps(document, option=_ORJSON)
        except orjson.JSONEncodeError:
            pass
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# A number token json.loads would read as a float (a digit then a point or an exponent) or as an
# integer beyond 64 bits (16 digits or more); text in strings may match too, then `json` does the work.
_NOT_EXACT = re.compile(r"[0-9][.eE]|[0-9]{16}")


def sorted_json(text: str) -> str:
    """`json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)`: a
    JSON column's text (jsonb's) as the chain's canonical JSON writes that column.

    Where `text` holds no float and no integer beyond 64 bits, orjson reads and writes it: the same
    values, then the very same text (see `_encoded`), a few times faster. Anything else, or anything
    orjson refuses, goes through `json` as before.
    """
    if _NOT_EXACT.search(text) is None:
        try:
            return orjson.dumps(orjson.loads(text), option=_ORJSON).decode()
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            pass
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(row: Row) -> str:
    """SHA-256 (hex) of a row's canonical JSON."""
    return hashlib.sha256(canonical(row)).hexdigest()


def chained(entry: AuditEntry, seq: int, prev_hash: str) -> dict[str, Any]:
    """The row of `entry` appended after a row with sequence `seq - 1` and hash `prev_hash`."""
    return chained_canonical(entry, seq, prev_hash)[0]


# A row's canonical JSON beyond this is a request or response someone made large on purpose (a field
# name of megabytes in a body that does not validate): kept whole, it would be a row the relay cannot
# publish (Kafka's message limit), holding back every row after it. Its request or response over
# `MAX_PART_BYTES` is kept as its size and SHA-256 instead (`_summarised`).
MAX_ROW_BYTES = 64 * 1024
MAX_PART_BYTES = 16 * 1024


def chained_canonical(entry: AuditEntry, seq: int, prev_hash: str) -> tuple[dict[str, Any], bytes]:
    """`chained`, and the row's canonical JSON that its hash is taken over (to store it from, unchanged)."""
    row, text = _chained_canonical(entry, seq, prev_hash)
    if len(text) > MAX_ROW_BYTES:
        row, text = _chained_canonical(_summarised(entry), seq, prev_hash)
    return row, text


def _summarised(entry: AuditEntry) -> AuditEntry:
    """`entry` with a request or response over `MAX_PART_BYTES` (as canonical JSON) replaced by its size
    and SHA-256: what was asked or answered stays provable, without the row holding all of it."""
    parts = {}
    for name in ("request", "response"):
        value, exact = _plain_json(getattr(entry, name))
        text = _encoded({"value": value}, exact=exact)[len(b'{"value":') : -1]
        if len(text) > MAX_PART_BYTES:
            value = {
                "omitted": "too large to keep",
                "bytes": len(text),
                "sha256": hashlib.sha256(text).hexdigest(),
            }
        parts[name] = value
    return dataclasses.replace(entry, **parts)


def _chained_canonical(entry: AuditEntry, seq: int, prev_hash: str) -> tuple[dict[str, Any], bytes]:
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
        "request": None,
        "response": None,
        "policy_version": entry.policy_version,
        "prev_hash": prev_hash,
    }
    row["request"], exact_request = _plain_json(entry.request)
    row["response"], exact_response = _plain_json(entry.response)
    text = _encoded(_document(row), exact=exact_request and exact_response)
    row["hash"] = hashlib.sha256(text).hexdigest()
    return row, text


def chained_text(entry: AuditEntry, seq: int, prev_hash: str) -> tuple[str, bytes]:
    """The hash and the canonical JSON of `entry` appended after (`seq - 1`, `prev_hash`): what
    `chained_canonical` returns, without the row. An entry whose request and response hold JSON's own
    types only (`_json_types`: a verification's do) is written from its values directly, without
    copying them to plain JSON first; anything else, and anything orjson does not write as `json` does
    (NUL, a lone surrogate, an integer beyond 64 bits), is left to `chained_canonical`."""
    if _json_types(entry.request, 0) and _json_types(entry.response, 0):
        text = _direct(entry, seq, prev_hash)
        if text is not None and len(text) <= MAX_ROW_BYTES:
            return hashlib.sha256(text).hexdigest(), text
    row, text = chained_canonical(entry, seq, prev_hash)
    return row["hash"], text


def _json_types(value: Any, depth: int) -> bool:
    """Whether `value` holds only text, integers, booleans, None, lists, tuples, dicts with text keys and
    exact dates and datetimes: no float (orjson and `json` write some differently: 1e16, NaN), no enum,
    subclass or other object, and no deeper than `_plain` copies directly. (Loops, not `all` over a
    generator: this runs on every audited request.)"""
    kind = type(value)
    if kind is dict:
        for key in value:
            if type(key) is not str:
                return False
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return kind is str or kind is int or kind is bool or value is None or kind in _INSTANTS
    if depth >= _MAX_DEPTH:
        return False
    for item in items:
        kind = type(item)
        if not (kind is str or kind is int or kind is bool or item is None or _json_types(item, depth + 1)):
            return False
    return True


# Dates and datetimes go to `_date_text`, subclasses of JSON's types to it as well (which refuses them).
_DIRECT = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME
_NUL = b"\\u0000"


def _date_text(value: Any) -> str:
    if type(value) in _INSTANTS:
        return str(value)  # as `_plain` writes it
    raise TypeError


def _direct(entry: AuditEntry, seq: int, prev_hash: str) -> bytes | None:
    purpose, at = entry.purpose, entry.at
    # orjson writes a UTC instant as `_instant` does (unless its microseconds are 0: it omits them),
    # several times faster; the dates and datetimes of the request and response go to `_date_text`.
    instant = orjson.dumps(at)[1:-1].decode() if at.tzinfo is dt.UTC and at.microsecond else _instant(at)
    try:
        text = orjson.dumps(
            {
                "action": entry.action,
                "at": instant,
                "caller": entry.caller,
                "event_id": entry.event_id,
                "outcome": entry.outcome,
                "policy_version": entry.policy_version,
                "prev_hash": prev_hash,
                "purpose": None if purpose is None else _storable_fast(purpose),
                "reason": entry.reason,
                "request": entry.request,
                "response": entry.response,
                "seq": seq,
                "subject_key": entry.subject_key,
            },
            default=_date_text,
            option=_DIRECT,
        )
    except orjson.JSONEncodeError:
        return None
    # A NUL is stored as U+FFFD (`_plain`); anywhere else it is written as json writes it, so this is only
    # a shortcut's limit, not a difference.
    return None if _NUL in text else text


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first row where the chain does not hold: its sequence number and what is wrong."""

    seq: int
    kind: str  # altered, broken_link, sequence_gap, truncated
    message: str


class PublishedChain:
    """The hash of every row the relay published, by seq: the chain's copy outside the database.

    The relay is at least once, so a seq may be published more than once, always with the same hash;
    two different hashes for one seq mean the row was rewritten and published again, or something else
    wrote to the topic (`conflicts`). Kept compact, as a log of one row per request grows without end:
    the first 64 bits of each hash in an array indexed by seq (8 bytes a row; a dict of the hashes took
    about 150), which tells a rewritten row from the one published all the same (a forger would have
    to find a row whose SHA-256 starts with the same 64 bits). Seqs no relay gives (below 1, or far
    past the others) are kept aside.
    """

    def __init__(self, where: str) -> None:
        self.where = where  # the topic, for the messages: the place an operator can look the rows up
        self._short = array("Q")  # seq - 1 -> the hash's first 64 bits; 0: not published
        self._aside: dict[int, int] = {}
        self.conflicts: set[int] = set()

    def add(self, seq: int, row_hash: str) -> None:
        """Record that `where` holds row `seq` with hash `row_hash`."""
        short = _short(row_hash)
        if seq in self._aside or not 1 <= seq <= len(self._short) + _GROWTH:
            if self._aside.setdefault(seq, short) != short:
                self.conflicts.add(seq)
            return
        if seq > len(self._short):
            self._short.extend(_ZEROS[: seq - len(self._short)])
        known = self._short[seq - 1]
        if known == 0:
            self._short[seq - 1] = short
        elif known != short:
            self.conflicts.add(seq)

    def published(self, seq: int) -> int | None:
        """The first 64 bits of row `seq`'s published hash, or None when it was not published."""
        if seq in self._aside:
            return self._aside[seq]
        if 1 <= seq <= len(self._short):
            return self._short[seq - 1] or None
        return None

    def problem_at(self, seq: int, row_hash: str) -> ChainProblem | None:
        """Whether the log's row `seq`, with hash `row_hash`, differs from what was published of it."""
        if seq in self.conflicts:
            return ChainProblem(
                seq,
                "altered",
                f"{self.where} holds row {seq} twice with different hashes: the row was rewritten and "
                "published again, or something other than the relay wrote to the topic",
            )
        published = self.published(seq)
        if published is not None and published != _short(row_hash):
            return ChainProblem(
                seq,
                "altered",
                f"row {seq} was altered after it was published: {self.where} holds it with a hash "
                f"starting {published:016x}, the log with {row_hash}",
            )
        return None

    def beyond(self, last_seq: int) -> ChainProblem | None:
        """A published row the log (rows 1 to `last_seq`) does not hold, or None."""
        above = [seq for seq in self._aside if seq > last_seq]
        highest = len(self._short)
        while highest > last_seq and self._short[highest - 1] == 0:
            highest -= 1
        if highest > last_seq:
            above.append(highest)
        if above:
            return ChainProblem(
                last_seq + 1,
                "truncated",
                f"{self.where} holds rows up to row {max(above)} but the log ends at row {last_seq}: "
                f"row {last_seq + 1} and after were removed after they were published",
            )
        below = [seq for seq in self._aside if seq < 1]
        if below:
            seq = min(below)
            return ChainProblem(
                seq, "sequence_gap", f"{self.where} holds row {seq} but the log has no such row"
            )
        return None


# How far past the highest seq seen an array entry is made for a new one; past that, kept aside.
_GROWTH = 1 << 16
_ZEROS = array("Q", bytes(8 * _GROWTH))


def _short(row_hash: str) -> int:
    """The first 64 bits of a hash (hex), never 0 (which marks a row not published)."""
    return int(row_hash[:16], 16) or 1


def published_chain(pairs: Iterable[tuple[int, str]], where: str) -> PublishedChain:
    """The `PublishedChain` of the (seq, hash) pairs read from `where`, in the order they were read."""
    published = PublishedChain(where)
    for seq, row_hash in pairs:
        published.add(seq, row_hash)
    return published


class ChainVerifier:
    """Checks rows one at a time, in seq order, so a long log is verified without holding it in memory;
    given what the relay published, each row is also checked against its published hash as it goes."""

    def __init__(self, published: PublishedChain | None = None) -> None:
        self.rows = 0
        self.published_rows = 0  # of `rows`, those checked against a published hash
        self._expected_seq = 1
        self._prev = GENESIS
        self._published = published
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
        if self._published is not None:
            # A row rewritten with every hash after it recomputed holds in the database; not here.
            problem = self._published.problem_at(seq, str(row["hash"]))
            if problem is not None:
                return problem
            if self._published.published(seq) is not None:
                self.published_rows += 1
        self._expected_seq, self._prev = seq + 1, str(row["hash"])
        return None

    def finish(self, head: tuple[int, str] | None, relay_next_seq: int | None = None) -> ChainProblem | None:
        """The first problem, including rows missing at the end against the chain head (last seq, hash),
        the rows published (given to the constructor) and the relay's position (`relay_next_seq`, the
        first row it has not published): rows may not be published yet, but none may be missing."""
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
        if self._published is not None and (problem := self._published.beyond(last_seq)) is not None:
            return problem
        if relay_next_seq is not None and relay_next_seq > last_seq + 1:
            return ChainProblem(
                last_seq + 1,
                "truncated",
                f"the relay has published rows up to row {relay_next_seq - 1} but the log ends at row "
                f"{last_seq}: row {last_seq + 1} and after were removed after they were published",
            )
        return None


def verify(
    rows: Iterable[Row],
    head: tuple[int, str] | None,
    published: PublishedChain | None = None,
    relay_next_seq: int | None = None,
) -> ChainProblem | None:
    """The first problem in `rows` (in seq order) against the chain head and, when given, what the
    relay published and its position; None when the chain holds."""
    verifier = ChainVerifier(published)
    for row in rows:
        if verifier.feed(row) is not None:
            break
    return verifier.finish(head, relay_next_seq)
