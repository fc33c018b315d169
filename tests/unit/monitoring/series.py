"""The series the exchange exports, and the metric names a PromQL expression selects: what the dashboard
and the alert rules may query."""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram, Summary
from prometheus_client.metrics import MetricWrapperBase

from exchange import lag, relay_lag
from monitoring import metrics

# Series Prometheus makes itself for every target.
SYNTHETIC = {"up"}
PROMQL_WORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan"}


def sample_names(metric: MetricWrapperBase) -> set[str]:
    name = metric._name
    if isinstance(metric, Counter):
        return {f"{name}_total"}
    if isinstance(metric, Histogram):
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    if isinstance(metric, Summary):
        return {f"{name}_sum", f"{name}_count"}
    assert isinstance(metric, Gauge), name
    return {name}


def known_series() -> set[str]:
    """Every series name the exchange exports: monitoring/metrics.py, the lag exporter (consumer lag and
    the audit relay's position), `up`."""
    names = set(lag.EXPORTED_NAMES) | set(relay_lag.EXPORTED_NAMES) | SYNTHETIC
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            names |= sample_names(value)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, grouping labels and matchers left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    words = re.findall(r"(?<![\w:$.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", text)
    return {word for word in words if word.lower() not in PROMQL_WORDS}
