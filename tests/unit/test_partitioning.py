"""The connectors' partitioner must agree with Kafka's default one, or the processor's join breaks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from exchange.partitioning import murmur2, partition_for


@given(st.binary(max_size=200))
def test_murmur2_is_kafka_pythons(data: bytes) -> None:
    assert murmur2(data) == kafka_python_murmur2(data) & 0xFFFFFFFF


@given(st.binary(min_size=1, max_size=100), st.integers(min_value=1, max_value=64))
def test_partition_is_the_default_partitioners(key: bytes, partitions: int) -> None:
    assert partition_for(key, partitions) == (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions


def test_the_java_clients_vectors() -> None:
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed Java ints).
    vectors = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for data, expected in vectors.items():
        assert murmur2(data) == expected & 0xFFFFFFFF, data
