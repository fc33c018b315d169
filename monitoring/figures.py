"""The figures `exchange top` shows, computed from two scrapes: totals, rates and histogram quantiles.

Pure functions over `Samples`; the same arithmetic Prometheus does (counter resets, `rate`,
`histogram_quantile`), so the terminal and the dashboard agree.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from monitoring.scrape import Labels, Samples, Scrape


def merge(parts: Iterable[Samples]) -> Samples:
    """Samples of several processes added up (two sinks' rows make the sink's rows)."""
    merged: dict[tuple[str, Labels], float] = defaultdict(float)
    for samples in parts:
        for key, value in samples.items():
            merged[key] += value
    return dict(merged)


def increases(previous: Samples, current: Samples) -> Samples:
    """How much each cumulative sample grew; after a restart (a drop) the whole new value counts."""
    grown: Samples = {}
    for key, value in current.items():
        before = previous.get(key)
        if before is not None:
            grown[key] = value - before if value >= before else value
    return grown


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile of cumulative bucket counts keyed by upper bound, interpolated as Prometheus does."""
    bounds = sorted(buckets)
    if len(bounds) < 2 or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return bounds[-2]
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return bounds[-2]


def _matches(labels: Labels, match: Mapping[str, str]) -> bool:
    found = dict(labels)
    return all(found.get(name) == value for name, value in match.items())


@dataclass(frozen=True)
class Window:
    """The latest scrape's totals and, after an earlier scrape, what grew since it over `seconds`."""

    totals: Samples
    grown: Samples | None
    seconds: float

    def total(self, name: str, **match: str) -> float:
        """Sum of the samples called `name` whose labels include `match`."""
        return _sum(self.totals, name, match)

    def rate(self, name: str, **match: str) -> float | None:
        """Per-second increase of that sum between the two scrapes; None after a single scrape."""
        if self.grown is None or self.seconds <= 0:
            return None
        return _sum(self.grown, name, match) / self.seconds

    def by(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        """Totals of `name` grouped by the values of the labels `keys`."""
        return _grouped(self.totals, name, keys)

    def rates_by(self, name: str, *keys: str) -> dict[tuple[str, ...], float] | None:
        """Per-second increases of `name` grouped by the labels `keys`; None after a single scrape."""
        if self.grown is None or self.seconds <= 0:
            return None
        return {group: value / self.seconds for group, value in _grouped(self.grown, name, keys).items()}

    def quantile(self, q: float, histogram: str, **match: str) -> float | None:
        """The q-quantile of a histogram's observations between the scrapes (after one scrape: ever)."""
        samples = self.totals if self.grown is None else self.grown
        buckets: dict[float, float] = defaultdict(float)
        for (name, labels), value in samples.items():
            if name == f"{histogram}_bucket" and _matches(labels, match):
                buckets[float(dict(labels)["le"])] += value
        return histogram_quantile(q, buckets)

    def mean(self, histogram: str, **match: str) -> float | None:
        """Mean observation of a histogram between the scrapes (after one scrape: ever)."""
        samples = self.totals if self.grown is None else self.grown
        count = _sum(samples, f"{histogram}_count", match)
        return _sum(samples, f"{histogram}_sum", match) / count if count else None


def window(previous: Scrape | None, current: Scrape) -> Window:
    """Totals of the targets up now; growth of those that were up at both scrapes."""
    up = {name: samples for name, samples in current.targets.items() if samples is not None}
    totals = merge(up.values())
    if previous is None:
        return Window(totals, None, 0.0)
    both = [
        increases(before, up[name])
        for name, before in previous.targets.items()
        if before is not None and name in up
    ]
    return Window(totals, merge(both), current.at - previous.at)


def _sum(samples: Samples, name: str, match: Mapping[str, str]) -> float:
    return sum(
        value for (found, labels), value in samples.items() if found == name and _matches(labels, match)
    )


def _grouped(samples: Samples, name: str, keys: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    groups: dict[tuple[str, ...], float] = defaultdict(float)
    for (found, labels), value in samples.items():
        if found == name:
            values = dict(labels)
            groups[tuple(values.get(key, "") for key in keys)] += value
    return dict(groups)
