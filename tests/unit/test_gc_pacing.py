"""Full garbage collections in the processor: held back from CPython, run between batches on an interval."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from exchange.gc_pacing import NEVER, FullCollections, hold_full_collections

_TIMED = "exchange_processor_full_collection_seconds_count"


@pytest.fixture
def full_collections() -> Iterator[list[int]]:
    """The generations of the collections run while the test does (CPython's own or asked for)."""
    seen: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            seen.append(info["generation"])

    thresholds = gc.get_threshold()
    gc.callbacks.append(note)
    try:
        yield seen
    finally:
        gc.callbacks.remove(note)
        gc.set_threshold(*thresholds)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_collection_runs_after_a_batch_once_the_interval_passed(full_collections: list[int]) -> None:
    clock = _Clock()
    pacing = FullCollections(60.0, clock)
    timed = REGISTRY.get_sample_value(_TIMED) or 0.0
    clock.now += 59.0
    assert not pacing.after_batch()
    assert 2 not in full_collections
    clock.now += 1.0
    assert pacing.after_batch()
    assert full_collections.count(2) == 1
    assert REGISTRY.get_sample_value(_TIMED) == timed + 1
    clock.now += 30.0
    assert not pacing.after_batch()  # the next is an interval after this one
    clock.now += 30.0
    assert pacing.after_batch()


def test_held_back_cpython_starts_no_full_collection_however_many_objects_outlive_it(
    full_collections: list[int],
) -> None:
    hold_full_collections()
    assert gc.get_threshold()[2] == NEVER
    kept = []
    for _ in range(300):  # enough survivors for CPython's own full collections, many times over
        kept.append([[] for _ in range(2000)])
    assert 0 in full_collections and 1 in full_collections  # the young ones go on
    assert 2 not in full_collections
