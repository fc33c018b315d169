"""Every metric in monitoring/metrics.py follows the naming rules operators rely on."""

from __future__ import annotations

import ast
from pathlib import Path

from prometheus_client import Histogram
from prometheus_client.metrics import MetricWrapperBase

from monitoring import metrics

KINDS = {"Counter", "Gauge", "Histogram", "Summary"}
UNITS = ("_seconds", "_bytes", "_ratio")
# A histogram of how many things there were needs no unit: a batch of events, a page of records.
COUNTS = ("_events", "_records", "_rows", "_messages")
# Label names that would carry an identifier: identifiers never appear in metric labels.
IDENTIFYING = {"id", "ids", "identifier", "citizen", "subject", "key", "uscc", "name", "person"}


def _definitions() -> dict[str, tuple[str, str, set[str]]]:
    """variable → (kind, metric name as written, keyword arguments), from the module's source."""
    tree = ast.parse(Path(metrics.__file__).read_text(encoding="utf-8"))
    found = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id in KINDS
        ):
            target = node.targets[0]
            assert isinstance(target, ast.Name)
            first = node.value.args[0]
            assert isinstance(first, ast.Constant), f"{target.id}: name the metric with a literal"
            keywords = {keyword.arg for keyword in node.value.keywords if keyword.arg}
            found[target.id] = (node.value.func.id, str(first.value), keywords)
    return found


def _objects() -> dict[str, MetricWrapperBase]:
    return {name: value for name, value in vars(metrics).items() if isinstance(value, MetricWrapperBase)}


def test_every_metric_is_a_literal_definition() -> None:
    assert set(_definitions()) == set(_objects())


def test_names_are_prefixed_and_counters_end_in_total() -> None:
    for variable, (kind, name, _) in _definitions().items():
        assert name.startswith("exchange_"), f"{variable}: {name} should start with exchange_"
        if kind == "Counter":
            assert name.endswith("_total"), f"{variable}: the counter {name} should end in _total"
        else:
            assert not name.endswith("_total"), f"{variable}: only counters end in _total ({name})"


def test_histograms_have_explicit_buckets_and_a_unit() -> None:
    for variable, (kind, name, keywords) in _definitions().items():
        if kind != "Histogram":
            continue
        assert "buckets" in keywords, f"{variable}: give {name} explicit buckets"
        assert name.endswith(UNITS + COUNTS), (
            f"{variable}: {name} needs a unit suffix {UNITS} or a count {COUNTS}"
        )


def test_seconds_histograms_are_in_seconds() -> None:
    # faust's sensor put milliseconds in a seconds histogram; a bucket below 1 s shows these are seconds.
    for variable, metric in _objects().items():
        if isinstance(metric, Histogram) and metric._name.endswith("_seconds"):
            bounds = metric._upper_bounds
            assert bounds == sorted(bounds), variable
            assert bounds[0] < 1, f"{variable}: its smallest bucket is {bounds[0]}: milliseconds?"


def test_no_label_names_an_identifier() -> None:
    for variable, metric in _objects().items():
        for label in metric._labelnames:
            words = set(label.split("_"))
            assert not words & IDENTIFYING, f"{variable}: the label {label!r} would carry an identifier"


def test_the_objectives_are_bucket_bounds_of_the_histograms_that_measure_them() -> None:
    # Between bounds, histogram_quantile interpolates: with 0.01 and 0.025 the nearest bounds, a p99 of
    # 22 ms read as 15 and one of 11 ms as 24.85, either side of the API's 20 ms.
    api_goal, freshness_goal = 0.020, 0.5
    assert api_goal in metrics.API_REQUEST_SECONDS._upper_bounds
    assert freshness_goal in metrics.SINK_FRESHNESS_SECONDS._upper_bounds
