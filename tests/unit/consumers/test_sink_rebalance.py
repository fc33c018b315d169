"""The sink's rebalance listener: an assignment reads stored offsets once the write in flight is done."""

from __future__ import annotations

from kafka import TopicPartition

from consumers.sink.rebalance import OffsetSeeker, written_to_end

TOPIC = "social.contribution.v1"


class _Consumer:
    """Where the listener positions partitions (the one thing it asks of kafka-python's consumer)."""

    def __init__(self) -> None:
        self.positions: dict[TopicPartition, int | str] = {}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.positions[partition] = offset

    def seek_to_beginning(self, partition: TopicPartition) -> None:
        self.positions[partition] = "beginning"


def test_an_assignment_waits_for_the_write_in_flight_before_reading_offsets() -> None:
    stored = {TopicPartition(TOPIC, 0): 100}
    steps: list[str] = []

    def settle() -> None:
        steps.append("settled")
        stored[TopicPartition(TOPIC, 0)] = 200  # the write in flight committed meanwhile

    def load(partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        steps.append("loaded")
        return {partition: stored[partition] for partition in partitions if partition in stored}

    consumer = _Consumer()
    seeker = OffsetSeeker(consumer, load, settle=settle)
    seeker.on_partitions_assigned([TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])

    assert steps == ["settled", "loaded"]
    # Resumed after what the settled write stored, not before it: those rows are not read twice.
    assert consumer.positions == {TopicPartition(TOPIC, 0): 200, TopicPartition(TOPIC, 1): "beginning"}
    assert seeker.expected([TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]) == {
        TopicPartition(TOPIC, 0): 200,
        TopicPartition(TOPIC, 1): None,
    }


def test_a_revoked_partition_is_not_done_by_its_position_while_the_group_joins_again() -> None:
    # The member took offsets 100..199 of a partition (its position is 200, the end), then the partition
    # was revoked before they were written: those rows were dropped, and the group has stored 100.
    # kafka-python (eager protocol) still lists the partition as assigned, at position 200, until the
    # group has joined again; an `--until-idle` sink must not stop then.
    partition = TopicPartition(TOPIC, 0)
    consumer = _Consumer()
    seeker = OffsetSeeker(consumer, lambda partitions: {partition: 100})
    seeker.on_partitions_assigned([partition])
    ends, stored = {partition: 200}, {partition: 100}
    at_the_end = {partition: 200}.__getitem__

    assert seeker.owned() == {partition}
    assert written_to_end(ends, stored, seeker.owned(), at_the_end)  # its own, position at the end

    seeker.on_partitions_revoked([partition])

    assert seeker.owned() == set()
    assert not written_to_end(ends, stored, seeker.owned(), at_the_end)
    assert written_to_end(ends, {partition: 200}, seeker.owned(), at_the_end)  # once the group wrote it
