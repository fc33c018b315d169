"""Python's full garbage collections in the processor: between batches, once per interval, instead of
whenever enough objects outlived the young generations.

The processor keeps the decoded ledgers of recently folded subjects (`streams.ProfileCache`): hundreds
of thousands of NamedTuples, which CPython never stops tracking (only exact tuples are untracked). A
full collection walks them all — 120 to 500 ms with 2,000 subjects cached — and CPython starts one
each time a quarter as many objects again has reached the oldest generation: every few seconds while
folding, each time stopping the fold, and finding nothing to collect (the ledgers hold no cycles).
Those pauses were the tail of the profiles' freshness. Young collections stay automatic: they are
short, and they free the cycles of objects that die young (futures, tracebacks).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from monitoring import metrics

# A threshold no count of young collections reaches: CPython then never starts a full collection.
NEVER = 2**31 - 1


def hold_full_collections() -> None:
    """Leave full collections to `FullCollections` from now on in this process."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)


class FullCollections:
    """Runs a full collection after a batch when `interval_seconds` have passed since the last."""

    def __init__(self, interval_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.due = clock() + interval_seconds

    def after_batch(self) -> bool:
        """Collect fully if it is due; whether it was."""
        now = self.clock()
        if now < self.due:
            return False
        started = time.perf_counter()
        gc.collect()
        metrics.PROCESSOR_FULL_COLLECTION_SECONDS.observe(time.perf_counter() - started)
        self.due = now + self.interval_seconds
        return True
