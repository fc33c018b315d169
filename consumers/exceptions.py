"""The consumers' errors: what stops a consumer, and what it handles itself."""

from __future__ import annotations

from exchange.exceptions import ExchangeError


class ConsumerError(ExchangeError):
    """Raised when a consumer cannot go on: it stops, and its process exits non-zero."""


class UndecodableRecordError(ConsumerError):
    """Raised when a record on a consumed topic is not a record of that topic's schema."""

    def __init__(self, topic: str, partition: int, offset: int, reason: str) -> None:
        super().__init__(
            f"{topic} partition {partition} offset {offset}: {reason}. Nothing at or after it was "
            "written. Connectors dead-letter bad input, so look for a producer writing to this topic "
            "outside them; to skip the record on purpose, set consumer_offsets.next_offset of this "
            f"group, topic and partition to {offset + 1}."
        )
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.reason = reason


class SinkWriteError(ConsumerError):
    """Raised when PostgreSQL refuses a batch: a permanent error, or transient ones past the retry budget."""


class OffsetConflictError(ConsumerError):
    """Raised when consumer_offsets moved under a batch (another consumer of the group wrote them).

    The sink handles it: the batch is rolled back and the sink resumes from the stored offsets.
    """
