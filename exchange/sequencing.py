"""Each source partition's records in offset order, without holes: the rule the processor's consumer keeps.

faust 0.15.3 can drop records it has already fetched: when a rebalance stops the flow mid-batch
(`Consumer.getmany` breaks out of the batch), when the generation changes, or for a partition not
yet active. The fetch position has moved past them, and its own bookkeeping then treats the missing
offsets as a gap that may be committed over (`_add_gap`, and `_new_offset` letting one missing offset
through) — so the records are neither folded nor read again. Seen here as a subject whose profile
lacked a title or a month of contributions after two processors shared the partitions. It also
clears its streams' buffers when it resumes them at the end of a rebalance, after its seek to the
committed offsets, losing records handed over in between; so the consumer hands none over during a
rebalance, and a delivery that waited across a reset is not counted (`Sequencer.epoch`): its record may
have gone with the buffers, and is read again.

The source topics are written by the connectors' idempotent, non-transactional producers with
delete retention, so their offsets are contiguous: a record whose offset is past the next one
expected means records were dropped. This module decides, per record, whether to deliver it, skip it
(delivered already) or rewind the partition to the first missing offset. Pure: the consumer
(`exchange.ordered_consumer`) does the seeking.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)  # a partition


class Verdict(Enum):
    """What to do with one record."""

    DELIVER = "deliver"
    SKIP = "skip"  # delivered already (a re-read after a rewind), or behind a rewind in progress
    REWIND = "rewind"  # records before it are missing: seek back to `Sequencer.expected`


@dataclass
class _Rewind:
    offset: int
    at: float
    attempts: int


class Sequencer(Generic[P]):
    """The next offset expected per partition, and the rewinds under way.

    A partition without an expected offset (no committed offset: it is read from its beginning)
    accepts its first record. A rewind is asked again if the hole is still there `retry_seconds`
    after the last one; after `max_attempts` rewinds that each found the same hole, the missing
    offsets are taken as absent from the log (deleted by retention) and the record is delivered.

    Each `reset` starts an epoch: a delivery begun before it and finished after it is not counted
    (`delivered`'s `epoch`): what it handed over may have gone with the streams' buffers.
    """

    def __init__(self, retry_seconds: float = 1.0, max_attempts: int = 5, stall_seconds: float = 5.0) -> None:
        self.retry_seconds = retry_seconds
        self.max_attempts = max_attempts
        self.stall_seconds = stall_seconds
        self._expected: dict[P, int] = {}
        self._rewinds: dict[P, _Rewind] = {}
        self._seen: dict[P, float] = {}  # when a record of the partition last came
        self._dropped: set[P] = set()  # partitions with a record held back since the last record judged
        self.epoch = 0

    def reset(self, committed: Mapping[P, int | None]) -> None:
        """Start over from the committed offsets (after a seek to them); forget everything else."""
        self._expected = {partition: offset for partition, offset in committed.items() if offset is not None}
        self._rewinds = {}
        self._seen = {}
        self._dropped = set()
        self.epoch += 1

    def expected(self, partition: P) -> int | None:
        """The next offset `partition` must deliver; None when any first offset is accepted."""
        return self._expected.get(partition)

    def judge(self, partition: P, offset: int, now: float) -> Verdict:
        """What to do with the record at `offset`; call `delivered` once it has been delivered."""
        self._seen[partition] = now
        if self._dropped:  # per record: the usual case, nothing dropped, costs one test
            self._dropped.discard(partition)  # this record shows any hole itself
        expected = self._expected.get(partition)
        if expected is None or offset == expected:
            return Verdict.DELIVER
        if offset < expected:
            return Verdict.SKIP
        rewind = self._rewinds.get(partition)
        if rewind is None or rewind.offset != expected:
            self._rewinds[partition] = _Rewind(expected, now, 1)
            return Verdict.REWIND
        if now - rewind.at < self.retry_seconds:
            return Verdict.SKIP
        if rewind.attempts >= self.max_attempts:
            return Verdict.DELIVER
        rewind.at = now
        rewind.attempts += 1
        return Verdict.REWIND

    def stalled(self, partition: P, position: int, now: float) -> bool:
        """Whether to rewind `partition`, whose fetch position is `position`, to the expected offset.

        The hole at the end of a partition: records fetched and dropped with none after them, so no
        later record shows the hole. Yes when the position is past the expected offset and no record
        of the partition came for `stall_seconds` (a partition merely held back by a full buffer is
        rewound harmlessly: to where it would read next anyway). At once for a partition whose record
        was `dropped`: the hole is known.
        """
        expected = self._expected.get(partition)
        if expected is None or position <= expected:
            return False
        if partition in self._dropped:
            self._dropped.discard(partition)
            self._seen[partition] = now
            return True
        seen = self._seen.setdefault(partition, now)
        if now - seen < self.stall_seconds:
            return False
        self._seen[partition] = now
        return True

    def dropped(self, partition: P) -> None:
        """A record of `partition` was fetched and not handed over: the next look at a position past the
        expected offset rewinds (`stalled`), unless a later record shows the hole first (`judge`)."""
        self._dropped.add(partition)

    def delivered(self, partition: P, offset: int, epoch: int | None = None) -> None:
        """`offset` was delivered: the partition expects the one after it. Ignored if the delivery began
        in an earlier `epoch`: a reset came while it waited."""
        if epoch is not None and epoch != self.epoch:
            return
        self._expected[partition] = offset + 1
        self._rewinds.pop(partition, None)
