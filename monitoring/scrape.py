"""Reading other processes' /metrics: fetch the text exposition and flatten it into samples."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

# A sample's labels, sorted, so equal label sets are equal keys.
Labels = tuple[tuple[str, str], ...]
# (sample name with its suffix, e.g. `_total` or `_bucket`; labels) → value
Samples = dict[tuple[str, Labels], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, keyed by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def fetch(url: str, timeout_seconds: float) -> Samples | None:
    """The samples a /metrics endpoint serves now, or None when it does not answer properly."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as response:
            return parse(response.read().decode("utf-8"))
    except (OSError, ValueError, urllib.error.URLError):
        # Refused, timed out, not HTTP, not an exposition: the process is down as far as operators go.
        return None


@dataclass(frozen=True)
class Scrape:
    """What every target served at one moment; None for a target that was down."""

    at: float  # time.monotonic()
    targets: Mapping[str, Samples | None]


def scrape_all(targets: Mapping[str, str], timeout_seconds: float) -> Scrape:
    """Fetch every target's /metrics at once, so one slow target delays the others by nothing."""
    at = time.monotonic()
    if not targets:
        return Scrape(at, {})
    with ThreadPoolExecutor(max_workers=min(len(targets), 16)) as pool:
        results = pool.map(lambda url: fetch(url, timeout_seconds), targets.values())
        return Scrape(at, dict(zip(targets, results, strict=True)))
