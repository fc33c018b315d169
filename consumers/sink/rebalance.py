"""Where each assigned partition resumes: the next offset PostgreSQL holds for the group, never Kafka's."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Set

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

_log = logging.getLogger("exchange.sink")

LoadOffsets = Callable[[list[TopicPartition]], dict[TopicPartition, int]]


class OffsetSeeker(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python is untyped
    """Seeks partitions to their stored offsets on assignment, and remembers those offsets for fencing.

    kafka-python calls the listener on its IO thread, from inside `poll` (or from its heartbeat when
    the group drops this member), so the state shared with the sink's loop is behind a lock and
    `load` must use a PostgreSQL connection of its own. Every partition revoked or newly sought is
    reported once by `take_dropped`: rows taken from it before must not be written. `settle` waits for
    the sink's write in flight, so that an assignment reads the offsets that write leaves.
    """

    def __init__(
        self, consumer: KafkaConsumer, load: LoadOffsets, settle: Callable[[], None] = lambda: None
    ) -> None:
        self._consumer = consumer
        self._load = load
        self._settle = settle
        self._lock = threading.Lock()
        self._expected: dict[TopicPartition, int | None] = {}
        self._dropped: set[TopicPartition] = set()
        self.assigned = False  # set by the first assignment, even an empty one
        self.failure: BaseException | None = None

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """Forget the revoked partitions; their unwritten rows are dropped."""
        with self._lock:
            for partition in revoked:
                self._expected.pop(partition, None)
                self._dropped.add(partition)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        """Seek each assigned partition to its stored next offset, or to its beginning when none is stored."""
        partitions = sorted(assigned)
        try:
            # A write in flight may be about to move the stored offsets: read them once it is done.
            self._settle()
            stored = self._load(partitions)
            self.seek(partitions, stored)
        except BaseException as exc:
            # kafka-python logs and swallows a listener's error; the sink's loop raises it.
            self.failure = exc
            raise
        self.assigned = True
        _log.info(
            "assigned %d partitions: %d resume from their stored offsets, %d from their beginning",
            len(partitions),
            len(stored),
            len(partitions) - len(stored),
        )

    def seek(self, partitions: Collection[TopicPartition], stored: Mapping[TopicPartition, int]) -> None:
        """Position `partitions` at `stored` (the beginning where absent) and expect those offsets."""
        with self._lock:
            for partition in partitions:
                offset = stored.get(partition)
                if offset is None:
                    self._consumer.seek_to_beginning(partition)
                else:
                    self._consumer.seek(partition, offset)
                self._expected[partition] = offset
                self._dropped.add(partition)

    def take_dropped(self) -> set[TopicPartition]:
        """The partitions revoked or sought since the last call."""
        with self._lock:
            dropped, self._dropped = self._dropped, set()
        return dropped

    def expected(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The stored offsets the next write of `partitions` must find (None: nothing stored yet)."""
        with self._lock:
            return {partition: self._expected.get(partition) for partition in partitions}

    def owned(self) -> set[TopicPartition]:
        """The partitions this member holds now: assigned and not revoked since. In the eager protocol
        kafka-python keeps revoked partitions in `assignment()` (with their positions) until the group
        has joined again; they are not this member's to count."""
        with self._lock:
            return set(self._expected)

    def advance(self, next_offsets: Mapping[TopicPartition, int]) -> None:
        """Record offsets just committed, for the partitions still assigned."""
        with self._lock:
            for partition, offset in next_offsets.items():
                if partition in self._expected:
                    self._expected[partition] = offset


def written_to_end(
    ends: Mapping[TopicPartition, int],
    stored: Mapping[TopicPartition, int],
    owned: Set[TopicPartition],
    position: Callable[[TopicPartition], int],
) -> bool:
    """Whether every partition is written up to its end offset: the group's stored offset is there, or
    the partition is this member's and its position is there (past trailing control records, which
    no row stores an offset for). A revoked partition's position says nothing of what was written:
    its rows taken since the last write were dropped."""
    return all(
        stored.get(partition, 0) >= end or (partition in owned and position(partition) >= end)
        for partition, end in ends.items()
    )
