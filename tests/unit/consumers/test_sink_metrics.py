"""The sink's grouped histogram observation counts exactly as one observe per row would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from monitoring.metrics import FRESHNESS_BUCKETS, observe_repeated


def histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("fresh_seconds", "test", ["table"], buckets=FRESHNESS_BUCKETS, registry=registry)


def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def test_observe_repeated_matches_repeated_observe() -> None:
    one_by_one, grouped = CollectorRegistry(), CollectorRegistry()
    single, many = histogram(one_by_one).labels(table="t"), histogram(grouped).labels(table="t")
    for value, count in [(0.0, 3), (0.7, 5), (30.0, 2), (1e9, 4)]:
        for _ in range(count):
            single.observe(value)
        observe_repeated(many, value, count)
    assert samples(grouped) == samples(one_by_one)


def test_observe_repeated_refuses_the_labelled_parent() -> None:
    with pytest.raises(ValueError, match="labelled child"):
        observe_repeated(histogram(CollectorRegistry()), 1.0, 2)
