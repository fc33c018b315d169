"""The arithmetic of `exchange top`: increases across restarts, rates, and Prometheus' quantiles."""

from __future__ import annotations

import math

import pytest

from monitoring.figures import histogram_quantile, increases, merge, window
from monitoring.scrape import Samples, Scrape, parse

INF = math.inf


def test_quantiles_interpolate_as_prometheus_does() -> None:
    # The same buckets in monitoring/alerts_test.yml make promtool report 994.4ms.
    assert histogram_quantile(0.99, {0.1: 0, 0.5: 10, 1.0: 100, INF: 100}) == pytest.approx(
        0.5 + 0.5 * 89 / 90
    )
    assert histogram_quantile(0.5, {0.1: 50, 0.5: 100, INF: 100}) == pytest.approx(0.1)
    assert histogram_quantile(0.25, {0.1: 50, 0.5: 100, INF: 100}) == pytest.approx(0.05)
    # Observations beyond the last finite bucket: its bound is the best answer there is.
    assert histogram_quantile(0.99, {0.1: 1, 0.5: 1, INF: 100}) == 0.5


@pytest.mark.parametrize("buckets", [{}, {0.1: 0.0, INF: 0.0}, {0.1: 3.0, 0.5: 4.0}, {INF: 3.0}])
def test_no_quantile_without_observations_or_an_inf_bucket(buckets: dict[float, float]) -> None:
    assert histogram_quantile(0.5, buckets) is None


def test_increases_count_a_restart_as_starting_from_zero() -> None:
    previous: Samples = {("a_total", ()): 10.0, ("b_total", ()): 50.0}
    current: Samples = {("a_total", ()): 15.0, ("b_total", ()): 4.0, ("c_total", ()): 1.0}
    assert increases(previous, current) == {("a_total", ()): 5.0, ("b_total", ()): 4.0}


def test_merge_adds_processes_up() -> None:
    assert merge([{("x", ()): 1.0}, {("x", ()): 2.0, ("y", ()): 3.0}]) == {("x", ()): 3.0, ("y", ()): 3.0}


EXPOSITION = """
# TYPE exchange_sink_rows_written_total counter
exchange_sink_rows_written_total{{table="profiles"}} {rows}
exchange_sink_rows_written_total{{table="tax_payments"}} 7
# TYPE exchange_sink_commit_seconds histogram
exchange_sink_commit_seconds_bucket{{le="0.01"}} {fast}
exchange_sink_commit_seconds_bucket{{le="0.1"}} 10
exchange_sink_commit_seconds_bucket{{le="+Inf"}} 10
exchange_sink_commit_seconds_sum 0.4
exchange_sink_commit_seconds_count 10
"""


def _scrape(at: float, rows: int, fast: int, down: bool = False) -> Scrape:
    samples = parse(EXPOSITION.format(rows=rows, fast=fast))
    return Scrape(at, {"sink": samples, "api": None if down else {}})


def test_a_single_scrape_has_totals_and_no_rates() -> None:
    w = window(None, _scrape(0.0, 100, 5))
    assert w.total("exchange_sink_rows_written_total") == 107
    assert w.total("exchange_sink_rows_written_total", table="profiles") == 100
    assert w.by("exchange_sink_rows_written_total", "table") == {("profiles",): 100, ("tax_payments",): 7}
    assert w.rate("exchange_sink_rows_written_total") is None
    assert w.rates_by("exchange_sink_rows_written_total", "table") is None
    assert w.mean("exchange_sink_commit_seconds") == pytest.approx(0.04)
    assert w.quantile(0.5, "exchange_sink_commit_seconds") == pytest.approx(0.01)


def test_two_scrapes_give_rates_over_the_time_between() -> None:
    w = window(_scrape(10.0, 100, 5), _scrape(12.0, 300, 5, down=True))
    assert w.seconds == 2.0
    assert w.rate("exchange_sink_rows_written_total", table="profiles") == 100.0
    assert w.rates_by("exchange_sink_rows_written_total", "table") == {
        ("profiles",): 100.0,
        ("tax_payments",): 0.0,
    }
    # No commits between the scrapes: no quantile, rather than the one of all time.
    assert w.quantile(0.99, "exchange_sink_commit_seconds") is None
    assert w.mean("exchange_sink_commit_seconds") is None
