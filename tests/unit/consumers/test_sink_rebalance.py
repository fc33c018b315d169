"""The sink's rebalance listener: an assignment reads stored offsets once the write in flight is done."""

from __future__ import annotations

from kafka import TopicPartition

from consumers.sink.rebalance import OffsetSeeker

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
